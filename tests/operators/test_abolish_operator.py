"""AbolishPipelineRunOperator: succeeds only when a read confirms that nothing of the run goes on."""

from __future__ import annotations

import logging

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_dataworks.exceptions import DataWorksError
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.operators.abolish_pipeline_run import AbolishPipelineRunOperator

from .support import ACTIVE, BASIC, FAILING_NODE, FAST_RETRIES, NODE, count_calls, wait_for

STOPPED = {"Termination", "Cancel"}


def abolish(**kwargs) -> AbolishPipelineRunOperator:
    kwargs.setdefault("task_id", "abolish_release")
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    return AbolishPipelineRunOperator(**kwargs)


def run_until(emu, object_id: str, stage: str) -> str:
    """A run DataWorks drives by itself up to ``stage`` (inclusive), then leaves waiting."""
    emu.set_stage_seconds(0.05)
    run_id = DataWorksHook().create_pipeline_run(
        object_id, project_id=BASIC, run_mode="Auto", auto_run_until_stage=stage
    )
    wait_for(
        lambda: emu.run(run_id)["status"] in STOPPED | {"Fail", "Success"} or _stage(emu, run_id, stage) == "Success"
    )
    return run_id


def _stage(emu, run_id: str, code: str) -> str:
    return {stage["code"]: stage["status"] for stage in emu.run(run_id)["stages"]}[code]


def test_a_run_waiting_before_prod_is_abolished_and_prod_never_starts(emu, conn, task_instance):
    run_id = run_until(emu, NODE, "PROD_CHECK")
    assert emu.run(run_id)["status"] in ACTIVE

    result = abolish(pipeline_run_id=run_id).execute(task_instance.context())

    assert result == run_id
    run = emu.run(run_id)
    assert run["status"] in STOPPED
    assert _stage(emu, run_id, "PROD") == "Init"
    assert count_calls(emu, "ExecPipelineRunStage") == 0
    assert count_calls(emu, "CreatePipelineRun") == 1  # the test's own


def test_a_run_that_had_failed_is_left_as_it_is_and_the_task_succeeds(emu, conn, task_instance, capsys, caplog):
    caplog.set_level(logging.INFO)
    run_id = run_until(emu, FAILING_NODE, "PROD")
    assert emu.run(run_id)["status"] == "Fail"

    assert abolish(pipeline_run_id=run_id).execute(task_instance.context()) == run_id

    assert emu.run(run_id)["status"] == "Fail"
    logged = capsys.readouterr().out + caplog.text  # the task logger writes to either, by Airflow version
    assert f"Pipeline run {run_id} had already finished (Fail); nothing to abolish." in logged


def test_a_run_that_deployed_fails_the_task_without_retry(emu, conn, task_instance):
    run_id = run_until(emu, NODE, "PROD")
    assert emu.run(run_id)["status"] == "Success"

    with pytest.raises(AirflowFailException) as raised:
        abolish(pipeline_run_id=run_id).execute(task_instance.context())

    assert f"Pipeline run {run_id} had already finished (Success)" in str(raised.value)
    assert "abolishing cannot undo a deployment" in str(raised.value)
    assert emu.get_object(BASIC, NODE)["deployed"] is True


def test_a_refused_abolish_fails_the_try_saying_where_the_run_still_is(emu, conn, task_instance):
    run_id = run_until(emu, NODE, "PROD_CHECK")
    emu.inject_fault("AbolishPipelineRun", kind="not_started", count=0)

    with pytest.raises(DataWorksError) as raised:
        abolish(pipeline_run_id=run_id).execute(task_instance.context())

    assert not isinstance(raised.value, AirflowFailException)  # a retry may get it through
    assert f"pipeline run {run_id} is still Running at stage PROD" in str(raised.value)
    assert emu.run(run_id)["status"] in ACTIVE


@pytest.mark.parametrize("value", [None, "", "  ", "None"])
def test_a_missing_run_id_is_refused_before_any_call(emu, conn, task_instance, value):
    with pytest.raises(ValueError, match="pipeline_run_id is required"):
        abolish(pipeline_run_id=value).execute(task_instance.context())

    assert emu.calls() == []


@pytest.mark.parametrize(
    ("value", "message"), [("", "project_id is required"), ("abc", "project_id must be a numeric")]
)
def test_a_bad_project_id_is_refused_before_any_call(emu, conn, task_instance, value, message):
    with pytest.raises(ValueError, match=message):
        abolish(pipeline_run_id="a7ef0634-20ec-4a7c-a214-54020f91aaaa", project_id=value).execute(
            task_instance.context()
        )

    assert emu.calls() == []
