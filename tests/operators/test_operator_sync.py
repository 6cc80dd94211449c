"""CreatePipelineRunOperator waiting on the worker (deferrable=False): every outcome, through the real SDK."""

from __future__ import annotations

import time

import pytest

from airflow_provider_dataworks.exceptions import PipelineRunFailedError, PipelineRunTimeoutError
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

from .support import (
    ACTIVE,
    APPROVAL_NODE,
    BASIC,
    DEPLOYED_NODE,
    FAILING_NODE,
    FAST_RETRIES,
    NODE,
    POLL,
    STANDARD,
    STD_WORKFLOW,
    WORKFLOW,
    alongside,
    count_calls,
    only_run,
    wait_for,
)


def operator(**kwargs):
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    return CreatePipelineRunOperator(**kwargs)


@pytest.mark.version_matrix
def test_deploys_a_workflow_and_publishes_the_run(emu, conn, task_instance):
    result = operator(object_id=WORKFLOW).execute(task_instance.context())

    run = only_run(emu, WORKFLOW)
    assert (run["status"], run["type"]) == ("Success", "Online")
    assert [s["status"] for s in run["stages"]] == ["Success"] * 3
    assert result == run["id"]
    assert task_instance.state.xcom["pipeline_run_id"] == run["id"]
    assert task_instance.state.xcom["pipeline_run_url"] == (
        f"https://dataworks.data.aliyun.com/cn-hangzhou/ide?defaultProjectId={BASIC}"
    )
    # advance_stages: PROD_CHECK and PROD executed once each, in order
    assert count_calls(emu, "ExecPipelineRunStage") == 2
    assert emu.get_object(BASIC, WORKFLOW)["deployed"] is True


@pytest.mark.min_airflow("3.3")  # the task state store
def test_first_try_with_an_empty_state_store_skips_the_list_scan(emu, conn, task_instance):
    operator(object_id=NODE).execute(task_instance.context())

    assert count_calls(emu, "ListPipelineRuns") == 0
    assert task_instance.state.store["dataworks_pipeline_run"]["pipeline_run_id"] == only_run(emu, NODE)["id"]


def test_the_description_carries_the_task_and_attempt_tag(emu, conn, task_instance):
    operator(object_id=NODE, description="release 42").execute(task_instance.context())

    description = only_run(emu, NODE)["description"]
    assert description.startswith("[airflow:") and description.endswith("] release 42")
    task_part, attempt_part = description.split("[airflow:")[1].split("]")[0].split(":")
    assert (len(task_part), len(attempt_part)) == (16, 8)


def test_undeploys_a_deployed_node(emu, conn, task_instance):
    operator(object_id=DEPLOYED_NODE, type="Offline").execute(task_instance.context())

    run = only_run(emu, DEPLOYED_NODE)
    assert (run["type"], run["status"]) == ("Offline", "Success")
    assert [s["code"] for s in run["stages"]] == ["OfflineCheck", "PROD_CHECK", "PROD"]
    assert emu.get_object(BASIC, DEPLOYED_NODE)["deployed"] is False


@pytest.mark.version_matrix
def test_a_failed_run_fails_the_task_with_stage_and_messages(emu, conn, task_instance):
    with pytest.raises(PipelineRunFailedError) as raised:
        operator(object_id=FAILING_NODE).execute(task_instance.context())

    run = only_run(emu, FAILING_NODE)
    assert run["status"] == "Fail"
    text = str(raised.value)
    assert run["id"] in text
    assert "PROD_CHECK (type Check, step 2)" in text
    failed_stage = next(s for s in run["stages"] if s["status"] == "Fail")
    assert failed_stage["message"] in text
    assert "Last RequestId" in text
    # the run id was published before the wait, so the failure can be inspected
    assert task_instance.state.xcom["pipeline_run_id"] == run["id"]


def test_a_run_cancelled_by_someone_else_fails_the_task(emu, conn, task_instance):
    from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

    emu.set_stage_seconds(0.5)
    someone = alongside(
        lambda: DataWorksHook().abolish_pipeline_run(wait_for(lambda: emu.runs(object_id=NODE))[0]["id"], BASIC)
    )
    with pytest.raises(PipelineRunFailedError, match="ended with status Termination"):
        operator(object_id=NODE).execute(task_instance.context())
    someone.join(10)

    assert only_run(emu, NODE)["status"] in {"Termination", "Cancel"}


@pytest.mark.version_matrix
def test_manual_approval_stage_waits_running_then_times_out_naming_the_stage(emu, conn, task_instance, caplog):
    with pytest.raises(PipelineRunTimeoutError) as raised:
        operator(object_id=APPROVAL_NODE, timeout=0.6).execute(task_instance.context())

    text = str(raised.value)
    assert "stage PROD_CHECK (Check, step 2, status Running)" in text
    run = only_run(emu, APPROVAL_NODE)
    assert run["status"] in {"Termination", "Cancel"}  # cancel_on_timeout: the timeout abolished it
    assert "was abolished" in text
    # executed once and accepted; the approval is waited for, never executed again
    assert count_calls(emu, "ExecPipelineRunStage") == 1


def test_timeout_abolishes_even_without_cancel_on_kill(emu, conn, task_instance):
    with pytest.raises(PipelineRunTimeoutError, match="was abolished"):
        operator(object_id=APPROVAL_NODE, timeout=0.3, cancel_on_kill=False).execute(task_instance.context())

    assert only_run(emu, APPROVAL_NODE)["status"] in {"Termination", "Cancel"}


def test_timeout_without_cancel_on_timeout_leaves_the_run(emu, conn, task_instance):
    with pytest.raises(PipelineRunTimeoutError) as raised:
        operator(object_id=APPROVAL_NODE, timeout=0.3, cancel_on_timeout=False).execute(task_instance.context())

    assert only_run(emu, APPROVAL_NODE)["status"] in ACTIVE
    assert "left running" in str(raised.value)
    assert count_calls(emu, "AbolishPipelineRun") == 0


def test_without_advance_stages_the_task_waits_for_a_human_and_says_where(emu, conn, task_instance):
    with pytest.raises(PipelineRunTimeoutError) as raised:
        operator(object_id=NODE, advance_stages=False, timeout=0.3).execute(task_instance.context())

    assert "PROD_CHECK" in str(raised.value)
    assert "advance_stages is off" in str(raised.value)
    assert count_calls(emu, "ExecPipelineRunStage") == 0
    assert only_run(emu, NODE)["status"] in {"Termination", "Cancel"}


def test_approval_granted_while_waiting_lets_the_deployment_finish(emu, conn, task_instance):
    def approve() -> None:
        wait_for(lambda: emu.calls("ExecPipelineRunStage"))
        emu.approve(emu.runs(object_id=APPROVAL_NODE)[0]["id"], "PROD_CHECK")

    approver = alongside(approve)
    result = operator(object_id=APPROVAL_NODE, timeout=20).execute(task_instance.context())
    approver.join(20)

    run = only_run(emu, APPROVAL_NODE)
    assert (result, run["status"]) == (run["id"], "Success")


def test_advance_until_stage_stops_after_dev_in_a_standard_workspace(emu, conn, task_instance):
    result = operator(object_id=STD_WORKFLOW, project_id=STANDARD, advance_until_stage="DEV").execute(
        task_instance.context()
    )

    run = only_run(emu, STD_WORKFLOW, STANDARD)
    assert result == run["id"]
    assert run["status"] in ACTIVE
    assert {s["code"]: s["status"] for s in run["stages"]} == {
        "BUILD_PACKAGE": "Success",
        "DEV_CHECK": "Success",
        "DEV": "Success",
        "PROD_CHECK": "Init",
        "PROD": "Init",
    }


def test_an_unknown_advance_until_stage_fails_clearly(emu, conn, task_instance):
    from airflow_provider_dataworks.exceptions import DataWorksError

    with pytest.raises(DataWorksError, match="advance_until_stage 'STAGING' is not a stage"):
        operator(object_id=NODE, advance_until_stage="STAGING").execute(task_instance.context())


def test_run_mode_auto_lets_dataworks_run_the_stages(emu, conn, task_instance):
    operator(object_id=NODE, run_mode="Auto", auto_run_until_stage="PROD", advance_stages=False).execute(
        task_instance.context()
    )

    run = only_run(emu, NODE)
    assert (run["status"], run["run_mode"]) == ("Success", "Auto")
    assert count_calls(emu, "ExecPipelineRunStage") == 0


def test_auto_run_until_stage_is_sent(emu, conn, task_instance):
    operator(
        object_id=STD_WORKFLOW,
        project_id=STANDARD,
        run_mode="Auto",
        auto_run_until_stage="DEV",
        advance_stages=False,
        advance_until_stage="DEV",
    ).execute(task_instance.context())

    run = only_run(emu, STD_WORKFLOW, STANDARD)
    assert run["auto_run_until_stage"] == "DEV"
    assert next(s for s in run["stages"] if s["code"] == "DEV")["status"] == "Success"
    assert count_calls(emu, "ExecPipelineRunStage") == 0


def test_wait_for_completion_false_creates_publishes_and_returns(emu, conn, task_instance):
    emu.set_stage_seconds(5)
    started = time.monotonic()
    result = operator(object_id=NODE, wait_for_completion=False).execute(task_instance.context())

    assert time.monotonic() - started < 3
    run = only_run(emu, NODE)
    assert result == run["id"] == task_instance.state.xcom["pipeline_run_id"]
    assert run["status"] in ACTIVE
    assert count_calls(emu, "GetPipelineRun") == 0


def test_on_kill_while_waiting_abolishes_the_run(emu, conn, task_instance):
    emu.set_stage_seconds(30)
    op = operator(object_id=NODE)
    killer = alongside(lambda: (wait_for(lambda: op.pipeline_run_id), op.on_kill()))
    with pytest.raises(PipelineRunFailedError):
        op.execute(task_instance.context())
    killer.join(10)

    assert only_run(emu, NODE)["status"] in {"Termination", "Cancel"}


def test_on_kill_before_the_run_exists_does_nothing(emu, conn):
    op = operator(object_id=NODE)
    op.on_kill()  # must not raise
    assert count_calls(emu, "AbolishPipelineRun") == 0


def test_on_kill_never_raises_when_dataworks_is_down(emu, conn):
    op = operator(object_id=NODE)
    op.pipeline_run_id, op._run_project_id = "no-such-run", BASIC
    emu.inject_fault(action="AbolishPipelineRun", kind="http_error", status=503, count=0)
    op.on_kill()  # logs, does not raise
    assert count_calls(emu, "AbolishPipelineRun") == 3  # bounded


@pytest.mark.version_matrix
def test_transient_faults_during_the_wait_do_not_fail_the_deployment(emu, conn, task_instance):
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=429, count=3)
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=503, count=2)
    emu.inject_fault(action="ExecPipelineRunStage", kind="html_502", count=1)

    budget = {**FAST_RETRIES, "max_attempts": 8}  # five failures in a row fit in the error budget
    operator(object_id=NODE, dataworks_retry_policy=budget).execute(task_instance.context())

    assert only_run(emu, NODE)["status"] == "Success"
    faulted = [c for c in emu.calls("GetPipelineRun") if c["fault"]]
    assert len(faulted) == 5


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_each_stage_transition_is_logged_once(emu, conn, task_instance, capsys, caplog, deferrable):
    import logging

    from .support import run_task

    caplog.set_level(logging.INFO)
    emu.set_stage_seconds(0.15)  # every stage is seen Running over several polls
    run_task(lambda: operator(object_id=NODE, deferrable=deferrable), task_instance.context())

    stdout = capsys.readouterr().out
    seen = set()
    for text in (stdout, caplog.text):  # each sink on its own: a record may reach both
        lines = [line for line in text.splitlines() if "(Check) is" in line or "(Deploy) is" in line]
        transitions = [line.split("Pipeline run ", 1)[1].split(" [")[0].strip() for line in lines]
        assert len(transitions) == len(set(transitions)), transitions
        seen.update(transitions)
    assert any("PROD (Deploy) is Success" in t for t in seen)
    assert any("PROD_CHECK (Check) is Running" in t for t in seen)
