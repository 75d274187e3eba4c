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

demo: $(VENV)/.installed
	$(VENV)/bin/baocao demo --out out

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q -ra

test-fast: $(VENV)/.installed
	$(VENV)/bin/pytest -q -m "not slow"

bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/bench_scale.py --units 2000 --xlsx 300

# The reliability suite (issue 6): poison files, kill -9 and reruns, overlapping ingests on
# SQLite and PostgreSQL, the outbox after a kill, a lost store, who may reach in. Prints a
# table and fails on any file lost, version doubled, message duplicated or traceback.
# RELIABILITY_ARGS="--only store,access --scale 0.5" narrows it.
reliability: $(VENV)/.installed
	$(VENV)/bin/python -m reliability.run $(RELIABILITY_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: install demo test test-fast bench reliability lint
