"""The behaviour behind ``_compat``'s seams, exercised on this Airflow (3.3) against the emulator.

The Airflow-version matrix runs the same tests on 2.11-3.2, where the seams take their other branch;
here each older-version branch is switched on explicitly, and only the one I/O line that needs an
older Airflow (the trigger's task-state read) is replaced.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_dataworks import _compat
from airflow_provider_dataworks.exceptions import PipelineRunTimeoutError
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.triggers import pipeline_run as trigger_module
from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

from .support import (
    ACTIVE,
    APPROVAL_NODE,
    BASIC,
    FAST_RETRIES,
    NODE,
    POLL,
    STORES_OF_THE_MATRIX,
    TaskInstance,
    count_calls,
    run_task,
)

ABOLISHED = {"Termination", "Cancel"}


def make(**kwargs):
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("object_id", APPROVAL_NODE)
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    return lambda: CreatePipelineRunOperator(**kwargs)


def status_of_only_run(emu, object_id: str = APPROVAL_NODE) -> str:
    runs = emu.runs(object_id=object_id, project_id=BASIC)
    assert len(runs) == 1, [run["status"] for run in runs]
    return runs[0]["status"]


# ---------------------------------------------------------------------------- execution_timeout


@pytest.mark.version_matrix
def test_execution_timeout_is_part_of_the_trigger_deadline(emu, conn, task_instance):
    context = task_instance.context()
    with pytest.raises(TaskDeferred) as deferred:
        make(deferrable=True, execution_timeout=timedelta(seconds=30))().execute(context)

    trigger = deferred.value.trigger
    assert deferred.value.timeout is None
    # the earlier of timeout (6 h) and the try's start + execution_timeout
    assert trigger.end_time == pytest.approx(context["ti"].start_date.timestamp() + 30, abs=0.01)


@pytest.mark.version_matrix
@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_execution_timeout_ends_the_wait_and_abolishes_the_run(emu, conn, task_instance, deferrable):
    # instant stages: the run reaches the approval stage at once and waits there, however slow the machine
    emu.set_stage_seconds(0)
    emu.set_init_seconds(0)
    started = time.monotonic()
    with pytest.raises(PipelineRunTimeoutError, match="was abolished") as raised:
        run_task(make(deferrable=deferrable, execution_timeout=timedelta(seconds=3)), task_instance.context())

    assert time.monotonic() - started < 30  # not the 6-hour default timeout
    assert "PROD_CHECK" in str(raised.value)
    assert status_of_only_run(emu) in ABOLISHED


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_execution_timeout_without_cancel_on_timeout_leaves_the_run(emu, conn, task_instance, deferrable):
    with pytest.raises(PipelineRunTimeoutError, match="left running"):
        run_task(
            make(deferrable=deferrable, execution_timeout=timedelta(seconds=0.4), cancel_on_timeout=False),
            task_instance.context(),
        )

    assert status_of_only_run(emu) in ACTIVE
    assert count_calls(emu, "AbolishPipelineRun") == 0


# ---------------------------------------------------------------------------- Airflow's own deferral timeout (2.x)


@pytest.mark.parametrize("with_store", STORES_OF_THE_MATRIX)
@pytest.mark.parametrize("cancel_on_timeout", [True, False], ids=["cancel", "keep"])
@pytest.mark.parametrize("error", ["Trigger/execution timeout", "Trigger timeout"])
def test_a_deferral_airflow_timed_out_itself_ends_like_our_timeout(emu, conn, with_store, cancel_on_timeout, error):
    ti = TaskInstance(with_store=with_store)
    context = ti.context()
    task = make(deferrable=True, execution_timeout=timedelta(hours=1), cancel_on_timeout=cancel_on_timeout)
    with pytest.raises(TaskDeferred):
        task().execute(context)
    assert status_of_only_run(emu) in ACTIVE

    # Airflow 2.x: check_trigger_timeouts sends the task back with next_method="__fail__" and drops our kwargs
    with pytest.raises(PipelineRunTimeoutError, match="timed the deferred wait out") as raised:
        task().resume_execution("__fail__", {"error": error}, context)

    if cancel_on_timeout:
        assert "was abolished" in str(raised.value)
        assert status_of_only_run(emu) in ABOLISHED
    else:
        assert "left running" in str(raised.value)
        assert status_of_only_run(emu) in ACTIVE
    assert count_calls(emu, "CreatePipelineRun") == 1


# ---------------------------------------------------------------------------- kill of a deferred task below 3.3


def new_run(object_id: str = NODE) -> str:
    return DataWorksHook().create_pipeline_run(object_id, project_id=BASIC)


@pytest.fixture
def below_3_3(monkeypatch):
    """Take the trigger's pre-3.3 branch; ``set_state`` decides what the task-state read answers."""
    monkeypatch.setattr(trigger_module, "TRIGGER_ON_KILL", False)
    monkeypatch.setattr(_compat, "AIRFLOW_V_3_0_PLUS", True)
    answer: dict[str, object] = {}

    def read_state(task_instance):
        answer["asked_for"] = (task_instance.dag_id, task_instance.task_id, task_instance.run_id)
        if isinstance(answer.get("state"), Exception):
            raise answer["state"]
        return answer["state"]

    # the one line that needs Airflow < 3.3 running a triggerer: the supervisor's GetTaskStates
    monkeypatch.setattr(_compat, "_task_state_v3", read_state)
    return answer


def waiting_trigger(run_id: str, **kwargs) -> PipelineRunTrigger:
    trigger = PipelineRunTrigger(
        pipeline_run_id=run_id, project_id=BASIC, poll_interval=0.05, retry_policy=FAST_RETRIES, **kwargs
    )
    trigger.task_instance = TaskInstance().context()["ti"]
    return trigger


async def cancel_while_waiting(trigger: PipelineRunTrigger) -> None:
    consumer = asyncio.create_task(_first_event(trigger))
    await asyncio.sleep(0.3)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer


async def _first_event(trigger: PipelineRunTrigger):
    async for event in trigger.run():
        return event
    return None


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("failed", ABOLISHED),  # marked failed
        ("success", ABOLISHED),  # marked succeeded
        (None, ABOLISHED),  # cleared
        ("deferred", {"Running"}),  # triggerer stopping or redistributing: the run goes on
        (RuntimeError("supervisor gone"), {"Running"}),  # unknown: nothing is abolished on a guess
    ],
)
async def test_a_cancelled_trigger_abolishes_only_when_its_task_was_killed(emu, conn, below_3_3, state, expected):
    emu.set_stage_seconds(30)
    below_3_3["state"] = state
    run_id = new_run()
    trigger = waiting_trigger(run_id, cancel_on_kill=True)

    await cancel_while_waiting(trigger)

    assert emu.run(run_id)["status"] in expected
    assert below_3_3["asked_for"][2] == trigger.task_instance.run_id


async def test_a_kill_abolishes_although_the_triggerer_cancels_again_every_second(emu, conn, below_3_3, monkeypatch):
    # Below 3.3 the triggerer re-sends the cancel on each sync with its supervisor until the trigger ends;
    # here the state read (the supervisor's GetTaskStates) is slow enough for several of them to land.
    emu.set_stage_seconds(30)
    below_3_3["state"] = "failed"
    slow_read = _compat._task_state_v3

    def read_slowly(task_instance):
        time.sleep(0.6)
        return slow_read(task_instance)

    monkeypatch.setattr(_compat, "_task_state_v3", read_slowly)
    run_id = new_run()
    consumer = asyncio.create_task(_first_event(waiting_trigger(run_id, cancel_on_kill=True)))
    await asyncio.sleep(0.3)

    for _ in range(6):  # the first cancel, then the triggerer's repeats while the handler works
        consumer.cancel()
        await asyncio.sleep(0.15)
    with pytest.raises(asyncio.CancelledError):
        await consumer

    assert emu.run(run_id)["status"] in ABOLISHED
    assert count_calls(emu, "AbolishPipelineRun") == 1


async def test_a_state_read_that_outlasts_its_timeout_is_unknown_and_left_to_finish(monkeypatch):
    # Cutting a sent request off would leave its reply for the runner's next request to read.
    monkeypatch.setattr(_compat, "STATE_READ_TIMEOUT", 0.2)
    outcome: dict[str, str] = {}

    async def slow_read(task_instance):
        try:
            await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            outcome["read"] = "cancelled"
            raise
        outcome["read"] = "finished"
        return _compat.DeferralEnd.KILLED

    monkeypatch.setattr(_compat, "_read_deferral_end", slow_read)

    assert await _compat.deferral_end(TaskInstance().context()["ti"]) is _compat.DeferralEnd.UNKNOWN
    assert "read" not in outcome
    await asyncio.sleep(0.6)
    assert outcome["read"] == "finished"


async def test_a_cancelled_trigger_without_cancel_on_kill_does_not_even_ask(emu, conn, below_3_3):
    below_3_3["state"] = "failed"
    run_id = new_run()

    await cancel_while_waiting(waiting_trigger(run_id, cancel_on_kill=False))

    assert emu.run(run_id)["status"] in ACTIVE
    assert "asked_for" not in below_3_3
    assert count_calls(emu, "AbolishPipelineRun") == 0


async def test_a_cancellation_after_the_event_never_abolishes(emu, conn, below_3_3):
    below_3_3["state"] = "scheduled"  # the task was resumed with the event: not deferred any more
    run_id = DataWorksHook().create_pipeline_run(APPROVAL_NODE, project_id=BASIC)
    trigger = waiting_trigger(run_id, cancel_on_kill=True)
    trigger.end_time = time.time()  # the first read reports the timeout

    agen = trigger.run()
    event = await agen.__anext__()
    with pytest.raises(asyncio.CancelledError):
        await agen.athrow(asyncio.CancelledError())  # the triggerer stops it after the event

    assert event.payload["status"] == "timeout"
    assert emu.run(run_id)["status"] in ACTIVE  # the resumed task decides (cancel_on_timeout)
    assert "asked_for" not in below_3_3


async def test_on_3_3_the_cancellation_leaves_the_kill_to_on_kill(emu, conn, monkeypatch):
    monkeypatch.setattr(trigger_module, "TRIGGER_ON_KILL", True)
    run_id = new_run()

    await cancel_while_waiting(waiting_trigger(run_id, cancel_on_kill=True))

    assert emu.run(run_id)["status"] in ACTIVE  # the triggerer calls on_kill for a user kill


def test_airflow_2_framework_timeout_is_recognised(monkeypatch):
    monkeypatch.setattr(_compat, "AIRFLOW_V_3_0_PLUS", False)
    answers = iter(
        [
            ("scheduled", "__fail__", {"error": "Trigger/execution timeout"}),
            ("deferred", "execute_complete", {}),
            ("failed", "execute_complete", {}),
            (None, None, None),
        ]
    )
    monkeypatch.setattr(_compat, "_task_state_v2", lambda ti: next(answers))
    ti = TaskInstance().context()["ti"]

    ends = [asyncio.run(_compat.deferral_end(ti)) for _ in range(4)]

    assert ends == [
        _compat.DeferralEnd.TIMED_OUT,
        _compat.DeferralEnd.STILL_DEFERRED,
        _compat.DeferralEnd.KILLED,
        _compat.DeferralEnd.KILLED,
    ]


@pytest.mark.parametrize(
    ("try_number", "max_tries", "retries", "expected"),
    [
        (1, 2, 2, 1),  # a fresh task instance
        (2, 2, 2, 2),  # its retry
        (4, 5, 2, 1),  # first try after a clear at try 3 (max_tries = 3 + 2; first = 5 - 2 + 1)
        (5, 5, 2, 2),
        (2, None, 0, 2),  # unknown numbers count as a later try
    ],
)
def test_attempt_try_follows_airflows_first_try_rule(try_number, max_tries, retries, expected):
    ti = TaskInstance().context(try_number)["ti"]
    ti.max_tries = max_tries
    assert _compat.attempt_try(ti, retries) == expected
