"""Clearing a succeeded deploy task through the REST API deploys again, on a real scheduler and triggerer.

The examples' session run (``example_runs``) is collected first, so the runs created here never
count towards its one-run-per-object checks; this test triggers a DAG run of its own.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from .airflow_stack import TERMINAL_RUN_STATES, AirflowClient
from .example_runs import EXAMPLES, EmulatorRun, ExampleRuns, runs_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600, method="signal")]

DAG_ID = "dataworks_release_window"  # one deferrable deploy task
TASK_ID = "deploy_workflow"
OBJECT_ID = EXAMPLES[DAG_ID].deploys[TASK_ID][0]
WAIT_SECONDS = 180.0


def _wait_for_run(client: AirflowClient, run_id: str) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        state = client.run_states().get((DAG_ID, run_id))
        if state in TERMINAL_RUN_STATES:
            return state
        time.sleep(1.0)
    raise AssertionError(f"DAG run {run_id} did not finish within {WAIT_SECONDS} s")


def _task(client: AirflowClient, run_id: str) -> dict[str, Any]:
    return next(ti for ti in client.task_instances(DAG_ID, run_id) if ti["task_id"] == TASK_ID)


def _object_runs(emulator: Any) -> list[EmulatorRun]:
    return runs_for([EmulatorRun.parse(r) for r in emulator.runs()], OBJECT_ID)


def test_clearing_a_succeeded_deploy_deploys_again(example_runs: ExampleRuns, emulator: Any) -> None:
    client = example_runs.client
    before = {run.id for run in _object_runs(emulator)}
    run_id = client.trigger(DAG_ID, logical_date=datetime.now(UTC).isoformat())
    assert _wait_for_run(client, run_id) == "success"
    first_runs = [run for run in _object_runs(emulator) if run.id not in before]
    assert [run.status for run in first_runs] == ["Success"], [run.raw for run in first_runs]
    first = first_runs[0].id
    assert str(client.xcom(DAG_ID, run_id, TASK_ID, "pipeline_run_id")) == first

    # "Clear" in the UI: the finished task instance and its DAG run start again
    body = {"dry_run": False, "only_failed": False, "reset_dag_runs": True, "dag_run_id": run_id, "task_ids": [TASK_ID]}
    client.request("POST", f"/dags/{DAG_ID}/clearTaskInstances", json=body)
    assert _wait_for_run(client, run_id) == "success"

    mine = [run for run in _object_runs(emulator) if run.id not in before]
    assert len(mine) == 2, [run.raw for run in mine]  # a new deployment, not the old run adopted
    second = next(run for run in mine if run.id != first)
    assert second.status == "Success", second.raw
    assert str(client.xcom(DAG_ID, run_id, TASK_ID, "pipeline_run_id")) == second.id
    ti = _task(client, run_id)
    assert ti["state"] == "success" and ti["try_number"] == 2, ti
