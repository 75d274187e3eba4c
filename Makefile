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

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: install demo test test-fast bench lint
