# Two commands on a fresh machine: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
TOXIPROXY := .tools/bin/toxiproxy-server
# the workflow linter the suite checks .github/workflows with, built the way Toxiproxy is
ACTIONLINT := .tools/bin/actionlint
ACTIONLINT_VERSION := v1.7.12
# Go's own installer puts it in /usr/local/go, often not on PATH
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
# one worker per core and two more: the heavy tests take at most one core each at a time
# (tests/plugins/ordering.py), and the extra workers run the light ones beside them (many
# of which wait on subprocesses). Three more were faster on a warm clone (pytest 308-311 s
# against 328-354 s, 2026-12-03) but overloaded two cores: a fresh clone's run then failed
# five load-sensitive tests (scenario verdicts, Locust timings) at once.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 2 )))
# Python keeps compiled modules (and pytest its rewritten tests) only if it may write them:
# with PYTHONDONTWRITEBYTECODE set, every process of the stack and every test worker compiles
# them again, which costs the suite more than a minute of CPU on two cores.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup system-packages demo gate test lint format clean screenshot

## setup: system packages if missing, virtualenv in .venv, editable install with test and
## dev tools, Toxiproxy build
setup: system-packages $(INSTALLED) $(TOXIPROXY) $(ACTIONLINT)
	@# Compiled once here, not by the many processes of the first stacks at once (measured
	@# once: 364 s for `make test` without __pycache__, 354 s with); then only what changed.
	$(BIN)/python -m compileall -q -j 0 chaos load reference_app topology bench

## system-packages: PostgreSQL's server, python3-venv, wrk and chromium, installed with apt-get as
## root when missing, or named with the command to run (scripts/system-packages.sh)
system-packages:
	@PYTHON=$(PYTHON) scripts/system-packages.sh

$(BIN)/python: | system-packages
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: Python 3.11 or newer is needed (found: $$($(PYTHON) --version 2>&1)) — install it or run make PYTHON=python3.12"; exit 4; }
	$(PYTHON) -m venv $(VENV)

# Reinstalled only when pyproject.toml changes, so a second `make setup` takes no time.
# uv installs the same packages as pip from the same index, in 3 s from its cache where
# pip took 45 s (measured 2026-12-03, of a `make test` budgeted at six minutes).
UV_VERSION := 0.13.9
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test,dev]'
	@touch $@

$(TOXIPROXY): | $(INSTALLED)
	PATH="$(dir $(GO)):$$PATH" $(BIN)/harness install-toxiproxy

$(ACTIONLINT):
	@[ -x "$(GO)" ] || { echo "error: Go is needed to build actionlint (and Toxiproxy): install Go >= 1.23 (https://go.dev/doc/install)"; exit 4; }
	GOBIN=$(CURDIR)/.tools/bin GOFLAGS=-buildvcs=false $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

## demo: the headline scenario: deposits survive a P2P database outage (own throw-away stack)
demo: setup
	$(BIN)/harness run scenarios/deposits-survive-p2p-outage.yaml --reports reports

## test: the whole suite, in parallel (one PostgreSQL and one Toxiproxy per worker)
test: setup
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

## gate: the whole scenario library (the release gate), two at once, one JUnit file in reports/
# about 4 minutes on two CPUs; GATE_JOBS=1 runs one at a time (about 8 minutes)
GATE_JOBS ?= 2
gate: setup
	$(BIN)/harness suite scenarios --jobs $(GATE_JOBS) --reports reports

## screenshot: the README's picture of a report (docs/img/report.png), taken in Chromium of
## the headline scenario's page, from a run made for it
screenshot: setup
	-$(BIN)/harness run scenarios/deposits-survive-p2p-outage.yaml --reports reports
	$(BIN)/python scripts/screenshot.py reports/deposits-survive-p2p-outage-isolated/report.html docs/img/report.png

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
	rm -rf $(VENV) .tools .harness reports .pytest_cache .mypy_cache .ruff_cache *.egg-info
