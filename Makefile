# Two commands do all the set-up on a fresh machine:
#   make demo   - the bundled Sơn Tây example, end to end, into ./out
#   make test   - the test suite
VENV ?= .venv
PYTHON ?= python3

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed dovecot
	$(VENV)/bin/baocao demo --out out

# The demo's office mailbox is a Dovecot on loopback (Debian's dovecot-imapd): installed here
# when missing and we may (root, apt); only the program is needed, so the system service the
# package starts is stopped again. Without it the demo still runs and says so.
dovecot:
	@if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing dovecot-imapd for the demo's mailbox"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq dovecot-imapd >/dev/null; } \
	      || echo "dovecot-imapd not installed: the demo goes on without a mailbox"; \
	    if [ -d /run/systemd/system ]; then \
	      systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true; fi; \
	  else \
	    echo "dovecot not installed (as root: apt-get install dovecot-imapd); the demo goes on without a mailbox"; \
	  fi; \
	fi

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q -ra

test-fast: $(VENV)/.installed
	$(VENV)/bin/pytest -q -m "not slow"

# The cycle at N = 10, 100, 1,000, 10,000 communes on SQLite and PostgreSQL against a bare
# script (issue 10): a table, benchmarks/results/bench-*.json and .png; no assertions.
# About 15 min on an idle 2-core machine; BENCH_ARGS="--sizes 10,100 --db sqlite" for a quick one.
bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/bench_scale.py $(BENCH_ARGS)

# The demo's wall time with a fresh PREFECT_HOME and warm (issue 10): a table, no assertions.
bench-demo: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/bench_demo.py --runs 3

# The province on the server path (issue 10): a Prefect server on a fresh PostgreSQL database,
# a process work pool with prefect.yaml's deployments, two process workers; a batch of runs for
# examples/quang-ngai-2026 (open, ingest, remind, publish) and which worker ran each. Needs
# PostgreSQL on 127.0.0.1:5432 (user postgres); everything it makes is removed. About 3 min.
bench-server: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/bench_server.py $(BENCH_SERVER_ARGS)

# The reliability suite (issue 6): poison files, kill -9 and reruns, overlapping ingests on
# SQLite and PostgreSQL, the outbox after a kill, a lost store, who may reach in. Prints a
# table and fails on any file lost, version doubled, message duplicated or traceback.
# RELIABILITY_ARGS="--only store,access --scale 0.5" narrows it.
reliability: $(VENV)/.installed
	$(VENV)/bin/python -m reliability.run $(RELIABILITY_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: install demo dovecot test test-fast bench bench-demo bench-server reliability lint
