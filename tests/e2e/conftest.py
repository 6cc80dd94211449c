"""Session fixtures of the end-to-end step: the DataWorks emulator, a real Airflow deployment, the example runs.

Everything started here is stopped in the fixtures' finalizers, also when a test or the setup fails
and when pytest gets SIGTERM; the temporary directory is removed afterwards. When anything failed,
the tail of every component log is printed once at the end of the session.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .airflow_stack import AirflowStack
from .example_runs import EXAMPLES, ExampleRuns, run_examples
from .processes import ManagedProcess, clean_environment, tail, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = Path(os.environ.get("E2E_DAGS_FOLDER", REPO_ROOT / "example_dags"))
SCREENSHOT_DIR = REPO_ROOT / "build" / "e2e-screenshots"
# Seconds from the first trigger until every example run must have finished (a hung run fails then).
RUN_TIMEOUT = float(os.environ.get("E2E_RUN_TIMEOUT", "180"))
# Seconds for the components to come up and parse the DAG folder.
STARTUP_TIMEOUT = float(os.environ.get("E2E_STARTUP_TIMEOUT", "180"))
STAGE_SECONDS = "0.5"
#: the Data Quality evaluation task of example_dataworks_quality_gate.py
QUALITY_GATE_TASK_ID = 70001

# Stop callbacks of whatever is running; also run at exit as a safety net.
_cleanups: list[Callable[[], None]] = []
# Printed at the end of the session.
_summary: list[str] = []
_failure_logs: list[str] = []


def _stop_everything() -> None:
    while _cleanups:
        _cleanups.pop()()


def _on_sigterm(signum: int, frame: object) -> None:
    # CI cancelling the job sends SIGTERM: turn it into KeyboardInterrupt so pytest runs the finalizers.
    raise KeyboardInterrupt(f"received signal {signum}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _summary:
        terminalreporter.write_sep("-", "e2e summary")
        for line in _summary:
            terminalreporter.write_line(line)
    if _failure_logs:
        terminalreporter.write_sep("=", "e2e component logs (something failed)")
        for text in _failure_logs:
            terminalreporter.write_line(text)


@pytest.fixture(scope="session")
def e2e_tmp() -> Iterator[Path]:
    """A temporary directory for the whole step, removed at the end (kept with E2E_KEEP_TMP=1)."""
    previous_handler = signal.signal(signal.SIGTERM, _on_sigterm)
    atexit.register(_stop_everything)
    path = Path(tempfile.mkdtemp(prefix="dataworks-e2e-"))
    keep = os.environ.get("E2E_KEEP_TMP") == "1"

    def remove() -> None:
        if keep:
            _summary.append(f"E2E_KEEP_TMP=1: kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)

    _cleanups.append(remove)
    try:
        yield path
    finally:
        _stop_everything()
        signal.signal(signal.SIGTERM, previous_handler)
    assert keep or not path.exists(), f"{path} was not removed"


#: how long the quality-gate example's evaluation runs: long enough that the operator's first status
#: check (a worker that starts slowly on a loaded machine included) finds it Running and defers
QUALITY_GATE_SECONDS = 10.0


def _slow_quality_gate(emulator: Any) -> None:
    """Give the seed's Data Quality task of the quality-gate example a longer evaluation."""
    from importlib.resources import files

    seed = json.loads(files("airflow_provider_dataworks.testing").joinpath("default_seed.json").read_text())
    task = next(task for task in seed["data_quality_tasks"] if task["id"] == QUALITY_GATE_TASK_ID)
    emulator.add_data_quality_task(
        task["project_id"], task["id"], task["rules"], name=task["name"], seconds=QUALITY_GATE_SECONDS
    )


@pytest.fixture(scope="session")
def emulator(e2e_tmp: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """The DataWorks emulator as a separate process, and a control handle on it."""
    from airflow_provider_dataworks.testing import DataWorksEmulator

    log_path = e2e_tmp / "emulator.log"
    proc = ManagedProcess(
        name="emulator",
        argv=[
            sys.executable,
            "-m",
            "airflow_provider_dataworks.testing.emulator",
            "--port",
            "0",
            "--stage-seconds",
            STAGE_SECONDS,
        ],
        env=clean_environment(),
        log_path=log_path,
    )
    _cleanups.append(proc.stop)
    try:
        proc.start()

        def listening_url() -> str | None:
            if not proc.alive():
                raise RuntimeError(f"the emulator exited:\n{tail(log_path)}")
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith("DataWorks emulator listening on "):
                    return line.split(" on ", 1)[1].split()[0]
            return None

        url = wait_until(listening_url, timeout=30, interval=0.2, what="the emulator to listen")
        emulator = DataWorksEmulator.attach(url)
        _slow_quality_gate(emulator)
        yield emulator
    finally:
        _cleanups.remove(proc.stop)
        proc.stop()
        if request.session.testsfailed:
            _failure_logs.append(f"===== emulator.log (last 40 lines) =====\n{tail(log_path, 40)}")


@pytest.fixture(scope="session")
def airflow_stack(e2e_tmp: Path, emulator, request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """A running Airflow 3 deployment (scheduler, dag-processor, triggerer, api-server) on loopback."""
    sqlite_example_db = {"conn_type": "sqlite", "host": str(e2e_tmp / "dataworks_example.db")}
    stack = AirflowStack(
        home=e2e_tmp / "airflow-home",
        dags_folder=DAGS_FOLDER,
        extra_env={
            "AIRFLOW_CONN_DATAWORKS_DEFAULT": emulator.connection_uri(project_id=10000),
            "AIRFLOW_CONN_DATAWORKS_EXAMPLE_SQLITE": json.dumps(sqlite_example_db),
            # The example DAGs read this when parsed: poll the emulator every second, not every 30 s.
            "DATAWORKS_EXAMPLE_POLL_INTERVAL": "1",
        },
        sql_alchemy_conn=os.environ.get("E2E_SQL_ALCHEMY_CONN") or None,
    )
    leftovers: list[str] = []

    def stop() -> None:
        leftovers.extend(stack.stop())

    _cleanups.append(stop)
    started = time.monotonic()
    try:
        stack.start(timeout=STARTUP_TIMEOUT, expected_dag_ids=EXAMPLES.keys())
        _summary.append(f"Airflow up in {time.monotonic() - started:.1f}s at {stack.base_url}")
        yield stack
    finally:
        _cleanups.remove(stop)
        stop()
        if request.session.testsfailed:
            _failure_logs.append(stack.log_tails())
    assert not leftovers, "processes that survived SIGTERM and SIGKILL:\n" + "\n".join(leftovers)


@pytest.fixture(scope="session")
def example_runs(airflow_stack: AirflowStack, emulator) -> ExampleRuns:
    """Trigger every example DAG through the REST API and wait (bounded) until all runs finish."""
    runs = run_examples(airflow_stack, emulator, run_timeout=RUN_TIMEOUT)
    _summary.append(f"example runs finished in {runs.seconds}s:")
    _summary.extend(f"  {o.describe(with_logs=False)}" for o in [*runs.passing.values(), runs.failing_check])
    seen = ", ".join(f"{dag}.{task}" for dag, task in sorted(runs.seen_deferred))
    _summary.append(f"task instances seen in state deferred while polling: {seen or 'none'}")
    _summary.append(f"DataWorks API calls received by the emulator: {runs.api_calls}")
    return runs


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR
