"""PipelineRunTrigger against the emulator: one event, poll economy, faults, kill, restart."""

from __future__ import annotations

import asyncio
import json
import math
import time

import pytest

from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.hooks.poller import STATUS_READS_ENV
from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

from .support import (
    ACTIVE,
    APPROVAL_NODE,
    BASIC,
    FAILING_NODE,
    FAST_RETRIES,
    NODE,
    collect_events,
    count_calls,
    only_event,
    rebuild,
)


@pytest.fixture(autouse=True, params=["coalesced", "per-run"])
def status_reads_path(request, monkeypatch) -> str:
    """Every trigger test runs on both read paths: the shared poller's list, and one read per run."""
    monkeypatch.setenv(STATUS_READS_ENV, request.param)
    return str(request.param)


def new_run(object_id: str = NODE, **kwargs) -> str:
    return DataWorksHook().create_pipeline_run(object_id, project_id=BASIC, **kwargs)


def trigger(run_id: str, **kwargs) -> PipelineRunTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("retry_policy", FAST_RETRIES)
    return PipelineRunTrigger(pipeline_run_id=run_id, project_id=BASIC, **kwargs)


def test_serialize_round_trips_exactly():
    original = PipelineRunTrigger(
        pipeline_run_id="run-1",
        project_id=10000,
        dataworks_conn_id="my_conn",
        region="cn-shanghai",
        poll_interval=2.5,
        end_time=1_900_000_000.25,
        advance_stages=True,
        advance_until_stage="DEV",
        retry_policy={"max_attempts": 3, "base_delay": 0.5, "max_delay": 4.0},
        cancel_on_kill=True,
    )
    classpath, kwargs = original.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON primitives only
    rebuilt = rebuild(original)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_success_is_one_event_with_the_run(emu, conn):
    run_id = new_run()
    event = only_event(trigger(run_id, advance_stages=True))

    assert event["status"] == "success"
    assert (event["pipeline_run_id"], event["project_id"]) == (run_id, BASIC)
    assert event["run"]["Status"] == "Success"
    assert event["request_id"]
    assert count_calls(emu, "ExecPipelineRunStage") == 2


def test_failure_event_carries_the_failed_stage(emu, conn):
    run_id = new_run(FAILING_NODE)
    event = only_event(trigger(run_id, advance_stages=True))

    assert event["status"] == "failed"
    assert "PROD_CHECK" in event["message"]
    assert event["run"]["Status"] == "Fail"


def test_timeout_event_names_the_waiting_stage(emu, conn):
    run_id = new_run()
    event = only_event(trigger(run_id, advance_stages=False, end_time=time.time() + 0.2))

    assert event["status"] == "timeout"
    assert "PROD_CHECK" in event["message"]
    assert emu.run(run_id)["status"] in ACTIVE  # the trigger itself never cancels


def test_a_deadline_in_the_past_still_reads_the_run_once(emu, conn):
    run_id = new_run()
    DataWorksHook().abolish_pipeline_run(run_id, BASIC)
    event = only_event(trigger(run_id, end_time=time.time() - 100))

    assert event["status"] == "failed"  # the outcome wins over an expired deadline
    assert count_calls(emu, "GetPipelineRun") == 1


def test_poll_economy_reads_at_most_once_per_interval(emu, conn):
    run_id = new_run()
    interval, duration = 0.1, 0.55
    started = time.monotonic()
    only_event(trigger(run_id, poll_interval=interval, end_time=time.time() + duration))
    elapsed = time.monotonic() - started

    reads = count_calls(emu, "GetPipelineRun") + count_calls(emu, "ListPipelineRuns")
    assert reads <= math.ceil(elapsed / interval) + 1
    assert reads >= 3


def test_one_exec_per_stage(emu, conn):
    emu.set_stage_seconds(0.15)  # stages stay Running across several polls
    run_id = new_run()
    only_event(trigger(run_id, advance_stages=True, poll_interval=0.03))

    codes = [c for c in emu.calls("ExecPipelineRunStage")]
    assert len(codes) == 2
    assert emu.run(run_id)["status"] == "Success"


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "http_error", "status": 429, "count": 3},
        {"kind": "http_error", "status": 429, "count": 3, "retry_after_ms": 30},
        {"kind": "http_error", "status": 503, "count": 3},
        {"kind": "html_502", "count": 3},
    ],
    ids=["429", "429-retry-after", "503", "html-502"],
)
def test_transient_errors_within_the_budget_are_survived(emu, conn, fault):
    run_id = new_run()
    emu.inject_fault(action="GetPipelineRun", **fault)
    event = only_event(trigger(run_id, advance_stages=True))

    assert event["status"] == "success"
    assert len([c for c in emu.calls("GetPipelineRun") if c["fault"]]) == 3


def test_retry_after_is_honoured(emu, conn):
    run_id = new_run()
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=429, count=1, retry_after_ms=300)
    only_event(trigger(run_id, advance_stages=True))

    first, second = emu.calls("GetPipelineRun")[:2]
    assert second["time"] - first["time"] >= 0.28


def test_errors_beyond_the_budget_are_ridden_out_until_the_deadline_and_never_cancel(emu, conn):
    run_id = new_run()
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=503, count=0)
    emu.inject_fault(action="ListPipelineRuns", kind="http_error", status=503, count=0)  # coalesced path
    event = only_event(trigger(run_id, advance_stages=True, cancel_on_kill=True, end_time=time.time() + 1.0))
    emu.clear_faults()

    assert event["status"] == "timeout"  # never "error": waiting may heal a 503
    assert "DataWorks had not answered" in event["message"] and "503" in event["message"]
    assert count_calls(emu, "GetPipelineRun") > FAST_RETRIES["max_attempts"]
    assert count_calls(emu, "AbolishPipelineRun") == 0
    assert emu.run(run_id)["status"] in ACTIVE


def test_an_outage_that_ends_before_the_deadline_ends_in_success(emu, conn):
    run_id = new_run()
    emu.inject_fault(("GetPipelineRun", "ListPipelineRuns"), status=503, count=0, for_seconds=1.0)

    event = only_event(trigger(run_id, advance_stages=True, end_time=time.time() + 30))

    assert event["status"] == "success"
    assert emu.run(run_id)["status"] == "Success"


def test_a_permission_error_ends_in_an_error_event_naming_the_ram_action(emu, conn):
    run_id = new_run()
    emu.inject_fault(action="ExecPipelineRunStage", kind="http_error", status=403, code="Forbidden.RAM", count=0)

    event = only_event(trigger(run_id, advance_stages=True))

    assert event["status"] == "error"
    assert "Forbidden.RAM" in event["message"] and "dataworks:ExecPipelineRunStage" in event["message"]
    assert count_calls(emu, "ExecPipelineRunStage") == 1
    assert count_calls(emu, "AbolishPipelineRun") == 0  # the trigger reports; the task closes the run


def test_an_unknown_run_ends_in_an_error_event(emu, conn):
    event = only_event(trigger("no-such-run"))
    assert event["status"] == "error"
    assert event["run"] is None


async def test_on_kill_abolishes_the_run(emu, conn):
    emu.set_stage_seconds(30)
    run_id = new_run()
    await trigger(run_id, cancel_on_kill=True).on_kill()
    assert emu.run(run_id)["status"] in {"Termination", "Cancel"}


async def test_on_kill_without_cancel_on_kill_leaves_the_run(emu, conn):
    run_id = new_run()
    await trigger(run_id, cancel_on_kill=False).on_kill()
    assert emu.run(run_id)["status"] in ACTIVE
    assert count_calls(emu, "AbolishPipelineRun") == 0


async def test_on_kill_of_a_finished_run_does_not_raise(emu, conn):
    run_id = new_run()
    DataWorksHook().abolish_pipeline_run(run_id, BASIC)
    await trigger(run_id, cancel_on_kill=True).on_kill()  # 400 "not running": logged only


async def test_cleanup_never_cancels(emu, conn):
    run_id = new_run()
    await trigger(run_id, cancel_on_kill=True).cleanup()
    assert emu.run(run_id)["status"] in ACTIVE


async def test_killed_while_waiting_the_run_ends_cancelled(emu, conn):
    emu.set_stage_seconds(30)
    run_id = new_run()
    waiting = trigger(run_id, cancel_on_kill=True, advance_stages=True)
    task = asyncio.create_task(collect_events(waiting))
    await asyncio.sleep(0.3)
    task.cancel()  # what the triggerer does, then it calls on_kill for a user kill
    with pytest.raises(asyncio.CancelledError):
        await task
    await waiting.on_kill()
    assert emu.run(run_id)["status"] in {"Termination", "Cancel"}


async def test_rebuilt_from_serialize_mid_wait_completes_on_the_same_run(emu, conn):
    emu.set_stage_seconds(0.3)
    run_id = new_run()
    first = trigger(run_id, advance_stages=True, cancel_on_kill=True)
    task = asyncio.create_task(collect_events(first))
    await asyncio.sleep(0.35)  # PROD_CHECK executed, running
    task.cancel()  # triggerer restart: no on_kill, no cleanup-cancel
    with pytest.raises(asyncio.CancelledError):
        await task
    await first.cleanup()
    assert emu.run(run_id)["status"] in ACTIVE

    events = await collect_events(rebuild(first))

    assert [e.payload["status"] for e in events] == ["success"]
    assert events[0].payload["pipeline_run_id"] == run_id
    assert len(emu.runs(object_id=NODE)) == 1
    assert count_calls(emu, "ExecPipelineRunStage") == 2  # no stage executed twice


async def test_the_event_loop_is_never_blocked(emu, conn):
    run_id = new_run()
    emu.inject_fault(action="GetPipelineRun", kind="delay", seconds=0.4, count=2)
    lags: list[float] = []

    async def heartbeat():
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - before - 0.01)

    beat = asyncio.create_task(heartbeat())
    events = await collect_events(trigger(run_id, advance_stages=True))
    beat.cancel()

    assert events[0].payload["status"] == "success"
    assert max(lags) < 0.3  # two 0.4 s reads happened without freezing the loop


def test_a_stage_not_started_is_executed_again_after_its_backoff(emu, conn):
    """The backoff of a refused execution ends while the run shows no change: the wait still executes again."""
    emu.inject_fault("ExecPipelineRunStage", kind="not_started")
    emu.set_init_seconds(0)
    policy = {"attempts": 3, "backoff": 0.3, "max_backoff": 0.3}
    run_id = new_run()
    event = only_event(trigger(run_id, advance_stages=True, stage_exec_policy=policy))

    assert event["status"] == "success"
    calls = emu.calls("ExecPipelineRunStage")
    assert [(call["status"], call["fault"]) for call in calls] == [(200, "not_started"), (200, None), (200, None)]
    assert emu.run(run_id)["status"] == "Success"


def test_an_approval_wait_times_out_without_cancelling(emu, conn):
    run_id = new_run(APPROVAL_NODE)
    event = only_event(trigger(run_id, advance_stages=True, end_time=time.time() + 0.3))

    assert event["status"] == "timeout"
    assert "stage PROD_CHECK (Check, step 2, status Running)" in event["message"]
    assert count_calls(emu, "ExecPipelineRunStage") == 1
    assert emu.run(run_id)["status"] in ACTIVE
