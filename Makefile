# Quickstart: `make demo` (end-to-end run on embedded synthetic data) and `make test` (ruff + pytest).
# Both create .venv and install -e ".[dev]" on first use (python3 is the only prerequisite).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sardata demo --out demo-out

lint: $(STAMP)
	$(VENV)/bin/ruff check sardata tests
	$(VENV)/bin/ruff format --check sardata tests

test: lint
	bash .ci/install-servers.sh
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/sardata bench ingest sar-acd ../shared/data/sar-acd --workers 2 --repeat 3

clean:
	rm -rf demo-out .pytest_cache .ruff_cache
