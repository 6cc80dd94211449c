#!/usr/bin/env bash
# The compatibility stage on one older Airflow (make compat-<minor>), in its cached venv:
#  1. the unit tests that meet Airflow (provider info and discovery, connection settings, the
#     emulator's connection URI read by Airflow), every example DAG under dag.test(), the
#     connection form and the trigger's round-trip through Airflow's trigger row (tests/compat).
#     Tests needing a newer Airflow carry @pytest.mark.min_airflow and are deselected.
#  2. the version matrix: the deploy, failure, transient-fault, lost-create and timeout cases of
#     tests/operators (@pytest.mark.version_matrix; the same tests, with the same expected outcomes,
#     run on 3.3 in make unit), and the hook tests that meet Airflow's connection and logging plus
#     its retries. The rest of tests/operators and tests/hooks passes here too, but the main stage
#     runs it once (make test stays within its time budget).
#  3. a short real e2e: scheduler + triggerer + API server, one sync and one deferred deploy, a
#     deferred task killed through the REST API, and the connection form in a headless browser.
set -euo pipefail
minor=$1
python=$2
cd "$(dirname "$0")/.."
started=$(date +%s)
"$python" -c "import airflow; print(f'compat {airflow.__version__}: from constraints/airflow-$minor.txt')"
"$python" -m pytest -q -p no:cacheprovider -m "not e2e" -n "${UNIT_WORKERS:-4}" \
    tests/examples tests/compat tests/test_assets.py tests/test_provider_info.py tests/test_settings.py tests/emulator/test_control.py
matrix_started=$(date +%s)
"$python" -m pytest -q -p no:cacheprovider -m "version_matrix and not e2e" -n "${UNIT_WORKERS:-4}" tests/operators \
    tests/hooks/test_hook_credentials.py tests/hooks/test_hook_secrets.py tests/hooks/test_hook_retries.py
matrix_took=$(( $(date +%s) - matrix_started ))
"$python" -m pytest -q -p no:cacheprovider -m e2e tests/compat
echo "compat $minor: stage took $(( $(date +%s) - started ))s (the version matrix ${matrix_took}s)"
