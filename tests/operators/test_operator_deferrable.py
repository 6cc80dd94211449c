"""CreatePipelineRunOperator in deferrable mode: execute → trigger (rebuilt from serialize) → execute_complete."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from compat.versions import AIRFLOW_V_3_3_PLUS

from airflow_provider_dataworks.exceptions import (
    InvalidTriggerEventError,
    PipelineRunFailedError,
    PipelineRunTimeoutError,
)
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

from .support import (
    ACTIVE,
    APPROVAL_NODE,
    FAILING_NODE,
    FAST_RETRIES,
    NODE,
    POLL,
    STANDARD,
    STD_WORKFLOW,
    WORKFLOW,
    count_calls,
    only_event,
    only_run,
    run_task,
)


def deferrable(**kwargs):
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("deferrable", True)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    return lambda: CreatePipelineRunOperator(**kwargs)


@pytest.mark.version_matrix
def test_deferred_deployment_succeeds_and_publishes_the_run(emu, conn, task_instance):
    emu.set_stage_seconds(0.1)
    events: list[dict] = []
    result = run_task(deferrable(object_id=WORKFLOW), task_instance.context(), events=events)

    run = only_run(emu, WORKFLOW)
    assert result == run["id"] == task_instance.state.xcom["pipeline_run_id"]
    assert run["status"] == "Success"
    assert [e["status"] for e in events] == ["success"]
    assert count_calls(emu, "ExecPipelineRunStage") == 2


def test_the_trigger_gets_json_primitives_and_an_absolute_deadline(emu, conn, task_instance):
    emu.set_stage_seconds(5)
    op = deferrable(object_id=NODE, timeout=600, region="cn-shanghai")()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(task_instance.context())

    trigger = deferred.value.trigger
    assert isinstance(trigger, PipelineRunTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_dataworks.triggers.pipeline_run.PipelineRunTrigger"
    run = only_run(emu, NODE)
    assert kwargs["pipeline_run_id"] == run["id"]
    assert kwargs["project_id"] == 10000
    assert kwargs["cancel_on_kill"] is True
    assert kwargs["retry_policy"] == FAST_RETRIES
    assert kwargs["region"] == "cn-shanghai"
    import time

    assert 590 < kwargs["end_time"] - time.time() <= 600
    assert deferred.value.timeout is None  # the trigger owns the deadline
    assert deferred.value.kwargs == {"pipeline_run_id": run["id"], "project_id": 10000}
    # published and stored before deferring
    assert task_instance.state.xcom["pipeline_run_id"] == run["id"]
    if AIRFLOW_V_3_3_PLUS:  # the task state store
        assert task_instance.state.store["dataworks_pipeline_run"]["pipeline_run_id"] == run["id"]


def test_the_first_stage_starts_before_deferring_and_is_not_executed_again(emu, conn, task_instance):
    emu.set_init_seconds(0)  # the check before deferring sees the run past its Init phase
    op = deferrable(object_id=NODE, poll_interval=0.2)()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(task_instance.context())

    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["executed_stages"] == ["PROD_CHECK"]
    assert only_run(emu, NODE)["stages"][1]["status"] == "Success"
    import time

    # the task just read the run: the trigger's first read waits one poll interval
    assert 0 < kwargs["next_poll_at"] - time.time() <= 0.2
    reads_before = count_calls(emu, "GetPipelineRun")
    events = only_event(deferred.value.trigger)
    assert events["status"] == "success"
    assert count_calls(emu, "ExecPipelineRunStage") == 2  # PROD_CHECK once, then PROD
    assert not [c for c in emu.calls("ExecPipelineRunStage") if c["status"] != 200]
    assert count_calls(emu, "GetPipelineRun") - reads_before >= 1


def test_a_run_that_already_finished_is_not_deferred(emu, conn, task_instance):
    emu.set_init_seconds(0)  # the check before deferring sees the run past its Init phase
    # Auto mode with instant stages: the run is Success at the first status check
    op = deferrable(object_id=NODE, run_mode="Auto", auto_run_until_stage="PROD", advance_stages=False)()
    result = op.execute(task_instance.context())  # no TaskDeferred

    assert result == only_run(emu, NODE)["id"]
    assert only_run(emu, NODE)["status"] == "Success"


def test_a_run_that_already_failed_fails_without_deferring(emu, conn, task_instance):
    emu.set_init_seconds(0)  # the check before deferring sees the run past its Init phase
    op = deferrable(object_id=FAILING_NODE, run_mode="Auto", auto_run_until_stage="PROD", advance_stages=False)()
    with pytest.raises(PipelineRunFailedError, match="PROD_CHECK"):
        op.execute(task_instance.context())


@pytest.mark.version_matrix
def test_deferred_failure_carries_stage_messages_and_request_id(emu, conn, task_instance):
    emu.set_stage_seconds(0.05)
    with pytest.raises(PipelineRunFailedError) as raised:
        run_task(deferrable(object_id=FAILING_NODE), task_instance.context())

    run = only_run(emu, FAILING_NODE)
    text = str(raised.value)
    assert run["id"] in text and "PROD_CHECK (type Check, step 2)" in text
    assert next(s for s in run["stages"] if s["status"] == "Fail")["message"] in text
    assert "Last RequestId" in text


@pytest.mark.version_matrix
def test_deferred_timeout_abolishes_the_run_and_names_the_stage(emu, conn, task_instance):
    with pytest.raises(PipelineRunTimeoutError) as raised:
        run_task(deferrable(object_id=APPROVAL_NODE, timeout=0.5), task_instance.context())

    text = str(raised.value)
    assert "PROD_CHECK" in text and "was abolished" in text
    assert only_run(emu, APPROVAL_NODE)["status"] in {"Termination", "Cancel"}


def test_deferred_timeout_without_cancel_on_timeout_leaves_the_run(emu, conn, task_instance):
    with pytest.raises(PipelineRunTimeoutError, match="left running"):
        run_task(deferrable(object_id=APPROVAL_NODE, timeout=0.3, cancel_on_timeout=False), task_instance.context())

    assert only_run(emu, APPROVAL_NODE)["status"] in ACTIVE
    assert count_calls(emu, "AbolishPipelineRun") == 0


def test_deferred_timeout_abolishes_even_without_cancel_on_kill(emu, conn, task_instance):
    with pytest.raises(PipelineRunTimeoutError, match="was abolished"):
        run_task(deferrable(object_id=APPROVAL_NODE, timeout=0.3, cancel_on_kill=False), task_instance.context())

    assert only_run(emu, APPROVAL_NODE)["status"] in {"Termination", "Cancel"}


def test_deferred_advance_until_stage_stops_after_dev(emu, conn, task_instance):
    emu.set_stage_seconds(0.05)
    result = run_task(
        deferrable(object_id=STD_WORKFLOW, project_id=STANDARD, advance_until_stage="DEV"), task_instance.context()
    )

    run = only_run(emu, STD_WORKFLOW, STANDARD)
    assert result == run["id"]
    assert run["status"] in ACTIVE
    assert [s["status"] for s in run["stages"]] == ["Success", "Success", "Success", "Init", "Init"]


@pytest.mark.version_matrix
def test_deferred_transient_faults_do_not_fail_the_deployment(emu, conn, task_instance):
    emu.set_stage_seconds(0.05)
    op = deferrable(object_id=NODE)()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(task_instance.context())
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=429, count=3, retry_after_ms=20)
    emu.inject_fault(action="ExecPipelineRunStage", kind="http_error", status=500, count=2)

    from .support import only_event

    event = only_event(deferred.value.trigger)
    result = deferrable(object_id=NODE)().execute_complete(
        task_instance.context(), event=event, **deferred.value.kwargs
    )

    assert result == only_run(emu, NODE)["id"]
    assert only_run(emu, NODE)["status"] == "Success"
    assert len([c for c in emu.calls("GetPipelineRun") if c["fault"]]) == 3
    assert len([c for c in emu.calls("ExecPipelineRunStage") if c["fault"]]) == 2


@pytest.mark.parametrize("event", [None, {}, {"status": "done"}])
def test_execute_complete_never_succeeds_on_a_bad_event(emu, conn, task_instance, event):
    op = deferrable(object_id=NODE)()
    with pytest.raises(InvalidTriggerEventError):
        op.execute_complete(task_instance.context(), event=event, pipeline_run_id="r1", project_id=10000)
