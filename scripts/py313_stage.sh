#!/usr/bin/env bash
# The Python 3.13 stage (make py313), in its cached venv (Airflow 3.3 from
# constraints/airflow-3.3-py3.13.txt, on the CPython 3.13 of make python3.13):
#  1. the whole unit suite, as make unit runs it on 3.11: every example DAG under dag.test()
#     (tests/examples), the trigger's round-trip through Airflow's trigger row, the emulator, hooks,
#     operators, sensors and triggers;
#  2. the short real e2e, as make e2e runs it: scheduler + triggerer + API server, the example DAGs'
#     sync and deferred deploys, a cleared and a killed deferred task, the UI in headless Chromium.
set -euo pipefail
python=$1
cd "$(dirname "$0")/.."
started=$(date +%s)
"$python" -c "import sys, airflow; print(f'py313: Python {sys.version.split()[0]}, Airflow {airflow.__version__}')"
"$python" -m pytest -q -p no:cacheprovider -m "not e2e" -n "${UNIT_WORKERS:-4}" --durations=10
unit_took=$(( $(date +%s) - started ))
"$python" -m pytest -q -p no:cacheprovider -m "e2e and not e2e_load" tests/e2e
echo "py313: stage took $(( $(date +%s) - started ))s (unit ${unit_took}s, e2e $(( $(date +%s) - started - unit_took ))s)"
