"""A short real-Airflow e2e on the installed version: scheduler + triggerer + API, against the emulator.

One sync deploy, one deferred deploy, and a deferred task killed through the REST API whose
pipeline run must be abolished (3.3+: the trigger's ``on_kill``; below: the trigger's cancel seam).
Part of ``make compat`` for every older Airflow; on 3.3 the full ``tests/e2e`` covers the same.
"""

from __future__ import annotations

import os

import pytest
from e2e.processes import wait_until

from compat.stack import CompatClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600, method="signal")]

#: the object of compat_kill's deploy: its PROD_CHECK stage waits for an approval (default seed)
AWAITS_APPROVAL = "8600000000000000005"
TIMEOUT = float(os.environ.get("E2E_RUN_TIMEOUT", "180"))


def _run(client: CompatClient, dag_id: str) -> str:
    client.unpause(dag_id)
    return client.trigger(dag_id)


def _only_run(emulator, object_id: str) -> dict:
    runs = emulator.runs(object_id=object_id, project_id=10000)
    assert len(runs) == 1, f"expected one pipeline run of {object_id}, got {runs}"
    return runs[0]


@pytest.mark.parametrize(
    ("dag_id", "object_id"),
    [("compat_sync_deploy", "8600000000000000002"), ("compat_deferred_deploy", "8600000000000000003")],
)
def test_deploy_succeeds_with_one_pipeline_run(client: CompatClient, emulator, dag_id: str, object_id: str) -> None:
    run_id = _run(client, dag_id)

    assert client.wait_task(dag_id, run_id, "deploy", {"success", "failed"}, TIMEOUT) == "success"
    run = _only_run(emulator, object_id)
    assert (run["type"], run["status"]) == ("Online", "Success")
    assert emulator.get_object(10000, object_id)["deployed"] is True
    wait_until(lambda: client.run_state(dag_id, run_id) == "success", timeout=60, interval=1, what="DAG run success")


def test_killing_a_deferred_task_abolishes_its_pipeline_run(client: CompatClient, emulator) -> None:
    run_id = _run(client, "compat_deferred_kill")
    client.wait_task("compat_deferred_kill", run_id, "deploy", {"deferred"}, TIMEOUT)
    # Kill once the trigger is polling (the triggerer picks a new trigger up within seconds), as a
    # person would: two more reads of the run than the task made before deferring.
    reads = len(emulator.calls("GetPipelineRun"))
    wait_until(
        lambda: len(emulator.calls("GetPipelineRun")) >= reads + 2, timeout=60, interval=0.5, what="the trigger polling"
    )
    assert _only_run(emulator, AWAITS_APPROVAL)["status"] in {"Init", "Running"}

    client.mark_failed("compat_deferred_kill", run_id, "deploy")

    def abolished() -> bool:
        return _only_run(emulator, AWAITS_APPROVAL)["status"] in {"Termination", "Cancel"}

    wait_until(abolished, timeout=60, interval=1, what="the killed task's pipeline run to be abolished")
    assert emulator.calls("AbolishPipelineRun"), "no AbolishPipelineRun reached the emulator"
    assert client.task_state("compat_deferred_kill", run_id, "deploy") == "failed"
