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
from pathlib import Path

import pytest
from packaging.version import Version

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="dataworks-tests-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)


def _installed_airflow() -> Version:
    from airflow import __version__

    return Version(Version(__version__).base_version)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "min_airflow(version): needs at least that Airflow; deselected on older versions"
    )
    config.addinivalue_line(
        "markers",
        "version_matrix: a deploy, failure, transient-fault, lost-create or timeout case that make compat also "
        "runs on every older Airflow, expecting the outcome it has on 3.3",
    )
    config.addinivalue_line(
        "markers",
        "deselect_on(*minors, reason): known not to pass yet on these Airflow minors (the reason says why); "
        "deselected there, never skipped on failure",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (never skip) the tests that need a newer Airflow than the one installed."""
    installed = _installed_airflow()
    minor = f"{installed.major}.{installed.minor}"
    kept, deselected = [], []
    for item in items:
        needs = item.get_closest_marker("min_airflow")
        pending = item.get_closest_marker("deselect_on")
        if (needs and installed < Version(needs.args[0])) or (pending and minor in pending.args):
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def pytest_unconfigure(config: object) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Create the Airflow metadata database in the session's temporary ``AIRFLOW_HOME``."""
    home = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser().resolve()
    if home == Path("~/airflow").expanduser().resolve():
        pytest.fail("AIRFLOW_HOME is the default ~/airflow; tests/conftest.py must set a temporary one")
    from airflow import settings
    from airflow.utils import db

    if not str(settings.SQL_ALCHEMY_CONN).startswith("sqlite:///" + str(home)):
        pytest.fail(f"the metadata database {settings.SQL_ALCHEMY_CONN} is not in the test AIRFLOW_HOME {home}")
    db.initdb()  # on an empty database: the schema straight from the ORM models, stamped at head
