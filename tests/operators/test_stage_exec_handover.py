"""``stage_exec_policy`` through the operator, the sensor and the trigger, against the emulator.

A stage DataWorks refused before the task deferred must not be executed again by the trigger on
its first read: the task hands ``exec_failures`` over and the trigger waits out the rest of the
backoff, then executes it again and the deployment completes.
"""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.sensors.pipeline_run import PipelineRunSensor
from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

from .support import BASIC, FAST_RETRIES, NODE, POLL, only_event, only_run, rebuild, run_task

#: a backoff long against the poll interval (many trigger reads fit in it), short for a test
POLICY = {"attempts": 4, "backoff": 1.0, "max_backoff": 2.0}
REFUSED = {"status": 400, "code": "Invalid.Stage.NotReady", "message": "stage is being prepared"}


def exec_calls(emu) -> list[dict]:
    return emu.calls("ExecPipelineRunStage")


def deploy(**kwargs) -> CreatePipelineRunOperator:
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    return CreatePipelineRunOperator(object_id=NODE, **kwargs)


def sensor(run_id: str, **kwargs) -> PipelineRunSensor:
    kwargs.setdefault("stage_exec_policy", POLICY)
    return PipelineRunSensor(
        task_id="wait",
        pipeline_run_id=run_id,
        advance_stages=True,
        poke_interval=POLL,
        timeout=60,
        deferrable=True,
        dataworks_retry_policy=FAST_RETRIES,
        **kwargs,
    )


def assert_refusal_waited_out_by_the_trigger(emu) -> None:
    """The refused PROD_CHECK was executed again only after the backoff, with reads in between."""
    calls = exec_calls(emu)
    assert [(c["status"], c["fault"]) for c in calls] == [(400, "http_error"), (200, None), (200, None)]
    refused_at, again_at = calls[0]["time"], calls[1]["time"]
    # the whole first backoff lies between the two (generous margin for clock granularity only)
    assert again_at - refused_at >= 0.9 * POLICY["backoff"], (refused_at, again_at)
    reads_between = [c for c in emu.calls("GetPipelineRun") if refused_at < c["time"] < again_at]
    assert len(reads_between) >= 3  # the trigger read the run and saw PROD_CHECK waiting, and left it


def test_operator_hands_a_refused_stage_to_the_trigger_which_waits_its_backoff(emu, conn, task_instance):
    emu.set_init_seconds(0)  # the check before deferring meets PROD_CHECK waiting and executes it
    emu.inject_fault("ExecPipelineRunStage", **REFUSED)
    context = task_instance.context()

    with pytest.raises(TaskDeferred) as deferred:
        deploy(deferrable=True, stage_exec_policy=POLICY).execute(context)

    trigger = deferred.value.trigger
    assert isinstance(trigger, PipelineRunTrigger)
    assert trigger.exec_failures == {"PROD_CHECK": 1}
    assert trigger.stage_exec_policy == POLICY
    assert len(exec_calls(emu)) == 1  # refused before deferring

    event = only_event(trigger)  # rebuilt from serialize(), as the triggerer does
    result = deploy(deferrable=True, stage_exec_policy=POLICY).resume_execution(
        deferred.value.method_name, {"event": event, **(deferred.value.kwargs or {})}, context
    )

    run = only_run(emu, NODE)
    assert result == run["id"] and run["status"] == "Success"
    assert emu.get_object(BASIC, NODE)["deployed"] is True
    assert_refusal_waited_out_by_the_trigger(emu)


def test_sensor_hands_a_refused_stage_to_the_trigger_which_waits_its_backoff(emu, conn, task_instance):
    emu.set_init_seconds(0)
    run_id = deploy(wait_for_completion=False).execute(task_instance.context())
    emu.inject_fault("ExecPipelineRunStage", **REFUSED)
    context = task_instance.context()

    with pytest.raises(TaskDeferred) as deferred:
        sensor(run_id).execute(context)

    trigger = deferred.value.trigger
    assert isinstance(trigger, PipelineRunTrigger)
    assert trigger.exec_failures == {"PROD_CHECK": 1}
    assert trigger.stage_exec_policy == POLICY

    event = only_event(trigger)
    result = sensor(run_id).resume_execution(deferred.value.method_name, {"event": event}, context)

    run = only_run(emu, NODE)
    assert result == run_id and run["status"] == "Success"
    assert emu.get_object(BASIC, NODE)["deployed"] is True
    assert_refusal_waited_out_by_the_trigger(emu)


def test_blocking_operator_uses_its_stage_exec_policy(emu, conn, task_instance):
    emu.inject_fault("ExecPipelineRunStage", kind="not_started")
    fast = {"attempts": 3, "backoff": 0.3, "max_backoff": 0.3}

    result = run_task(lambda: deploy(deferrable=False, stage_exec_policy=fast), task_instance.context())

    run = only_run(emu, NODE)
    assert result == run["id"] and run["status"] == "Success"
    calls = exec_calls(emu)
    assert [(c["status"], c["fault"]) for c in calls] == [(200, "not_started"), (200, None), (200, None)]
    waited = calls[1]["time"] - calls[0]["time"]
    # the task's own backoff, not the default 10 s
    assert 0.9 * fast["backoff"] <= waited < 5.0, waited


def test_trigger_round_trip_keeps_the_stage_exec_kwargs():
    original = PipelineRunTrigger(
        pipeline_run_id="run-1",
        project_id=BASIC,
        poll_interval=2.0,
        advance_stages=True,
        executed_stages=["BUILD_PACKAGE"],
        next_poll_at=1_900_000_000.5,
        check_only=True,
        stage_exec_policy=POLICY,
        exec_failures={"PROD_CHECK": 2},
        observed_stages={
            "BUILD_PACKAGE": [1_900_000_000_000, 1_900_000_004_000],
            "PROD_CHECK": [1_900_000_005_000, None],
        },
    )
    classpath, kwargs = original.serialize()

    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON primitives only
    assert (kwargs["stage_exec_policy"], kwargs["exec_failures"], kwargs["check_only"]) == (
        POLICY,
        {"PROD_CHECK": 2},
        True,
    )
    assert kwargs["observed_stages"]["PROD_CHECK"] == [1_900_000_005_000, None]
    rebuilt = rebuild(original)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_trigger_defaults_to_the_default_policy_and_no_failures():
    _, kwargs = PipelineRunTrigger(pipeline_run_id="run-1", project_id=BASIC).serialize()

    assert kwargs["exec_failures"] == {}
    assert kwargs["stage_exec_policy"] == {
        "attempts": 5,
        "backoff": 10.0,
        "max_backoff": 120.0,
    }


BAD_POLICIES = [
    ({"attempts": 0}, "stage_exec_policy attempts"),
    ({"backoff": -1}, "stage_exec_policy backoff"),
    ({"retries": 3}, "stage_exec_policy has unknown keys: retries"),
    ("fast", "stage_exec_policy must be"),
]


@pytest.mark.parametrize(("policy", "message"), BAD_POLICIES)
def test_operator_refuses_a_bad_stage_exec_policy_before_any_call(emu, conn, task_instance, policy, message):
    with pytest.raises(ValueError, match=message):
        deploy(stage_exec_policy=policy).execute(task_instance.context())
    assert emu.calls("CreatePipelineRun") == []


@pytest.mark.parametrize(("policy", "message"), BAD_POLICIES)
def test_sensor_refuses_a_bad_stage_exec_policy_before_any_call(emu, conn, task_instance, policy, message):
    with pytest.raises(ValueError, match=message):
        sensor("run-1", stage_exec_policy=policy).execute(task_instance.context())
    assert emu.calls("GetPipelineRun") == []
