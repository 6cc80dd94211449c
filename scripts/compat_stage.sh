#!/usr/bin/env bash
# The compatibility stage on one older Airflow (make compat-<minor>), in its cached venv:
#  1. the unit tests that meet Airflow (provider info and discovery, connection settings, the
#     emulator's connection URI read by Airflow), every example DAG under dag.test(), the
#     connection form and the trigger's round-trip through Airflow's trigger row (tests/compat).
#     Tests needing a newer Airflow carry @pytest.mark.min_airflow and are deselected;
#     tests/operators needs 3.3's task runner and is not collected below 3.3. tests/hooks and the
#     rest of tests/emulator talk to the SDK and the emulator, not to Airflow: the main stage runs
#     them once (the examples and the e2e exercise the hook on every version).
#  2. a short real e2e: scheduler + triggerer + API server, one sync and one deferred deploy, a
#     deferred task killed through the REST API, and the connection form in a headless browser.
set -euo pipefail
minor=$1
python=$2
cd "$(dirname "$0")/.."
started=$(date +%s)
"$python" -c "import airflow; print(f'compat {airflow.__version__}: from constraints/airflow-$minor.txt')"
"$python" -m pytest -q -p no:cacheprovider -m "not e2e" \
    tests/examples tests/compat tests/test_provider_info.py tests/test_settings.py tests/emulator/test_control.py
"$python" -m pytest -q -p no:cacheprovider -m e2e tests/compat
echo "compat $minor: stage took $(( $(date +%s) - started ))s"
