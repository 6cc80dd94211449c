"""Settings shared by the whole suite.

Airflow reads ``AIRFLOW_HOME`` and its config at import time, so the suite points it at a
throw-away directory before anything imports Airflow: tests never touch ``~/airflow``.
The Alibaba SDK honours proxy variables even for loopback, so they are cleared for the
whole run (every test talks to the local emulator).
"""

from __future__ import annotations

import os
import shutil
import tempfile

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="dataworks-tests-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)


def pytest_unconfigure(config: object) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
