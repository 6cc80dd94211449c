"""The one function that turns a trigger event into a result: a table of events and outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_dataworks.exceptions import (
    DataWorksError,
    InvalidTriggerEventError,
    PipelineRunFailedError,
    PipelineRunGaveUpError,
    PipelineRunStoppedError,
    PipelineRunTimeoutError,
)
from airflow_provider_dataworks.triggers.pipeline_run import resolve_trigger_event


def stage(code: str, step: int, status: str, message: str = "") -> dict[str, Any]:
    return {"Code": code, "Step": step, "Type": "Check", "Status": status, "Message": message}


def run(status: str, *stages: dict[str, Any], run_id: str = "r1") -> dict[str, Any]:
    return {"Id": run_id, "ProjectId": 10000, "Status": status, "Stages": list(stages), "Message": ""}


def event(status: Any = "success", *, run_data: Any = None, **overrides: Any) -> dict[str, Any]:
    payload = {
        "status": status,
        "pipeline_run_id": "r1",
        "project_id": 10000,
        "message": "m",
        "run": run_data if run_data is not None else run("Success", stage("PROD", 1, "Success")),
        "request_id": "REQ-1",
    }
    payload.update(overrides)
    return payload


def without(key: str) -> dict[str, Any]:
    payload = event()
    del payload[key]
    return payload


INVALID = {
    "none": None,
    "empty": {},
    "not a mapping": "success",
    "a list": [event()],
    "unknown status": event("done"),
    "status in another case": event("SUCCESS"),
    "no status": without("status"),
    "no pipeline_run_id": without("pipeline_run_id"),
    "no project_id": without("project_id"),
    "no message": without("message"),
    "no run key": without("run"),
    "empty run id": event(pipeline_run_id=""),
    "another run": event(pipeline_run_id="someone-else"),
    "run id mismatch inside": event(run_data=run("Success", run_id="other")),
    "message not a string": event(message=None),
    "run not a mapping": event(run_data=["x"]),
    "success without run": event(run=None),
    "success but run still running": event(run_data=run("Running", stage("PROD", 1, "Init"))),
    "success but run failed": event(run_data=run("Fail", stage("PROD", 1, "Fail"))),
    "failed but run succeeded": event("failed"),
    "failed without run": event("failed", run=None),
}


@pytest.mark.parametrize("payload", INVALID.values(), ids=INVALID.keys())
def test_invalid_events_fail_loudly(payload):
    with pytest.raises(InvalidTriggerEventError):
        resolve_trigger_event(payload, pipeline_run_id="r1")


def test_success_returns_the_final_run():
    result = resolve_trigger_event(event(), pipeline_run_id="r1")
    assert (result.id, result.status, result.request_id) == ("r1", "Success", "REQ-1")


def test_success_with_advance_until_stage_accepts_a_running_run():
    data = run("Running", stage("DEV", 1, "Success"), stage("PROD", 2, "Init"))
    result = resolve_trigger_event(event(run_data=data), pipeline_run_id="r1", advance_until_stage="DEV")
    assert result.status == "Running"


def test_success_with_advance_until_stage_refuses_an_unfinished_stage():
    data = run("Running", stage("DEV", 1, "Running"), stage("PROD", 2, "Init"))
    with pytest.raises(InvalidTriggerEventError):
        resolve_trigger_event(event(run_data=data), pipeline_run_id="r1", advance_until_stage="DEV")


@pytest.mark.parametrize("status", ["Fail", "Termination", "Cancel"])
def test_failed_raises_with_stage_messages_and_request_id(status):
    data = run(status, stage("BUILD", 1, "Success"), stage("PROD_CHECK", 2, status, "checker said no"))
    with pytest.raises(PipelineRunFailedError) as raised:
        resolve_trigger_event(event("failed", run_data=data), pipeline_run_id="r1")
    text = str(raised.value)
    assert f"ended with status {status}" in text
    assert "PROD_CHECK (type Check, step 2)" in text
    assert "checker said no" in text
    assert "REQ-1" in text


def test_timeout_raises_with_the_message_and_the_stage():
    data = run("Running", stage("PROD_CHECK", 1, "Init"))
    with pytest.raises(PipelineRunTimeoutError, match="waits at stage PROD_CHECK") as raised:
        resolve_trigger_event(
            event("timeout", run_data=data, message="Pipeline run r1 waits at stage PROD_CHECK"),
            pipeline_run_id="r1",
        )
    assert raised.value.stage is not None and raised.value.stage.code == "PROD_CHECK"


def test_timeout_without_run_still_raises_timeout():
    with pytest.raises(PipelineRunTimeoutError):
        resolve_trigger_event(event("timeout", run=None), pipeline_run_id="r1")


def test_error_raises_a_give_up_without_retry_with_the_message():
    """The trigger sends ``error`` only for what waiting cannot heal (it rides out transient errors)."""
    with pytest.raises(PipelineRunGaveUpError, match="permission denied") as raised:
        resolve_trigger_event(event("error", run=None, message="permission denied"), pipeline_run_id="r1")
    assert isinstance(raised.value, (DataWorksError, AirflowFailException))
    assert not isinstance(raised.value, (PipelineRunFailedError, PipelineRunTimeoutError, InvalidTriggerEventError))


@pytest.mark.parametrize("status", ["Termination", "Cancel"])
def test_a_run_stopped_by_someone_raises_without_retry(status):
    data = run(status, stage("BUILD", 1, "Success"), stage("PROD_CHECK", 2, status))
    with pytest.raises(PipelineRunStoppedError, match="stopped outside this task") as raised:
        resolve_trigger_event(event("failed", run_data=data), pipeline_run_id="r1")
    assert isinstance(raised.value, AirflowFailException)
