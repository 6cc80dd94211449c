"""Fixtures that run the example DAGs with ``dag.test()`` against the DataWorks emulator.

``dag.test()`` needs an Airflow metadata database: the session fixture ``airflow_db`` of
``tests/conftest.py`` creates it in the suite's throw-away ``AIRFLOW_HOME``.

The examples read ``DATAWORKS_EXAMPLE_POLL_INTERVAL`` when they are parsed, so
:func:`example_dag_bag` sets it (and the DAGs folder, which ``dag.test()`` syncs to the
database) before parsing them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from compat.versions import dag_bag

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun

    from airflow_provider_dataworks.testing import DataWorksEmulator

EXAMPLE_DAGS_FOLDER = Path(__file__).resolve().parents[2] / "example_dags"
#: short enough that a three-stage deployment takes well under a second of polling
TEST_POLL_INTERVAL = "0.1"


@pytest.fixture(scope="session")
def example_dag_bag(airflow_db: None) -> Iterator[DagBag]:
    """Parse ``example_dags/`` as the DAGs folder, with a short poll interval."""
    from airflow import settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAWORKS_EXAMPLE_POLL_INTERVAL", TEST_POLL_INTERVAL)
        # dag.test() writes the DAGs of the "dags-folder" bundle to the database; the bundle's
        # path is read from settings.DAGS_FOLDER, computed when Airflow was imported.
        mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(EXAMPLE_DAGS_FOLDER))
        mp.setattr(settings, "DAGS_FOLDER", str(EXAMPLE_DAGS_FOLDER))
        yield dag_bag(str(EXAMPLE_DAGS_FOLDER))


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

    def run(dag_id: str, conf: dict[str, Any] | None = None, **test_kwargs: Any) -> DagRun:
        parsed = example_dag_bag.get_dag(dag_id)
        assert parsed is not None, f"{dag_id} is not in example_dags/: {example_dag_bag.import_errors}"
        # dag.test() runs the tasks in this process and writes run_conf into the task objects'
        # params (even those of a deep copy), so each run gets a freshly parsed DAG: one test's
        # conf must not leak into the next run.
        dag = dag_bag(parsed.fileloc).get_dag(dag_id)
        return dag.test(run_conf=conf, **test_kwargs)

    return run
