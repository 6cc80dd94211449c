"""Fixtures that run the example DAGs with ``dag.test()`` against the DataWorks emulator.

``dag.test()`` needs an Airflow metadata database. ``tests/conftest.py`` has already pointed
``AIRFLOW_HOME`` at a throw-away directory before Airflow was imported; :func:`airflow_db`
creates the database there once per session. It is written to be moved to
``tests/conftest.py`` unchanged if other test folders need a database too.

The examples read ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` when they are parsed, so
:func:`example_dag_bag` sets it (and the DAGs folder, which ``dag.test()`` syncs to the
database) before parsing them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun

    from airflow_provider_dataworks.testing import DataWorksEmulator

EXAMPLE_DAGS_FOLDER = Path(__file__).resolve().parents[2] / "example_dags"
#: short enough that a three-stage deployment takes well under a second of polling
TEST_POLL_INTERVAL = "0.1"


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


@pytest.fixture(scope="session")
def example_dag_bag(airflow_db: None) -> Iterator[DagBag]:
    """Parse ``example_dags/`` as the DAGs folder, with a short poll interval."""
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAWORKS_EXAMPLE_POLL_INTERVAL", TEST_POLL_INTERVAL)
        # dag.test() writes the DAGs of the "dags-folder" bundle to the database; the bundle's
        # path is read from settings.DAGS_FOLDER, computed when Airflow was imported.
        mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(EXAMPLE_DAGS_FOLDER))
        mp.setattr(settings, "DAGS_FOLDER", str(EXAMPLE_DAGS_FOLDER))
        yield DagBag(dag_folder=str(EXAMPLE_DAGS_FOLDER))


@pytest.fixture
def emu(dataworks_emulator: DataWorksEmulator) -> DataWorksEmulator:
    """A fresh emulator per test (stages finish instantly, proxies cleared)."""
    return dataworks_emulator


@pytest.fixture
def example_connections(emu: DataWorksEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Provide the connections the examples use, from the environment as a user would."""
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=10000))
    sqlite = {"conn_type": "sqlite", "host": str(tmp_path / "quality.db")}
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_EXAMPLE_SQLITE", json.dumps(sqlite))


@pytest.fixture
def run_example(example_dag_bag: DagBag, example_connections: None) -> Callable[..., DagRun]:
    """Run one example DAG with ``dag.test()`` and return the finished DAG run."""
    from airflow.dag_processing.dagbag import DagBag

    def run(dag_id: str, conf: dict[str, Any] | None = None, **test_kwargs: Any) -> DagRun:
        parsed = example_dag_bag.get_dag(dag_id)
        assert parsed is not None, f"{dag_id} is not in example_dags/: {example_dag_bag.import_errors}"
        # dag.test() runs the tasks in this process and writes run_conf into the task objects'
        # params (even those of a deep copy), so each run gets a freshly parsed DAG: one test's
        # conf must not leak into the next run.
        dag = DagBag(dag_folder=parsed.fileloc).get_dag(dag_id)
        return dag.test(run_conf=conf, **test_kwargs)

    return run
