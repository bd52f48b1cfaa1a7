# Every target bootstraps what it needs: a fresh clone runs `make build` and `make test` as is.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
ITRACK := $(BIN)/itrack
STAMP := $(VENV)/.installed
SCALE ?= full

.DEFAULT_GOAL := help
.PHONY: help install lock build test test-all lint format docs bench clean browser postgres

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# The versions in constraints.txt: the set the suite last passed with, so a fresh clone (and CI)
# installs what was tested, not whatever was released since (see `lock`)
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11+ required)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with its dev tools (versions: constraints.txt)

lock: ## Re-resolve constraints.txt to the newest versions pyproject.toml allows (then make test, commit)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11+ required)"; exit 2; }
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	{ sed -n '/^#/p' constraints.txt; .venv-lock/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .venv-lock
	@echo "constraints.txt re-resolved: run make install (it reinstalls) and make test, then commit it"

build: $(STAMP) ## Nightly pipeline on the sample: ingest data/sample/, dbt build, feedback, publish, report
	$(ITRACK) build data/sample/

browser: ## Install Debian's chromium (apt-get, needs root) for the HTML report screenshot test, if missing
	@if command -v chromium >/dev/null 2>&1; then echo "chromium: $$(command -v chromium)"; else \
	  echo "installing Debian's chromium with apt-get (the HTML report screenshot test needs it) ..."; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 \
	  || { echo "error: could not install chromium (apt-get install chromium as root); the HTML report test needs it"; exit 2; }; fi

# The PostgreSQL tests use ITRACK_TEST_PG_DSN, else the local server on 127.0.0.1:5432, else a
# throw-away server they start with initdb/pg_ctl (tests/pg.py): make sure one of those exists.
postgres: ## Install Debian's postgresql for the throw-away test server (if no server answers)
	@if [ -n "$$ITRACK_TEST_PG_DSN" ] || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null \
	  || command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	else \
	  echo "installing postgresql for the throw-away test server ..."; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >/dev/null 2>&1 \
	  || { echo "error: no PostgreSQL server and could not install Debian's postgresql"; exit 2; }; \
	fi

# Tests run on every core (pytest-xdist), one test file per worker at a time (--dist loadfile) so a
# file's module fixtures (built warehouses) are built once.
PYTEST := $(BIN)/pytest -n auto --dist loadfile

test: $(STAMP) browser postgres ## Run the test suite (fast tier, about 7 minutes on 2 cores); installs chromium first if missing
	$(PYTEST) -m "not slow"

test-all: $(STAMP) browser postgres ## Run every test, the slow fault-injection ones included (installs chromium if missing)
	$(PYTEST)

lint: $(STAMP) ## ruff check, format check and the import contracts (dependencies run one way)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: $(STAMP) ## Build the dbt docs site (offline) and say where it is
	$(ITRACK) docs

bench: $(STAMP) ## Benchmark ingest / build / feedback against the DuckDB floor (SCALE=small for a quick run)
	$(BIN)/python bench/run.py --scale $(SCALE)
	$(BIN)/python bench/pg_extract.py --scale $(SCALE)
	$(BIN)/python bench/api_load.py --store both --clients 20 --seconds 20

# Build outputs only: the published warehouse, the build folder, dbt's artefacts, the report.
# Never the raw store (data/*.raw.duckdb: the only copy of interviews recorded with
# `itrack interview`), its backups (data/backups/), feeders.json or the placements.
clean: ## Remove the virtualenv and build outputs (never the raw store, backups or feeders.json)
	rm -rf $(VENV) dbt_project/target dbt_project/logs data/.build data/report.html
	rm -f data/warehouse.duckdb data/warehouse.duckdb.wal
