# The commands people type. VENV and PYTHON can be overridden: `make test VENV=.ci-venv`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run test lint format migrate demo-passwords bench ci clean

help:
	@echo "make run             serve http://127.0.0.1:8000 (SQLite, tasks in process, demo users)"
	@echo "make test            run the test suite (services tests need DATABASE_URL and REDIS_URL)"
	@echo "make lint            ruff check, ruff format --check, import contracts"
	@echo "make format          ruff format and safe fixes"
	@echo "make migrate         apply migrations to the development database"
	@echo "make demo-passwords  give the demo users new passwords and print them"
	@echo "make bench           run the benchmarks"
	@echo "make ci              what CI runs: fresh venv, PostgreSQL, Redis, lint, checks, tests"
	@echo "make clean           remove caches and build leftovers (keeps .venv and var/)"

# The virtual environment, (re)installed whenever pyproject.toml changes.
$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "mipd-web needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." \
		     "Run with PYTHON=/path/to/python3.11 or newer." >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

venv: $(INSTALLED)

run: $(INSTALLED)
	VENV=$(VENV) bash scripts/dev.sh run

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(INSTALLED)
	VENV=$(VENV) bash scripts/dev.sh manage migrate

demo-passwords: $(INSTALLED)
	VENV=$(VENV) bash scripts/dev.sh manage seed_demo --reset-passwords

bench: $(INSTALLED)
	@if [ -f benchmarks/run_all.py ]; then $(BIN)/python benchmarks/run_all.py; \
	else echo "benchmarks/run_all.py does not exist yet: nothing to run."; fi

ci:
	bash .ci/run

clean:
	rm -rf .ci-venv .pytest_cache .ruff_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
