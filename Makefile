# Two commands on a fresh machine: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
TOXIPROXY := .tools/bin/toxiproxy-server
PYTEST_WORKERS ?= auto

.PHONY: setup demo test lint format clean

## setup: virtualenv in .venv, editable install with test and dev tools, Toxiproxy build
setup: $(INSTALLED) $(TOXIPROXY)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: Python 3.11 or newer is needed (found: $$($(PYTHON) --version 2>&1)) — install it or run make PYTHON=python3.12"; exit 4; }
	$(PYTHON) -m venv $(VENV)

# Reinstalled only when pyproject.toml changes, so a second `make setup` takes no time.
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	@touch $@

$(TOXIPROXY): | $(INSTALLED)
	$(BIN)/harness install-toxiproxy

## demo: start the local stack, cut one link, show a client failing and recovering, stop
demo: setup
	$(BIN)/harness demo

## test: the whole suite, in parallel (one PostgreSQL and one Toxiproxy per worker)
test: setup
	$(BIN)/pytest -n $(PYTEST_WORKERS)

## lint: ruff (lint and format) and mypy
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## clean: stop a running stack, remove the virtualenv, tools and state
clean:
	-[ -x $(BIN)/harness ] && $(BIN)/harness down
	rm -rf $(VENV) .tools .harness .pytest_cache .mypy_cache .ruff_cache *.egg-info
