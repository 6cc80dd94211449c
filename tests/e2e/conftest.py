"""Session fixtures of the end-to-end step: the DataWorks emulator, a real Airflow deployment, the example runs.

Everything started here is stopped in the fixtures' finalizers, also when a test or the setup fails
and when pytest gets SIGTERM; the temporary directory is removed afterwards. When anything failed,
the tail of every component log is printed once at the end of the session.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .airflow_stack import AirflowStack
from .example_runs import EXAMPLES, ExampleRuns, run_examples
from .session import StepSession

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

SESSION = StepSession("e2e")
# The session's lists under the names the fixtures below have always used.
_cleanups = SESSION.cleanups
_summary = SESSION.summary
_failure_logs = SESSION.failure_logs


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    SESSION.write_summary(terminalreporter)


@pytest.fixture(scope="session")
def e2e_tmp() -> Iterator[Path]:
    """A temporary directory for the whole step, removed at the end (kept with E2E_KEEP_TMP=1)."""
    with SESSION.temporary_directory("dataworks-e2e-") as path:
        yield path


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

    options = ["--stage-seconds", STAGE_SECONDS]
    with SESSION.emulator_process(e2e_tmp / "emulator.log", options, request=request, log_lines=40) as (url, _):
        emulator = DataWorksEmulator.attach(url)
        _slow_quality_gate(emulator)
        yield emulator


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
    started = time.monotonic()
    with SESSION.stopped_at_end(stack.stop, request=request, failure_log=stack.log_tails):
        stack.start(timeout=STARTUP_TIMEOUT, expected_dag_ids=EXAMPLES.keys())
        _summary.append(f"Airflow up in {time.monotonic() - started:.1f}s at {stack.base_url}")
        yield stack


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
