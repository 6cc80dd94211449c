"""What the wait does when DataWorks does not accept ``ExecPipelineRunStage``, against the emulator.

``Success: false`` (the stage did not start) and a passing 4xx are executed again after a backoff;
a refused approval stage is reported as needing the console and still tried at the console
cadence, so an approval given later in the emulator lets the deployment finish. The backoff
rides on the wait's own reads: reads stay within ⌈duration / poll⌉ + 1.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

from airflow_provider_dataworks.progress import RunProgress, Step

NODE = "8600000000000000002"
APPROVAL_NODE = "8600000000000000005"
POLL = 0.02
#: fast enough for a test, still a growing backoff
POLICY = {"attempts": 3, "backoff": 0.15, "max_backoff": 0.3, "console_interval": 0.4}


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


def test_a_refused_approval_is_reported_for_the_console_and_picked_up_once_approved(hook, emu, caplog):
    run_id = hook.create_pipeline_run(APPROVAL_NODE)
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(result=wait(hook, run_id)), daemon=True)
    worker.start()
    deadline = time.time() + 20
    while sum(1 for status, _ in exec_answers(emu) if status == 400) < POLICY["attempts"] and time.time() < deadline:
        time.sleep(0.02)
    refused_before_approval = exec_answers(emu)
    assert refused_before_approval == [(400, None)] * POLICY["attempts"]
    assert stage_records(emu, run_id)["PROD_CHECK"]["status"] == "Init"

    # a console user approves, without starting the stage: the wait's next try must start it
    approved_at = time.time()
    emu.approve(run_id, "PROD_CHECK", start=False)
    worker.join(30)

    run, _ = outcome["result"]
    assert run.is_success
    stages = stage_records(emu, run_id)
    assert stages["PROD_CHECK"]["start_time"] >= approved_at * 1000 - 5
    assert exec_answers(emu)[-2:] == [(200, None), (200, None)]  # PROD_CHECK once approved, then PROD
    # spent attempts, then console cadence: never a tight loop
    assert len(exec_answers(emu)) <= POLICY["attempts"] + 3
    assert "must be advanced in the DataWorks console" in caplog.text
    assert len(emu.runs()) == 1


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
