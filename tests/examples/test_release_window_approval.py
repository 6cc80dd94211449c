"""The release window approved in Airflow (``example_release_window_approval.py``), end to end.

``dag.test()`` runs the DAG against the emulator, and a person answers the approval the way the UI
does: through Airflow's own REST API (``PATCH …/hitlDetails``), served in this process by Airflow's
API app on the same metadata database. Each test asserts what happened in DataWorks (one run, which
stages ran, its final status, the object's deployed state), what Airflow recorded (task states, the
approval's question and answer, the asset event) and that every task worked on the same run.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

# The DAG runs on Airflow 3.1+ (Human-in-the-loop), but dag.test() resumes a task awaiting input only
# from 3.3 on: 3.1 and 3.2's in-process supervisor does not answer the HITL operator's request for its
# answer (apache/airflow#68492), so the task fails there under dag.test() alone.
pytestmark = [pytest.mark.min_airflow("3.3"), pytest.mark.timeout(240)]

DAG_ID = "dataworks_release_window_approval"
OBJECT_ID = "8600000000000000013"
WORKSPACE = 10000
ASSET_URI = "dataworks://cn-hangzhou/10000/8600000000000000013"
#: the states of a task that asked a person: parked (Airflow 3.3+) or deferred to HITLTrigger (3.1, 3.2)
WAITING_FOR_A_PERSON = ("awaiting_input", "deferred")
#: how long the approver waits for the question to appear (the build and checks run first)
QUESTION_TIMEOUT = 60.0


class Approver(threading.Thread):
    """A person who answers the DAG's pending approval once, through Airflow's REST API."""

    def __init__(self, client: Any, option: str) -> None:
        super().__init__(name=f"approver-{option}", daemon=True)
        self.client = client
        self.option = option
        #: the pending request as the API listed it, and the API's answer to the PATCH
        self.question: dict[str, Any] | None = None
        self.answer: dict[str, Any] | None = None
        self.error: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + QUESTION_TIMEOUT
        listed = None
        while time.monotonic() < deadline:
            listed = self.client.get(
                f"/api/v2/dags/{DAG_ID}/dagRuns/~/hitlDetails", params={"response_received": False}
            )
            pending = listed.json().get("hitl_details", []) if listed.status_code == 200 else []
            # Answer once the task waits for it, as a person does. (On SQLite, which has no row locks,
            # an answer written while the worker is still parking the task can be missed by both.)
            parked = [detail for detail in pending if detail["task_instance"]["state"] in WAITING_FOR_A_PERSON]
            if parked:
                self.question = parked[0]
                ti = self.question["task_instance"]
                path = (
                    f"/api/v2/dags/{DAG_ID}/dagRuns/{ti['dag_run_id']}/taskInstances/"
                    f"{ti['task_id']}/{ti['map_index']}/hitlDetails"
                )
                answered = self.client.patch(path, json={"chosen_options": [self.option], "params_input": {}})
                if answered.status_code != 200:
                    self.error = f"PATCH {path} answered {answered.status_code}: {answered.text}"
                else:
                    self.answer = answered.json()
                return
            time.sleep(0.2)
        last = f"{listed.status_code} {listed.text[:300]}" if listed is not None else "nothing"
        self.error = (
            f"no pending approval of {DAG_ID} appeared within {QUESTION_TIMEOUT} s; the API last answered {last}"
        )


@pytest.fixture
def api_client(example_dag_bag: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Airflow's REST API on the test metadata database; every caller is an admin (SimpleAuthManager)."""
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    purge_cached_app()
    with TestClient(create_app("core")) as client:
        yield client
    purge_cached_app()


@pytest.fixture
def run_with_answer(run_example: Any, api_client: Any) -> Any:
    """Run the DAG while a person answers its approval with ``option``; return the DAG run and the approver."""

    def run(option: str) -> tuple[Any, Approver]:
        approver = Approver(api_client, option)
        approver.start()
        dag_run = run_example(DAG_ID)
        approver.join(QUESTION_TIMEOUT)
        assert approver.error is None, approver.error
        return dag_run, approver

    return run


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def return_value(dag_run: Any, task_id: str) -> Any:
    return dag_run.get_task_instance(task_id).xcom_pull(task_ids=task_id)


def only_run(emu: Any) -> dict[str, Any]:
    runs = emu.runs(object_id=OBJECT_ID, project_id=WORKSPACE)
    assert len(runs) == 1, f"expected exactly one pipeline run of {OBJECT_ID}, got {len(runs)}"
    return runs[0]


def stage_statuses(run: dict[str, Any]) -> list[tuple[str, str]]:
    return [(stage["code"], stage["status"]) for stage in run["stages"]]


def asset_events(dag_run: Any) -> list[Any]:
    """The asset events the DAG run's tasks emitted for the released workflow."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(
            session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.uri == ASSET_URI, AssetEvent.source_run_id == dag_run.run_id)
            )
        )


def test_approved_release_deploys_the_checked_run_and_announces_the_asset(run_with_answer, emu):
    dag_run, approver = run_with_answer("Approve")

    assert task_states(dag_run) == {
        "prepare_release": "success",
        "approve_release": "success",
        "deploy_release": "success",
        "abolish_release": "skipped",
    }
    run = only_run(emu)
    assert run["status"] == "Success"
    assert stage_statuses(run) == [("BUILD_PACKAGE", "Success"), ("PROD_CHECK", "Success"), ("PROD", "Success")]
    assert emu.get_object(WORKSPACE, OBJECT_ID)["deployed"] is True
    # one run went from task to task: the one prepared is the one deployed
    assert return_value(dag_run, "prepare_release") == run["id"]
    assert return_value(dag_run, "deploy_release") == run["id"]
    (event,) = asset_events(dag_run)
    assert (event.source_dag_id, event.source_task_id) == (DAG_ID, "deploy_release")
    # the sensor that finished the run puts the deployment on the event: downstream DAGs read it
    assert event.extra == {"type": "Online", "pipeline_run_id": run["id"]}
    assert str(dag_run.state) == "success"


def test_the_question_names_the_checked_run_and_its_passed_checks(run_with_answer, emu):
    dag_run, approver = run_with_answer("Approve")

    run = only_run(emu)
    question = approver.question
    assert question is not None
    assert question["task_instance"]["task_id"] == "approve_release"
    assert question["options"] == ["Approve", "Reject"]
    assert question["defaults"] == ["Reject"]
    assert f"pipeline run: `{run['id']}`" in question["body"]
    assert "`BUILD_PACKAGE` Success, `PROD_CHECK` Success, `PROD` Init" in question["body"]
    assert "https://dataworks.data.aliyun.com/cn-hangzhou/ide?defaultProjectId=10000" in question["body"]
    assert approver.answer is not None and approver.answer["chosen_options"] == ["Approve"]


def test_rejected_release_is_abolished_before_prod_and_announces_nothing(run_with_answer, emu):
    dag_run, _ = run_with_answer("Reject")

    assert task_states(dag_run) == {
        "prepare_release": "success",
        "approve_release": "success",
        "deploy_release": "skipped",
        "abolish_release": "success",
    }
    run = only_run(emu)
    assert run["status"] in {"Termination", "Cancel"}
    # the checks ran, the production stage was never started
    assert stage_statuses(run) == [("BUILD_PACKAGE", "Success"), ("PROD_CHECK", "Success"), ("PROD", "Init")]
    assert emu.get_object(WORKSPACE, OBJECT_ID)["deployed"] is False
    assert return_value(dag_run, "abolish_release") == run["id"]
    assert asset_events(dag_run) == []
    assert str(dag_run.state) == "success"


def test_a_failing_check_asks_nobody_and_deploys_nothing(run_example, emu):
    emu.add_object(
        WORKSPACE,
        OBJECT_ID,
        "release_candidate_workflow",
        fail_at_stage="PROD_CHECK",
        fail_message="生产检查未通过: table dws_orders has no owner",
    )

    dag_run = run_example(DAG_ID)

    assert task_states(dag_run) == {
        "prepare_release": "failed",
        "approve_release": "upstream_failed",
        "deploy_release": "upstream_failed",
        "abolish_release": "upstream_failed",
    }
    run = only_run(emu)
    assert run["status"] == "Fail"
    assert stage_statuses(run) == [("BUILD_PACKAGE", "Success"), ("PROD_CHECK", "Fail"), ("PROD", "Init")]
    assert emu.get_object(WORKSPACE, OBJECT_ID)["deployed"] is False
    assert asset_events(dag_run) == []
