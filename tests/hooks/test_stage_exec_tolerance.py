"""What the wait does when DataWorks does not accept ``ExecPipelineRunStage``, against the emulator.

``Success: false`` (the stage did not start) and a passing 4xx are executed again after a backoff,
a bounded number of times; a stage DataWorks keeps refusing ends the wait (no hours of waiting),
and a permission error ends it at once. An approval stage is executed once, accepted, and waits
``Running`` until a person approves it. The backoff rides on the wait's own reads: reads stay within
⌈duration / poll⌉ + 1.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_dataworks.exceptions import DataWorksAuthError, PipelineRunGaveUpError
from airflow_provider_dataworks.progress import RunProgress, Step

NODE = "8600000000000000002"
APPROVAL_NODE = "8600000000000000005"
POLL = 0.02
#: fast enough for a test, still a growing backoff
POLICY = {"attempts": 3, "backoff": 0.15, "max_backoff": 0.3}


def stage_records(emu, run_id: str) -> dict[str, dict]:
    return {stage["code"]: stage for stage in emu.run(run_id)["stages"]}


def exec_answers(emu) -> list[tuple[int, str | None]]:
    return [(call["status"], call["fault"]) for call in emu.calls("ExecPipelineRunStage")]


def wait(hook, run_id: str, **policy):
    started = time.time()
    run = hook.wait_for_pipeline_run(
        run_id,
        poll_interval=POLL,
        deadline=time.time() + 60,
        progress=RunProgress(stage_exec_policy={**POLICY, **policy}),
    )
    return run, time.time() - started


def assert_read_budget(emu, seconds: float) -> None:
    reads = len(emu.calls("GetPipelineRun"))
    # generous: sleeping overshoots the interval, never undershoots it
    assert reads <= math.ceil(seconds / POLL) + 1, (reads, seconds)


def test_the_normal_case_executes_each_stage_once(hook, emu):
    emu.set_stage_seconds(0.1)
    run_id = hook.create_pipeline_run(NODE)

    run, seconds = wait(hook, run_id)

    assert run.is_success
    assert exec_answers(emu) == [(200, None), (200, None)]  # PROD_CHECK, PROD: once each
    assert_read_budget(emu, seconds)
    assert len(emu.runs()) == 1


def test_success_false_means_not_started_and_the_stage_is_executed_again_after_a_backoff(hook, emu):
    emu.inject_fault("ExecPipelineRunStage", kind="not_started")
    run_id = hook.create_pipeline_run(NODE)

    run, seconds = wait(hook, run_id)

    assert run.is_success
    # PROD_CHECK: Success false, then accepted; PROD: accepted
    assert exec_answers(emu) == [(200, "not_started"), (200, None), (200, None)]
    stages = stage_records(emu, run_id)
    assert all(stage["status"] == "Success" for stage in stages.values())
    # the second execution waited for the backoff
    assert stages["PROD_CHECK"]["start_time"] - stages["BUILD_PACKAGE"]["finish_time"] >= POLICY["backoff"] * 1000
    assert [r["id"] for r in emu.runs()] == [run_id]
    assert emu.get_object(10000, NODE)["deployed"] is True
    assert_read_budget(emu, seconds)


def test_a_passing_400_is_retried_and_the_deployment_finishes(hook, emu):
    emu.inject_fault("ExecPipelineRunStage", status=400, code="Invalid.Stage.NotReady", message="stage is preparing")
    run_id = hook.create_pipeline_run(NODE)

    run, seconds = wait(hook, run_id)

    assert run.is_success
    assert exec_answers(emu) == [(400, "http_error"), (200, None), (200, None)]
    assert all(stage["status"] == "Success" for stage in stage_records(emu, run_id).values())
    assert len(emu.runs()) == 1
    assert_read_budget(emu, seconds)


def test_an_approval_stage_is_executed_once_and_waits_running_until_a_person_approves(hook, emu):
    run_id = hook.create_pipeline_run(APPROVAL_NODE)
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(result=wait(hook, run_id)), daemon=True)
    worker.start()
    deadline = time.time() + 20
    while stage_records(emu, run_id)["PROD_CHECK"]["status"] != "Running" and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(10 * POLL)  # the wait goes on reading; it executes nothing more
    assert exec_answers(emu) == [(200, None)]
    assert stage_records(emu, run_id)["PROD_CHECK"]["status"] == "Running"
    assert worker.is_alive()

    approved_at = time.time()
    emu.approve(run_id, "PROD_CHECK")
    worker.join(30)

    run, _ = outcome["result"]
    assert run.is_success
    stages = stage_records(emu, run_id)
    assert stages["PROD_CHECK"]["finish_time"] >= approved_at * 1000 - 5
    assert exec_answers(emu) == [(200, None), (200, None)]  # PROD_CHECK once, then PROD
    assert len(emu.runs()) == 1


def test_a_stage_dataworks_keeps_refusing_ends_the_wait_after_the_attempts(hook, emu):
    emu.inject_fault("ExecPipelineRunStage", status=400, code="Invalid.Parameter", message="bad stage", count=0)
    run_id = hook.create_pipeline_run(NODE)

    started = time.time()
    with pytest.raises(PipelineRunGaveUpError, match="after 3 executions") as caught:
        wait(hook, run_id)

    assert time.time() - started < 10
    assert exec_answers(emu) == [(400, "http_error")] * POLICY["attempts"]
    assert isinstance(caught.value, AirflowFailException)
    assert emu.run(run_id)["status"] == "Running"  # the hook only waits; closing it is the operator's


def test_a_permission_error_on_exec_ends_the_wait_at_once(hook, emu):
    emu.inject_fault("ExecPipelineRunStage", status=403, code="Forbidden.RAM", message="no permission", count=0)
    run_id = hook.create_pipeline_run(NODE)

    with pytest.raises(DataWorksAuthError, match=r"Forbidden\.RAM"):
        wait(hook, run_id)

    assert exec_answers(emu) == [(403, "http_error")]


def test_a_stage_that_shows_running_is_never_executed_again(hook, emu):
    emu.set_stage_seconds(0.3)
    # the first execution's answer is lost after DataWorks started the stage: the hook's retry
    # gets a 400 (not Init any more); the wait must not execute it a third time
    emu.inject_fault("ExecPipelineRunStage", kind="commit_then_drop")
    run_id = hook.create_pipeline_run(NODE)

    run, _ = wait(hook, run_id, backoff=0.0)

    assert run.is_success
    answers = exec_answers(emu)
    assert answers[0] == (200, "commit_then_drop")
    # PROD_CHECK: applied once (the retry, if any, was refused); PROD: once
    assert sum(1 for status, _ in answers if status == 200) == 2
    assert len(emu.runs()) == 1


@pytest.mark.parametrize("fault", [{"kind": "not_started"}, {"status": 400}], ids=["success-false", "passing-400"])
async def test_the_async_step_retries_after_the_backoff_too(hook, emu, fault):
    emu.inject_fault("ExecPipelineRunStage", **fault)
    run_id = await hook.create_pipeline_run_async(NODE)
    progress = RunProgress(stage_exec_policy=POLICY)

    started = time.time()
    while time.time() - started < 30:
        run, decision = await hook.advance_pipeline_run_async(run_id, 10000, progress)
        if decision.step is Step.SUCCEED:
            break
        assert decision.step is not Step.FAIL, decision.reason
        await asyncio.sleep(POLL)

    assert run.is_success
    assert [status for status, _ in exec_answers(emu)] == [fault.get("status", 200), 200, 200]
    assert len(emu.runs()) == 1
    assert_read_budget(emu, time.time() - started)
