# kstlib.ops developer entry points. `make demo` and `make test` work on a
# fresh machine: they create the virtualenv and install what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ENGINES := integration/engines/engines.sh
PYTEST_ARGS ?=

.PHONY: help install demo test test-fast lint lint-sh typecheck docs bench engines-up engines-down tmux clean

help:
	@echo "make demo          run a real session lifecycle on tmux"
	@echo "make test          install, start the engines, run every test"
	@echo "make test-fast     unit tests only (no engine)"
	@echo "make lint          ruff + mypy --strict on kstlib/"
	@echo "make lint-sh       shellcheck on the engines harness (integration/engines/*.sh)"
	@echo "make docs          build the Sphinx docs (warnings are errors)"
	@echo "make engines-up    install and start tmux, Docker and Podman, build the test image"
	@echo "make engines-down  stop the engines started by engines-up"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

# tmux is the one engine the demo needs: install it when root and apt allow.
tmux:
	@command -v tmux >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing tmux (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null; \
	  else \
	    echo "tmux is missing: install it (Debian/Ubuntu: sudo apt install tmux; macOS: brew install tmux)" >&2; \
	    exit 1; \
	  fi; }

demo: install tmux
	$(BIN)/python examples/demo.py

engines-up:
	bash $(ENGINES) up

engines-down:
	bash $(ENGINES) down

test: install engines-up
	source <(bash $(ENGINES) env) && $(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check kstlib
	$(BIN)/ruff format --check kstlib
	$(BIN)/mypy

# shellcheck comes with the engines (engines.sh up installs it with apt).
lint-sh:
	cd integration/engines && shellcheck -x *.sh

docs: install
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# Upstream kstlib (same package name) in a virtualenv of its own, for the bench's
# side-by-side tmux start()+stop(); the bench drives it in a worker process.
UPSTREAM_VENV ?= .venv-upstream
UPSTREAM_KSTLIB ?= 3.8.2
BENCH_ARGS ?=

$(UPSTREAM_VENV)/.installed:
	$(PYTHON) -m venv $(UPSTREAM_VENV)
	$(UPSTREAM_VENV)/bin/python -m pip install --quiet 'kstlib==$(UPSTREAM_KSTLIB)'
	touch $@

bench: install engines-up $(UPSTREAM_VENV)/.installed
	source <(bash $(ENGINES) env) && $(BIN)/python benchmarks/bench.py \
	  --upstream $(UPSTREAM_VENV)/bin/python $(BENCH_ARGS)

clean:
	rm -rf docs/_build .pytest_cache .mypy_cache .ruff_cache
