"""Do what the release manager asked, and nothing more, sync and deferrable, against the emulator.

Each test asserts the stages DataWorks started, the runs of the object, the task's outcome and its
message: a run stops where it was asked to, a run a person stopped is not deployed again, an abolish is
claimed only when a read confirms it, a run the provider gives up on is closed, and a check-only run
executes only ``Build`` and ``Check`` stages.
"""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_dataworks.exceptions import (
    PipelineRunGaveUpError,
    PipelineRunStoppedError,
    PipelineRunTimeoutError,
)
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

from .support import (
    APPROVAL_NODE,
    BASIC,
    FAST_RETRIES,
    NODE,
    POLL,
    STANDARD,
    STD_WORKFLOW,
    alongside,
    only_run,
    run_task,
    wait_for,
)

MODES = [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")]
STOPPED = {"Termination", "Cancel"}
#: a stage that DataWorks keeps refusing gives up after these executions (fast for tests)
FAST_EXEC = {"attempts": 2, "backoff": 0.05, "max_backoff": 0.05}


def make(deferrable: bool, **kwargs):
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    return lambda: CreatePipelineRunOperator(deferrable=deferrable, **kwargs)


def stage_statuses(run: dict) -> dict[str, str]:
    return {stage["code"]: stage["status"] for stage in run["stages"]}


def started(run: dict) -> list[str]:
    """The codes of the stages DataWorks started (by itself or executed), in step order."""
    return [stage["code"] for stage in run["stages"] if stage["status"] != "Init"]


def requests(run: dict) -> dict[str, int]:
    """How often each stage was asked to start: by DataWorks itself or by ExecPipelineRunStage, refused ones too."""
    return {stage["code"]: stage["start_requests"] for stage in run["stages"]}


def accepted_execs(emu) -> int:
    return sum(1 for call in emu.calls("ExecPipelineRunStage") if call["status"] == 200)


# ---------------------------------------------------------------------------------------------- stop where asked


@pytest.mark.parametrize("deferrable", MODES)
def test_auto_until_dev_stops_after_dev_and_never_starts_production(emu, conn, task_instance, deferrable):
    """advance_stages is on (the default): the task still executes nothing after DEV."""
    result = run_task(
        make(deferrable, object_id=STD_WORKFLOW, project_id=STANDARD, run_mode="Auto", auto_run_until_stage="DEV"),
        task_instance.context(),
    )

    run = only_run(emu, STD_WORKFLOW, STANDARD)
    assert result == run["id"]
    assert run["status"] == "Running"  # left open for a later task or a person
    assert stage_statuses(run) == {
        "BUILD_PACKAGE": "Success",
        "DEV_CHECK": "Success",
        "DEV": "Success",
        "PROD_CHECK": "Init",
        "PROD": "Init",
    }
    assert requests(run)["PROD_CHECK"] == requests(run)["PROD"] == 0
    assert run["auto_run_until_stage"] == "DEV"
    assert task_instance.state.xcom["pipeline_run_id"] == run["id"]


@pytest.mark.parametrize("deferrable", MODES)
def test_auto_until_dev_goes_exactly_as_far_as_advance_until_stage(emu, conn, task_instance, deferrable):
    run_task(
        make(
            deferrable,
            object_id=STD_WORKFLOW,
            project_id=STANDARD,
            run_mode="Auto",
            auto_run_until_stage="DEV",
            advance_until_stage="PROD_CHECK",
        ),
        task_instance.context(),
    )

    run = only_run(emu, STD_WORKFLOW, STANDARD)
    assert stage_statuses(run)["PROD_CHECK"] == "Success" and stage_statuses(run)["PROD"] == "Init"
    assert accepted_execs(emu) == 1 and requests(run)["PROD"] == 0


# ---------------------------------------------------------------------------------------- a person's stop


@pytest.mark.parametrize("deferrable", MODES)
def test_a_run_abolished_in_the_console_fails_the_task_without_retry_and_is_not_deployed_again(
    emu, conn, task_instance, deferrable
):
    task_instance.retries = 2
    emu.set_stage_seconds(1.5)

    def stop_it_in_the_console() -> None:
        run = wait_for(lambda: next((r for r in emu.runs(object_id=NODE) if r["status"] == "Running"), None))
        emu.console_abolish(run["id"])

    person = alongside(stop_it_in_the_console)
    with pytest.raises(PipelineRunStoppedError) as caught:
        run_task(make(deferrable, object_id=NODE, retries=2), task_instance.context(1))
    person.join(5)

    run = only_run(emu, NODE)
    assert isinstance(caught.value, AirflowFailException)  # Airflow does not retry it
    message = str(caught.value)
    assert "stopped outside this task" in message and run["id"] in message and "BUILD_PACKAGE" in message
    assert run["status"] in STOPPED and run["abolished_by"] == "console"
    assert emu.calls("AbolishPipelineRun") == []

    # Even if a retry came (a worker died after the stop), it would not deploy what was stopped
    with pytest.raises(PipelineRunStoppedError):
        run_task(make(deferrable, object_id=NODE, retries=2), task_instance.context(2))
    assert len(emu.runs(object_id=NODE)) == 1
    assert emu.calls("CreatePipelineRun")[1:] == []

    # a clear is a person's explicit new attempt: it deploys anew
    task_instance.clear(try_number=2)
    emu.set_stage_seconds(0)
    run_task(make(deferrable, object_id=NODE, retries=2), task_instance.context(3))
    assert [r["status"] for r in emu.runs(object_id=NODE)] == [run["status"], "Success"]


# ------------------------------------------------------------------------------------------ honest abolish


@pytest.mark.parametrize("deferrable", MODES)
def test_a_refused_abolish_at_a_timeout_is_not_claimed(emu, conn, task_instance, deferrable):
    emu.inject_fault("AbolishPipelineRun", kind="not_started", count=0)

    with pytest.raises(PipelineRunTimeoutError) as caught:
        run_task(make(deferrable, object_id=APPROVAL_NODE, timeout=1.0), task_instance.context())

    run = only_run(emu, APPROVAL_NODE)
    message = str(caught.value)
    assert run["status"] == "Running"
    assert "was abolished" not in message
    assert f"Abolish refused (DataWorks answered Success: false); pipeline run {run['id']} is still Running" in message
    assert "at stage PROD_CHECK" in message
    assert len(emu.calls("AbolishPipelineRun")) == 3  # asked a few times, then read back
    assert started(run) == ["BUILD_PACKAGE", "PROD_CHECK"]


@pytest.mark.parametrize("deferrable", MODES)
def test_an_accepted_abolish_at_a_timeout_is_claimed_once_read_back(emu, conn, task_instance, deferrable):
    with pytest.raises(PipelineRunTimeoutError) as caught:
        run_task(make(deferrable, object_id=APPROVAL_NODE, timeout=1.0), task_instance.context())

    run = only_run(emu, APPROVAL_NODE)
    assert run["status"] in STOPPED and run["abolished_by"] == "api"
    assert f"Pipeline run {run['id']} was abolished (it reads {run['status']})." in str(caught.value)


# --------------------------------------------------------------------------- close what the provider gives up on


@pytest.mark.parametrize("deferrable", MODES)
def test_an_unknown_advance_until_stage_closes_the_run_and_fails_without_retry(emu, conn, task_instance, deferrable):
    with pytest.raises(PipelineRunGaveUpError) as caught:
        run_task(make(deferrable, object_id=NODE, advance_until_stage="DEV"), task_instance.context())

    run = only_run(emu, NODE)
    message = str(caught.value)
    assert isinstance(caught.value, AirflowFailException)
    assert "advance_until_stage 'DEV' is not a stage" in message
    assert run["status"] in STOPPED and run["abolished_by"] == "api"
    assert f"Pipeline run {run['id']} was abolished" in message
    assert emu.calls("ExecPipelineRunStage") == []


@pytest.mark.parametrize("deferrable", MODES)
def test_a_give_up_leaves_the_run_alone_with_cancel_on_timeout_off(emu, conn, task_instance, deferrable):
    with pytest.raises(PipelineRunGaveUpError, match="left as it is"):
        run_task(
            make(deferrable, object_id=NODE, advance_until_stage="DEV", cancel_on_timeout=False),
            task_instance.context(),
        )

    assert only_run(emu, NODE)["status"] in {"Init", "Running"}
    assert emu.calls("AbolishPipelineRun") == []


@pytest.mark.parametrize("deferrable", MODES)
def test_a_stage_dataworks_keeps_refusing_closes_the_run(emu, conn, task_instance, deferrable):
    emu.inject_fault("ExecPipelineRunStage", status=400, code="InvalidParameter", message="bad code", count=0)

    with pytest.raises(PipelineRunGaveUpError) as caught:
        run_task(make(deferrable, object_id=NODE, stage_exec_policy=FAST_EXEC), task_instance.context())

    run = only_run(emu, NODE)
    assert "DataWorks did not start stage PROD_CHECK" in str(caught.value)
    assert len(emu.calls("ExecPipelineRunStage")) == FAST_EXEC["attempts"]
    assert run["status"] in STOPPED and started(run) == ["BUILD_PACKAGE"]
    assert stage_statuses(run)["PROD"] == "Init"


CHECK_ONLY_OBJECT = "8600000000000000071"
NO_CHECK_OBJECT = "8600000000000000072"


@pytest.mark.parametrize("deferrable", MODES)
def test_check_only_never_executes_a_delete_stage_before_the_deploy_stage(emu, conn, task_instance, deferrable):
    emu.add_object(
        BASIC,
        CHECK_ONLY_OBJECT,
        stages=[
            {"code": "BUILD_PACKAGE", "type": "Build"},
            {"code": "PROD_CHECK", "type": "Check"},
            {"code": "CLEANUP", "type": "Delete"},
            {"code": "PROD", "type": "Deploy"},
        ],
    )

    result = run_task(make(deferrable, object_id=CHECK_ONLY_OBJECT, check_only=True), task_instance.context())

    run = only_run(emu, CHECK_ONLY_OBJECT)
    assert result == run["id"]
    assert accepted_execs(emu) == 1 and requests(run)["PROD_CHECK"] == 1
    assert requests(run)["CLEANUP"] == requests(run)["PROD"] == 0
    assert stage_statuses(run) == {
        "BUILD_PACKAGE": "Success",
        "PROD_CHECK": "Success",
        "CLEANUP": "Init",
        "PROD": "Init",
    }
    assert run["status"] in STOPPED and run["abolished_by"] == "api"
    assert emu.get_object(BASIC, CHECK_ONLY_OBJECT)["deployed"] is False


@pytest.mark.parametrize("deferrable", MODES)
def test_check_only_without_a_check_stage_closes_the_run(emu, conn, task_instance, deferrable):
    emu.add_object(
        BASIC, NO_CHECK_OBJECT, stages=[{"code": "CLEANUP", "type": "Delete"}, {"code": "PROD", "type": "Deploy"}]
    )

    with pytest.raises(PipelineRunGaveUpError, match="no Build or Check stage") as caught:
        run_task(make(deferrable, object_id=NO_CHECK_OBJECT, check_only=True), task_instance.context())

    run = only_run(emu, NO_CHECK_OBJECT)
    assert emu.calls("ExecPipelineRunStage") == []
    assert run["status"] in STOPPED
    assert "was abolished" in str(caught.value)
