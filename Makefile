# Everything runs inside a virtual environment this Makefile builds itself, so a fresh
# machine needs only Python 3.11+, git and make.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pip's local find-links mirrors print one warning per package; they are noise here.
QUIET_PIP := grep -v "is ignored: it is neither a file nor a directory" || true

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: venv lint typecheck unit e2e e2e-prod bench-smoke test demo bench emulator clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(BIN)/python -m pip install -q -e '.[test]' 2>&1 | $(QUIET_PIP)
	$(BIN)/python -c "import airflow_provider_dataworks, airflow, alibabacloud_dataworks_public20240518"
	touch $(STAMP)

venv: $(STAMP)

E2E_PROD_STAMP := $(VENV)/.installed-e2e-prod
$(E2E_PROD_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test,e2e-prod]' 2>&1 | $(QUIET_PIP)
	$(BIN)/python -c "import airflow.providers.celery.executors.celery_executor_utils, psycopg2, redis"
	touch $(E2E_PROD_STAMP)

lint: venv
	$(BIN)/ruff check airflow_provider_dataworks tests example_dags benchmarks
	$(BIN)/ruff format --check airflow_provider_dataworks tests example_dags benchmarks

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/python -m pytest -q -m "not e2e" -p no:cacheprovider

e2e: venv
	$(BIN)/python -m pytest -q -m e2e -p no:cacheprovider tests/e2e

## e2e-prod: PostgreSQL, CeleryExecutor on Redis, two triggerers, two workers, chaos (see docs/production.md)
e2e-prod: $(E2E_PROD_STAMP)
	bash scripts/install_e2e_prod_services.sh
	$(BIN)/python -m pytest -q -m e2e -p no:cacheprovider tests/e2e_prod

bench-smoke: venv
	$(BIN)/python -m benchmarks.run --smoke

## test: the whole suite, as CI runs it
test: lint typecheck unit e2e e2e-prod bench-smoke

## demo: start the embedded emulator and run the release-window example DAG end to end
demo: venv
	$(BIN)/python scripts/demo.py

## bench: the full benchmarks; writes benchmarks/RESULTS.md
bench: venv
	$(BIN)/python -m benchmarks.run

## emulator: run the DataWorks emulator in the foreground
emulator: venv
	$(BIN)/dataworks-emulator

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
