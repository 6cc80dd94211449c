# Everything runs inside a virtual environment this Makefile builds itself, so a fresh
# machine needs only Python 3.11+, git and make.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV := $(BIN)/uv
#: the primary environment: the newest supported Airflow, installed with its constraints
PRIMARY_AIRFLOW := 3.3
#: older Airflow minors of the compatibility stage; each gets .venv-compat/<minor>
COMPAT_VERSIONS := 2.11 3.0 3.1 3.2
COMPAT_DIR := .venv-compat
# pip's local find-links mirrors print one warning per package; they are noise here.
QUIET_PIP := grep -v "is ignored: it is neither a file nor a directory" || true

export PYTHONDONTWRITEBYTECODE := 1

#: CPython 3.13 of the Python 3.13 stage: built once from Debian trixie's python3.13 source package
#: into a cache outside the tree (scripts/build_python313.sh), reused while its stamp is there
PY313_PREFIX ?= $(HOME)/.cache/airflow-provider-dataworks/python3.13
PY313 := $(PY313_PREFIX)/bin/python3.13
PY313_STAMP := $(PY313_PREFIX)/.built
PY313_VENV ?= .venv-py313
PY313_CONSTRAINTS := constraints/airflow-$(PRIMARY_AIRFLOW)-py3.13.txt

.PHONY: py313-prebuild docs screenshots wheel-install fuzz venv lint typecheck unit e2e e2e-load e2e-prod bench-smoke wheel test demo bench emulator clean constraints compat python3.13 py313

# uv comes from PyPI into the venv; it installs each environment from its constraints file.
$(STAMP): pyproject.toml constraints/airflow-$(PRIMARY_AIRFLOW).txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv 2>&1 | $(QUIET_PIP)
	$(UV) pip install -q --python $(BIN)/python -c constraints/airflow-$(PRIMARY_AIRFLOW).txt -e '.[test]'
	$(BIN)/python -c "import airflow_provider_dataworks, airflow, alibabacloud_dataworks_public20240518"
	touch $(STAMP)

venv: $(STAMP)

## constraints: re-resolve constraints/airflow-*.txt (see scripts/compat_constraints.py)
constraints: venv
	UV=$(UV) $(BIN)/python scripts/compat_constraints.py
	UV=$(UV) $(BIN)/python scripts/py313_constraints.py

# One cached venv per older Airflow, rebuilt only when its constraints or pyproject change.
$(COMPAT_DIR)/%/.installed: constraints/airflow-%.txt pyproject.toml | $(STAMP)
	rm -rf $(COMPAT_DIR)/$*
	$(UV) venv -q --python $(PYTHON) $(COMPAT_DIR)/$*
	$(UV) pip install -q --python $(COMPAT_DIR)/$*/bin/python -c constraints/airflow-$*.txt -e '.[test,connection-form]'
	touch $@

## compat-<minor>: the compatibility stage on one older Airflow (e.g. make compat-3.1)
compat-%: $(COMPAT_DIR)/%/.installed
	scripts/compat_stage.sh $* $(COMPAT_DIR)/$*/bin/python

## compat: the compatibility stage on every older Airflow
compat: $(addprefix compat-,$(COMPAT_VERSIONS))

## python3.13: build CPython 3.13 from Debian's source package into $(PY313_PREFIX), once (needs root the first time)
$(PY313_STAMP):
	scripts/build_python313.sh $(PY313_PREFIX)
	@if [ -s $(PY313_BACKGROUND_LOG) ]; then echo "python3.13: the background build said:"; cat $(PY313_BACKGROUND_LOG); fi
	touch $@

python3.13: $(PY313_STAMP)

## py313-prebuild: where the interpreter is not cached yet, fetch its source now (apt, in the
## foreground) and compile it niced in the background while make test's other stages run; the
## py313 stage's $(PY313_STAMP) then waits for that build (scripts/build_python313.sh's lock)
PY313_BACKGROUND_LOG := build/python313-background.log
py313-prebuild:
	@if [ -e $(PY313_STAMP) ]; then exit 0; fi; \
	scripts/build_python313.sh --fetch-only $(PY313_PREFIX) || exit 1; \
	mkdir -p build; \
	echo "python3.13: compiling in the background (nice 19), log $(PY313_BACKGROUND_LOG)"; \
	nohup nice -n 19 scripts/build_python313.sh --compile-only $(PY313_PREFIX) </dev/null >$(PY313_BACKGROUND_LOG) 2>&1 &

# The 3.13 venv: Airflow 3.3 with its constraints resolved for 3.13, rebuilt when they or pyproject change.
$(PY313_VENV)/.installed: $(PY313_CONSTRAINTS) pyproject.toml | $(PY313_STAMP) $(STAMP)
	rm -rf $(PY313_VENV)
	$(UV) venv -q --python $(PY313) $(PY313_VENV)
	$(UV) pip install -q --python $(PY313_VENV)/bin/python -c $(PY313_CONSTRAINTS) -e '.[test]'
	$(PY313_VENV)/bin/python -c "import airflow_provider_dataworks, airflow, alibabacloud_dataworks_public20240518"
	touch $@

## py313: the Python 3.13 stage: the whole unit suite and the short e2e on Airflow 3.3 (scripts/py313_stage.sh)
py313: $(PY313_VENV)/.installed
	scripts/py313_stage.sh $(PY313_VENV)/bin/python

E2E_PROD_STAMP := $(VENV)/.installed-e2e-prod
$(E2E_PROD_STAMP): $(STAMP) pyproject.toml
	$(UV) pip install -q --python $(BIN)/python -c constraints/airflow-$(PRIMARY_AIRFLOW).txt -e '.[test,e2e-prod]'
	$(BIN)/python -c "import airflow.providers.celery.executors.celery_executor_utils, psycopg2, redis"
	touch $(E2E_PROD_STAMP)

lint: venv
	$(BIN)/ruff check airflow_provider_dataworks tests example_dags benchmarks
	$(BIN)/ruff format --check airflow_provider_dataworks tests example_dags benchmarks

typecheck: venv
	$(BIN)/mypy

#: pytest-xdist workers of the unit suites (make unit, the 3.13 stage, the compatibility stage): the
#: suite mostly waits on emulators and poll intervals (about 40 % of one core), so 4 workers fit 2 cores
UNIT_WORKERS ?= 4
export UNIT_WORKERS

unit: venv
	bash scripts/install_e2e_prod_services.sh
	$(BIN)/python -m pytest -q -m "not e2e" -p no:cacheprovider -n $(UNIT_WORKERS)

e2e: venv
	$(BIN)/python -m pytest -q -m "e2e and not e2e_load" -p no:cacheprovider tests/e2e

## e2e-load: one DAG run of 100 mapped deferrable deploys under a real triggerer; counts coalesced status reads
e2e-load: venv
	$(BIN)/python -m pytest -q -s -m e2e_load -p no:cacheprovider tests/e2e

## e2e-prod: PostgreSQL, CeleryExecutor on Redis, two triggerers, two workers, chaos (see docs/production.md)
e2e-prod: $(E2E_PROD_STAMP)
	bash scripts/install_e2e_prod_services.sh
	$(BIN)/python -m pytest -q -m e2e -p no:cacheprovider tests/e2e_prod

bench-smoke: venv
	$(BIN)/python -m benchmarks.run --smoke

#: the fuzz profile's schedules in all, and the processes they are split over (one per core)
FUZZ_EXAMPLES ?= 20000
FUZZ_SHARDS ?= 2
#: the first shard's seed (shard i: seed + i); a failing shard replays alone with its seed
FUZZ_SEED ?= $(shell date +%s)

## fuzz: the fuzz profile of the deployment protocol, 20,000 random fault schedules over FUZZ_SHARDS
## processes (docs/fuzzing.md), summed into build/fuzz-stats.json; make test runs the fixed-seed
## profile of 500 as part of the unit suite
fuzz: venv
	$(BIN)/python scripts/fuzz_shards.py --shards $(FUZZ_SHARDS) --examples $(FUZZ_EXAMPLES) --seed $(FUZZ_SEED) --out build/fuzz-stats.json

# Airflow's constraints for the primary version, once the repository has them (constraints/).
WHEEL_CONSTRAINTS ?= $(wildcard constraints/airflow-3.3.txt)

## wheel: build sdist + wheel (no backend warning), twine check, then use the wheel from a clean venv
wheel: venv
	$(BIN)/python -c "import build, twine" 2>/dev/null || $(BIN)/python -m pip install -q build twine 2>&1 | $(QUIET_PIP)
	scripts/check_wheel.sh $(BIN)/python $(WHEEL_CONSTRAINTS)

DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(UV) pip install -q --python $(BIN)/python -c constraints/airflow-$(PRIMARY_AIRFLOW).txt -e '.[test,docs]'
	touch $(DOCS_STAMP)

## docs: build the documentation site into build/site; any warning, broken link or missing anchor fails
docs: $(DOCS_STAMP)
	scripts/build_docs.sh $(BIN)/python

## screenshots: retake docs/img/*.png from a real Airflow in headless Chromium
screenshots: venv
	$(BIN)/python scripts/screenshots.py

TARGET_PYTHON ?= python3
## wheel-install: build the wheel into dist/ and install it into TARGET_PYTHON's environment
wheel-install: venv
	$(BIN)/python -P -c "import build" 2>/dev/null || $(UV) pip install -q --python $(BIN)/python build
	rm -rf dist
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -P -m build --wheel --outdir dist .
	$(TARGET_PYTHON) -m pip install dist/airflow_provider_dataworks-*.whl

## test: the whole suite, as CI runs it
test: py313-prebuild lint typecheck unit docs e2e e2e-prod e2e-load bench-smoke wheel compat py313

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
	rm -rf $(VENV) $(COMPAT_DIR) $(PY313_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
