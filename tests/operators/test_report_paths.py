"""The deployment report on every path where the run's wait ends, against the emulator.

ResumableJobMixin's blocking path (a fresh run, a reconnect, a stored run that already succeeded),
the deferred path, and the timeouts that abolish the run (our deadline, the trigger's, and
Airflow 2.x's own deferral timeout) each publish the report once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_dataworks.exceptions import PipelineRunTimeoutError
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

from .support import FAST_RETRIES, NODE, POLL, TaskInstance, count_calls, only_run, run_task

MODES = ["sync", "deferrable"]
ABOLISHED = {"Termination", "Cancel"}
RETRIES = 2


def make(mode: str = "sync", **kwargs):
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("object_id", NODE)
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    kwargs.setdefault("retries", RETRIES)
    kwargs["deferrable"] = mode == "deferrable"
    return lambda: CreatePipelineRunOperator(**kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_a_retry_after_success_publishes_the_report_again_without_deploying(emu, conn, mode):
    ti = TaskInstance(retries=RETRIES)
    first = run_task(make(mode), ti.context(try_number=1))
    assert count_calls(emu, "ListPipelineRunItems") == 1

    # the worker died after the run succeeded: the retry's XComs start empty (Airflow clears them)
    again = run_task(make(mode), ti.context(try_number=2))

    assert again == first == only_run(emu, NODE)["id"]
    summary = ti.state.xcom["pipeline_run_summary"]
    assert (summary["pipeline_run_id"], summary["status"]) == (first, "Success")
    assert [item["id"] for item in ti.state.xcom["pipeline_run_items"]] == [NODE]
    assert count_calls(emu, "ListPipelineRunItems") == 2  # once per try


def test_a_reconnect_of_the_blocking_path_publishes_the_report_once(emu, conn):
    ti = TaskInstance(retries=RETRIES)
    run_id = make(wait_for_completion=False)().execute(ti.context(try_number=1))
    assert count_calls(emu, "ListPipelineRunItems") == 0  # nothing ended yet

    assert make()().execute(ti.context(try_number=2)) == run_id

    assert ti.state.xcom["pipeline_run_summary"]["status"] == "Success"
    assert count_calls(emu, "ListPipelineRunItems") == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_timeout_that_abolished_the_run_reports_the_run_as_abolished(emu, conn, mode):
    emu.set_stage_seconds(30.0)
    ti = TaskInstance(retries=RETRIES)

    with pytest.raises(PipelineRunTimeoutError, match="was abolished"):
        run_task(make(mode, timeout=0.5), ti.context(try_number=1))

    summary = ti.state.xcom["pipeline_run_summary"]
    assert summary["pipeline_run_id"] == only_run(emu, NODE)["id"]
    assert summary["status"] in ABOLISHED  # read after the abolish
    assert summary["abolished"] is False  # the check-only abolish only
    assert count_calls(emu, "ListPipelineRunItems") == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_timeout_that_left_the_run_publishes_no_report(emu, conn, mode):
    emu.set_stage_seconds(30.0)
    ti = TaskInstance(retries=RETRIES)

    with pytest.raises(PipelineRunTimeoutError, match="left running"):
        run_task(make(mode, timeout=0.5, cancel_on_timeout=False), ti.context(try_number=1))

    assert "pipeline_run_summary" not in ti.state.xcom
    assert count_calls(emu, "ListPipelineRunItems") == 0


def test_airflow_2_deferral_timeout_reports_the_abolished_run(emu, conn):
    emu.set_stage_seconds(30.0)
    ti = TaskInstance(retries=RETRIES)
    context = ti.context()
    task = make("deferrable", execution_timeout=timedelta(hours=1))
    with pytest.raises(TaskDeferred):
        task().execute(context)

    with pytest.raises(PipelineRunTimeoutError, match="was abolished"):
        task().resume_execution("__fail__", {"error": "Trigger timeout"}, context)

    summary = ti.state.xcom["pipeline_run_summary"]
    assert summary["status"] in ABOLISHED
    assert summary["pipeline_run_id"] == only_run(emu, NODE)["id"]


def test_check_only_on_the_deferred_path_after_a_reattach_abolishes_once(emu, conn):
    # the first try defers, then its worker is lost; the retry adopts the same run and finishes the checks
    ti = TaskInstance(retries=RETRIES)
    with pytest.raises(TaskDeferred):
        make("deferrable", check_only=True)().execute(ti.context(try_number=1))

    result = run_task(make("deferrable", check_only=True), ti.context(try_number=2))

    run = only_run(emu, NODE)
    assert result == run["id"] and run["status"] in ABOLISHED
    assert {stage["code"]: stage["status"] for stage in run["stages"]}["PROD"] == "Init"
    assert count_calls(emu, "AbolishPipelineRun") == 1
    summary = ti.state.xcom["pipeline_run_summary"]
    assert (summary["check_only"], summary["abolished"]) == (True, True)
