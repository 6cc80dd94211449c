"""Real DAGs run with Airflow's own ``dag.test()`` (it runs deferred tasks inline) against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from compat import versions

from .support import ACTIVE, BASIC, FAILING_NODE, NODE, STANDARD, STD_WORKFLOW, WORKFLOW, only_run

URL = f"https://dataworks.data.aliyun.com/cn-hangzhou/ide?defaultProjectId={BASIC}"


DAGS_FOLDER = Path(__file__).resolve().parent / "dags"


@pytest.fixture(scope="module")
def dag_bag(airflow_db):
    """Parse ``dags/`` as the DAGs folder, in the metadata database ``dag.test()`` needs."""
    from airflow import settings

    with pytest.MonkeyPatch.context() as mp:
        # dag.test() syncs the DAGs of the "dags-folder" bundle, whose path is settings.DAGS_FOLDER
        mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))
        mp.setattr(settings, "DAGS_FOLDER", str(DAGS_FOLDER))
        bag = versions.dag_bag(str(DAGS_FOLDER))
        assert not bag.import_errors, bag.import_errors
        yield bag


@pytest.fixture
def run_dag(dag_bag, emu, conn):
    def run(dag_id: str):
        return dag_bag.get_dag(dag_id).test()

    return run


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def xcom(dag_run, task_id: str, key: str = "return_value") -> Any:
    return versions.xcom_values(dag_run, task_id, key).get(-1)


def stored_record(dag_run, task_id: str) -> Any:
    import json

    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(TaskStateStoreModel).where(
                TaskStateStoreModel.dag_id == dag_run.dag_id,
                TaskStateStoreModel.run_id == dag_run.run_id,
                TaskStateStoreModel.task_id == task_id,
            )
        ).first()
        return None if row is None else json.loads(row.value) if isinstance(row.value, str) else row.value


@pytest.mark.parametrize("mode", ["sync", "deferrable"])
def test_dag_deploys_and_publishes_run_id_url_and_link(run_dag, emu, mode):
    dag_run = run_dag(f"op_test_deploy_{mode}")

    run = only_run(emu, WORKFLOW)
    assert states(dag_run) == {"deploy": "success"}
    assert run["status"] == "Success"
    assert xcom(dag_run, "deploy") == run["id"]
    assert xcom(dag_run, "deploy", "pipeline_run_id") == run["id"]
    assert xcom(dag_run, "deploy", "pipeline_run_url") == URL
    if versions.AIRFLOW_V_3:  # 2.x renders the link from the url XCom, not an XCom of its own
        assert xcom(dag_run, "deploy", "_link_DataWorksPipelineRunLink") == URL
    if versions.AIRFLOW_V_3_3_PLUS:  # the task state store (3.3+) works under dag.test(): the run id is in it
        assert stored_record(dag_run, "deploy")["pipeline_run_id"] == run["id"]


def test_dag_create_then_deferrable_sensor(run_dag, emu):
    emu.set_stage_seconds(0.05)
    dag_run = run_dag("op_test_create_then_sensor")

    run = only_run(emu, NODE)
    assert states(dag_run) == {"deploy": "success", "wait": "success"}
    assert run["status"] == "Success"
    assert xcom(dag_run, "wait") == run["id"]


# Airflow 3.0's API client builds TaskRescheduleStartDate with model_construct from the JSON text;
# dag.test()'s in-process supervisor hands it on unparsed, and BaseSensorOperator subtracts a str
@pytest.mark.deselect_on("3.0", reason="3.0's dag.test() gives a reschedule sensor its first date as text")
def test_dag_standard_mode_dev_then_sensor_promotes_to_prod(run_dag, emu):
    dag_run = run_dag("op_test_dev_then_prod")

    run = only_run(emu, STD_WORKFLOW, STANDARD)
    assert states(dag_run) == {"deploy_to_dev": "success", "promote_to_prod": "success"}
    assert run["status"] == "Success"
    assert xcom(dag_run, "deploy_to_dev") == run["id"]


@pytest.mark.parametrize("mode", ["sync", "deferrable"])
def test_dag_with_a_failing_deployment_fails_the_task(run_dag, emu, mode):
    dag_run = run_dag(f"op_test_fail_{mode}")

    run = only_run(emu, FAILING_NODE)
    assert run["status"] == "Fail"
    assert states(dag_run) == {"deploy": "failed"}
    assert xcom(dag_run, "deploy", "pipeline_run_id") == run["id"]


# ---------------------------------------------------------------------------- run memory and timeouts in real Airflow


def executions(emu) -> int:
    return len(emu.calls("ExecPipelineRunStage"))


@pytest.mark.parametrize("mode", ["sync", "deferrable"])
@pytest.mark.parametrize("store", ["task_state_store", "tag_only"])
def test_a_recreated_dag_run_with_the_same_run_id_deploys_anew(dag_bag, emu, conn, monkeypatch, mode, store):
    import pendulum

    from airflow_provider_dataworks import _compat

    if store == "tag_only":  # what Airflow below 3.3 gives the task: no task_state_store
        monkeypatch.setattr(_compat, "AIRFLOW_V_3_3_PLUS", False)
    dag = dag_bag.get_dag(f"op_test_deploy_{mode}")
    when = pendulum.datetime(2026, 3, 1, tz="UTC")

    dated = {"logical_date": when, "run_after": when} if versions.AIRFLOW_V_3 else {"execution_date": when}
    first = dag.test(**dated)
    stages = executions(emu)
    # dag.test() deletes the DAG run of that date and creates it again, with the same run_id
    second = dag.test(**dated)

    assert first.run_id == second.run_id
    assert states(first) == states(second) == {"deploy": "success"}
    runs = emu.runs(object_id=WORKFLOW, project_id=BASIC)
    assert [run["status"] for run in runs] == ["Success", "Success"]
    assert executions(emu) == 2 * stages  # every stage ran again: a new deployment
    assert xcom(second, "deploy") == runs[-1]["id"] != runs[0]["id"]
    assert len(emu.calls("ListPipelineRuns")) == 0  # first tries never list


@pytest.mark.parametrize("mode", ["sync", "deferrable"])
@pytest.mark.parametrize("cancel_on_timeout", [True, False], ids=["cancel", "keep"])
def test_execution_timeout_fails_the_task_and_abolishes_per_cancel_on_timeout(run_dag, emu, mode, cancel_on_timeout):
    dag_id = f"op_test_execution_timeout_{mode}" if cancel_on_timeout else f"op_test_execution_timeout_keep_{mode}"

    if versions.AIRFLOW_V_3 or mode == "deferrable":
        dag_run = run_dag(dag_id)
    else:
        # Airflow 2.x's AirflowTaskTimeout is a BaseException: its dag.test() (not its scheduler) lets it
        # through, after the task instance was failed
        from airflow.exceptions import AirflowTaskTimeout
        from airflow.models.dagrun import DagRun

        with pytest.raises(AirflowTaskTimeout):
            run_dag(dag_id)
        (dag_run,) = DagRun.find(dag_id=dag_id)

    assert states(dag_run) == {"deploy": "failed"}
    runs = emu.runs(object_id="8600000000000000005", project_id=BASIC)
    assert len(runs) == 1
    if cancel_on_timeout:
        assert runs[0]["status"] in {"Termination", "Cancel"}
    else:
        assert runs[0]["status"] in ACTIVE
        assert len(emu.calls("AbolishPipelineRun")) == 0


@pytest.mark.parametrize("mode", ["sync", "deferrable"])
def test_a_deployment_stopped_in_the_console_fails_once_and_is_never_retried(run_dag, emu, mode):
    """Real Airflow decides on the retry: with retries=2, the task fails on its first try and stays failed."""
    import threading
    import time

    emu.set_stage_seconds(2.0)

    def stop_it_in_the_console() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = [r for r in emu.runs(object_id=NODE) if r["status"] == "Running"]
            if running:
                emu.console_abolish(running[0]["id"])
                return
            time.sleep(0.05)

    person = threading.Thread(target=stop_it_in_the_console, daemon=True)
    person.start()
    dag_run = run_dag(f"op_test_console_stop_{mode}")
    person.join(5)

    runs = emu.runs(object_id=NODE, project_id=BASIC)
    (ti,) = dag_run.get_task_instances()
    assert str(ti.state) == "failed"
    assert ti.try_number == 1  # AirflowFailException: no retry, although retries=2
    assert len(runs) == 1 and runs[0]["abolished_by"] == "console"
    assert emu.calls("CreatePipelineRun")[1:] == []
