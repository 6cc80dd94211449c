"""PipelineRunSensor: the same outcomes in poke, reschedule and deferrable mode."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_dataworks.exceptions import PipelineRunGaveUpError
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.sensors.pipeline_run import PipelineRunSensor

from .support import (
    ACTIVE,
    APPROVAL_NODE,
    BASIC,
    FAILING_NODE,
    FAST_RETRIES,
    NODE,
    STANDARD,
    STD_WORKFLOW,
    count_calls,
    run_task,
)

MODES = ["poke", "reschedule", "deferrable"]


#: Airflow 2.x reads a rescheduled sensor's first start from its task_reschedule rows, which the
#: scheduler writes and an in-process test has none of (so on 2.11 the reschedule timeout goes untested)
MODES_BUT_RESCHEDULE_ON_2_X = [
    pytest.param(mode, marks=pytest.mark.deselect_on("2.11", reason="reschedule reads task_reschedule rows"))
    if mode == "reschedule"
    else mode
    for mode in MODES
]


def sensor(mode: str, **kwargs):
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("poke_interval", 0.05)
    kwargs.setdefault("timeout", 10)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    if mode == "deferrable":
        kwargs.update(deferrable=True)
    else:
        kwargs.update(mode=mode, deferrable=False)
    return lambda: PipelineRunSensor(**kwargs)


def new_run(object_id: str = NODE, project_id: int = BASIC, **kwargs) -> str:
    return DataWorksHook().create_pipeline_run(object_id, project_id=project_id, **kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_success(emu, conn, task_instance, mode):
    run_id = new_run(run_mode="Auto", auto_run_until_stage="PROD")
    emu.set_stage_seconds(0.05)
    result = run_task(sensor(mode, pipeline_run_id=run_id), task_instance.context())

    assert result == run_id
    assert emu.run(run_id)["status"] == "Success"
    assert count_calls(emu, "ExecPipelineRunStage") == 0  # advance_stages is off by default


@pytest.mark.parametrize("mode", MODES)
def test_failed_run_fails_without_retries_and_with_details(emu, conn, task_instance, mode):
    run_id = new_run(FAILING_NODE, run_mode="Auto", auto_run_until_stage="PROD")
    emu.set_stage_seconds(0.05)
    with pytest.raises(AirflowFailException) as raised:
        run_task(sensor(mode, pipeline_run_id=run_id), task_instance.context())

    text = str(raised.value)
    assert run_id in text and "PROD_CHECK (type Check, step 2)" in text
    assert "Last RequestId" in text


@pytest.mark.parametrize("mode", MODES)
def test_cancelled_run_fails(emu, conn, task_instance, mode):
    run_id = new_run()
    DataWorksHook().abolish_pipeline_run(run_id, BASIC)
    with pytest.raises(AirflowFailException, match="Termination|Cancel"):
        run_task(sensor(mode, pipeline_run_id=run_id), task_instance.context())


@pytest.mark.parametrize("mode", MODES)
def test_soft_fail_skips_a_failed_run_in_every_mode(emu, conn, task_instance, mode):
    run_id = new_run(FAILING_NODE, run_mode="Auto", auto_run_until_stage="PROD")
    emu.set_stage_seconds(0.05)
    with pytest.raises(AirflowSkipException):
        run_task(sensor(mode, pipeline_run_id=run_id, soft_fail=True), task_instance.context())


@pytest.mark.parametrize("mode", MODES_BUT_RESCHEDULE_ON_2_X)
def test_timeout_in_every_mode(emu, conn, task_instance, mode):
    run_id = new_run(APPROVAL_NODE)
    with pytest.raises(AirflowSensorTimeout):
        run_task(sensor(mode, pipeline_run_id=run_id, timeout=0.3), task_instance.context())
    assert emu.run(run_id)["status"] in ACTIVE  # a sensor never cancels


@pytest.mark.parametrize("mode", MODES_BUT_RESCHEDULE_ON_2_X)
def test_soft_fail_skips_on_timeout_in_every_mode(emu, conn, task_instance, mode):
    run_id = new_run(APPROVAL_NODE)
    with pytest.raises(AirflowSkipException):
        run_task(sensor(mode, pipeline_run_id=run_id, timeout=0.3, soft_fail=True), task_instance.context())


@pytest.mark.version_matrix
@pytest.mark.parametrize("soft_fail", [False, True], ids=["fail", "soft_fail"])
@pytest.mark.parametrize("error", ["Trigger/execution timeout", "Trigger timeout"])
def test_a_deferral_airflow_timed_out_itself_is_a_sensor_timeout(emu, conn, task_instance, soft_fail, error):
    # Airflow 2.x resumes it with __fail__ and raises its generic TaskDeferralError; 3.x a TaskDeferralTimeout
    run_id = new_run(APPROVAL_NODE)
    task = sensor("deferrable", pipeline_run_id=run_id, soft_fail=soft_fail)()

    with pytest.raises(AirflowSkipException if soft_fail else AirflowSensorTimeout):
        task.resume_execution("__fail__", {"error": error}, task_instance.context())
    assert emu.run(run_id)["status"] in ACTIVE  # a sensor never cancels


@pytest.mark.parametrize("mode", MODES)
def test_an_outage_beyond_the_error_budget_does_not_end_the_sensor(emu, conn, task_instance, mode):
    """Transient errors are ridden out until the sensor's timeout: the run finishes, the sensor succeeds."""
    run_id = new_run(run_mode="Auto", auto_run_until_stage="PROD")
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=503, count=0, for_seconds=1.5)

    result = run_task(sensor(mode, pipeline_run_id=run_id, soft_fail=True), task_instance.context())

    assert result == run_id
    assert emu.run(run_id)["status"] == "Success"
    assert len([c for c in emu.calls("GetPipelineRun") if c["fault"]]) > FAST_RETRIES["max_attempts"]


@pytest.mark.parametrize("mode", MODES)
def test_a_permission_error_fails_the_sensor_without_retry(emu, conn, task_instance, mode):
    run_id = new_run()
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=403, code="Forbidden.RAM", count=0)

    with pytest.raises(PipelineRunGaveUpError, match="dataworks:GetPipelineRun") as caught:
        run_task(sensor(mode, pipeline_run_id=run_id), task_instance.context())

    assert isinstance(caught.value, AirflowFailException)
    assert emu.run(run_id)["status"] in ACTIVE  # a sensor never cancels
    assert len(emu.calls("GetPipelineRun")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_advance_stages_promotes_a_dev_run_to_prod(emu, conn, task_instance, mode):
    run_id = DataWorksHook().create_pipeline_run(STD_WORKFLOW, project_id=STANDARD)
    DataWorksHook().wait_for_pipeline_run(run_id, STANDARD, poll_interval=0.02, advance_until_stage="DEV")
    assert emu.run(run_id)["status"] in ACTIVE

    result = run_task(
        sensor(mode, pipeline_run_id=run_id, project_id=STANDARD, advance_stages=True), task_instance.context()
    )

    assert result == run_id
    assert emu.run(run_id)["status"] == "Success"
    assert count_calls(emu, "ExecPipelineRunStage") == 4  # DEV_CHECK, DEV, then PROD_CHECK, PROD


def test_deferrable_pokes_once_before_deferring(emu, conn, task_instance):
    run_id = new_run()
    with pytest.raises(TaskDeferred) as deferred:
        sensor("deferrable", pipeline_run_id=run_id)().execute(task_instance.context())
    assert count_calls(emu, "GetPipelineRun") == 1
    kwargs = deferred.value.trigger.serialize()[1]
    assert kwargs["cancel_on_kill"] is False
    assert kwargs["poll_interval"] == 0.05


@pytest.mark.parametrize("value", ["None", "", None])
def test_missing_run_id_is_reported_before_any_call(emu, conn, task_instance, value):
    with pytest.raises(ValueError, match="pipeline_run_id is required"):
        sensor("poke", pipeline_run_id=value)().execute(task_instance.context())
    assert count_calls(emu, "GetPipelineRun") == 0
