# Quickstart: `make demo` (end-to-end run on embedded synthetic data) and `make test` (ruff + pytest).
# Both create .venv and install -e ".[dev]" on first use (python3 is the only prerequisite), pinned by
# requirements.lock (a pip constraints file: exact versions of every dependency). `make lock` refreshes it.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock

.PHONY: demo test lint bench lock clean

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(LOCK) -e ".[dev]"
	$(PY) -m pip check
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sardata demo --out demo-out

lint: $(STAMP)
	$(VENV)/bin/ruff check sardata tests
	$(VENV)/bin/ruff format --check sardata tests

test: lint
	bash .ci/install-servers.sh
	$(PY) -m pytest -q

# The quick set of BENCHMARKS.md (issue 19 ratios, each against its baseline measured in the same run): ingest vs
# pure decode, build-shards vs a plain tar write (and + GR), time per sample and peak RSS at two sizes.
bench: $(STAMP)
	$(VENV)/bin/sardata bench ingest sar-acd ../shared/data/sar-acd --workers 2 --repeat 3
	$(VENV)/bin/sardata bench ingest mstar ../shared/data/mstar-jpeg --workers 2 --repeat 3
	d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	$(VENV)/bin/sardata ingest sar-acd ../shared/data/sar-acd --out "$$d/acd" --workers 2 && \
	$(VENV)/bin/sardata bench build-shards "$$d/acd" --workers 2 --repeat 3 && \
	$(VENV)/bin/sardata bench build-shards "$$d/acd" --workers 2 --targets gr
	$(VENV)/bin/sardata bench scale --sizes 2000,20000

# Re-resolve every dependency from pyproject.toml in a scratch venv (no constraints) and write the exact versions.
# Commit the new lock together with whatever test expectations the upgrade moves (tests/golden/).
lock:
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q -e ".[dev]"
	{ echo "# Exact versions CI and \`make\` install (pip constraints file): refresh with \`make lock\` (see README, Development)."; \
	  echo "# Generated $$(date -u +%Y-%m-%d) on $$(uname -m), Python $$(.lock-venv/bin/python -c 'import platform; print(platform.python_version())')."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^sardata'; } > $(LOCK)
	rm -rf .lock-venv

clean:
	rm -rf demo-out .pytest_cache .ruff_cache

# Peer loaders (LitData; MosaicML Streaming where it resolves) for `sardata bench loader`, in their own venv so
# neither CI nor .venv installs them: the core pins from requirements.lock, the peers' from benchmarks/peers.lock
# (remote: the bench's loopback-nginx rows read over HTTP).
.PHONY: bench-peers-env
bench-peers-env: .venv-peers/.installed
.venv-peers/.installed: pyproject.toml $(LOCK) benchmarks/peers.lock
	test -x .venv-peers/bin/python || python3 -m venv .venv-peers
	.venv-peers/bin/python -m pip install -q --upgrade pip
	.venv-peers/bin/python -m pip install -q -c $(LOCK) -c benchmarks/peers.lock -e ".[bench,remote]" litdata
	.venv-peers/bin/python -m pip check
	touch $@
