"""Session fixtures of the compatibility e2e (only ``-m e2e`` tests use them): one emulator, one Airflow."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.airflow_stack import AirflowStack
from e2e.processes import ManagedProcess, clean_environment, tail, wait_until

from compat.stack import CompatClient, make_stack

DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
DAG_IDS = {"compat_sync_deploy", "compat_deferred_deploy", "compat_deferred_kill"}
TIMEOUT = float(os.environ.get("E2E_RUN_TIMEOUT", "180"))


@pytest.fixture(scope="session")
def tmp_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dataworks-compat-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def emulator(tmp_dir: Path) -> Iterator[object]:
    from airflow_provider_dataworks.testing import DataWorksEmulator

    log_path = tmp_dir / "emulator.log"
    argv = [sys.executable, "-m", "airflow_provider_dataworks.testing.emulator", "--port", "0"]
    proc = ManagedProcess(
        name="emulator", argv=[*argv, "--stage-seconds", "0.5"], env=clean_environment(), log_path=log_path
    )
    proc.start()
    try:

        def listening_url() -> str | None:
            if not proc.alive():
                raise RuntimeError(f"the emulator exited:\n{tail(log_path)}")
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith("DataWorks emulator listening on "):
                    return line.split(" on ", 1)[1].split()[0]
            return None

        yield DataWorksEmulator.attach(wait_until(listening_url, timeout=30, interval=0.2, what="the emulator"))
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def airflow_stack(tmp_dir: Path, emulator, request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """The installed Airflow running for real (see :mod:`compat.stack`), with the compat DAGs parsed."""
    stack = make_stack(
        home=tmp_dir / "airflow-home",
        dags_folder=DAGS_FOLDER,
        extra_env={"AIRFLOW_CONN_DATAWORKS_DEFAULT": emulator.connection_uri(project_id=10000)},
    )
    started = time.monotonic()
    try:
        stack.start(timeout=TIMEOUT)
        api = CompatClient(stack)
        wait_until(lambda: api.dag_ids() >= DAG_IDS, timeout=TIMEOUT, interval=1, what="the compat DAGs parsed")
        print(f"\nAirflow up and DAGs parsed in {time.monotonic() - started:.1f}s")
        yield stack
    finally:
        leftovers = stack.stop()
        if request.session.testsfailed or sys.exc_info()[0] is not None:
            print(stack.log_tails())
    assert not leftovers, leftovers


@pytest.fixture(scope="session")
def client(airflow_stack: AirflowStack) -> CompatClient:
    return CompatClient(airflow_stack)
