"""Coalesced status reads (hooks/poller.py) against the emulator: call counts, choice, lifecycle, fallback.

Real triggers, the real SDK over HTTP, the emulator's own call log: every assertion is a count.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import pytest

from airflow_provider_dataworks.hooks import poller as poller_module
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.hooks.poller import STATUS_READS_ENV, active_pollers
from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

BASIC = 10000
NODE = "8600000000000000002"
FAST_RETRIES = {"max_attempts": 4, "base_delay": 0.01, "max_delay": 0.05}
INTERVAL = 0.3


def create_runs(count: int) -> list[str]:
    hook = DataWorksHook()
    return [hook.create_pipeline_run(NODE, project_id=BASIC) for _ in range(count)]


def finish(run_id: str) -> None:
    hook = DataWorksHook()
    for stage in ("PROD_CHECK", "PROD"):
        hook.exec_pipeline_run_stage(run_id, stage, BASIC)


def trigger(run_id: str, **kwargs) -> PipelineRunTrigger:
    kwargs.setdefault("poll_interval", INTERVAL)
    kwargs.setdefault("retry_policy", FAST_RETRIES)
    return PipelineRunTrigger(pipeline_run_id=run_id, project_id=BASIC, **kwargs)


async def first_event(trig: PipelineRunTrigger) -> dict:
    async for event in trig.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


async def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def cancel_all(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def reads(emu) -> tuple[int, int]:
    counts = emu.call_counts()
    return counts.get("ListPipelineRuns", 0), counts.get("GetPipelineRun", 0)


async def start(triggers: list[PipelineRunTrigger]) -> list[asyncio.Task]:
    tasks = [asyncio.create_task(first_event(t)) for t in triggers]
    await asyncio.sleep(0)  # every trigger joins before the first cycle ends
    return tasks


@pytest.fixture(autouse=True)
def auto_mode(monkeypatch, emu):
    monkeypatch.setenv(STATUS_READS_ENV, "auto")
    # These counts are about Running runs; a new run's short Init phase (absent from the
    # Status=Running list, so read with GetPipelineRun) has its own test below.
    emu.set_init_seconds(0)


@pytest.mark.parametrize(
    ("waits", "cycles_seen"),
    [
        pytest.param(200, 5, id="200-waits-the-regression-count"),
        pytest.param(350, 3, id="350-waits-later-pages-read-together"),
    ],
)
async def test_waits_cost_one_list_page_per_hundred_per_interval(emu, conn, waits, cycles_seen):
    """The regression count: ⌈N / 100⌉ reads per interval instead of N (200 waits: 2 pages).

    At 350 the three pages after the first are read at once; each is still read exactly once.
    """
    pages = math.ceil(waits / 100)
    tasks = await start([trigger(run_id) for run_id in create_runs(waits)])
    [poller] = active_pollers()
    await wait_until(lambda: poller.latest is not None and poller.latest.seq >= cycles_seen)
    await cancel_all(tasks)
    cycles = poller.cycles
    lists, gets = reads(emu)

    assert pages * (cycles - 1) <= lists <= pages * cycles  # the last cycle may have been cut short
    assert gets == 0
    assert len(poller.latest.members) == waits
    assert len(poller.latest.runs) == waits
    assert all(not isinstance(run, BaseException) and run.status == "Running" for run in poller.latest.runs.values())
    assert active_pollers() == [] and not poller.running


async def test_a_finished_run_costs_one_get_and_reaches_its_trigger(emu, conn):
    run_ids = create_runs(20)
    tasks = await start([trigger(run_id) for run_id in run_ids])
    [poller] = active_pollers()
    await wait_until(lambda: poller.latest is not None)
    finished = run_ids[:5]
    for run_id in finished:
        finish(run_id)
    events = await asyncio.wait_for(asyncio.gather(*tasks[:5]), 30)
    await cancel_all(tasks[5:])

    assert [e["status"] for e in events] == ["success"] * 5
    assert [e["pipeline_run_id"] for e in events] == finished
    _, gets = reads(emu)
    assert gets == 5  # absent from the Running list: one GetPipelineRun each
    assert poller.stats["per_run_cycles"] == 0


async def test_a_first_read_woken_late_takes_the_cycle_it_waited_for(emu, conn, monkeypatch):
    """Waking 10,000 waiters can take longer than max_age: a first read that waited takes its cycle however late.

    Before, such a read found the snapshot "too old" and waited for the next cycle, and at
    N = 10,000 the late half of every wake did so again each cycle.
    """
    run_ids = create_runs(3)
    hook = DataWorksHook(retry_policy=FAST_RETRIES)
    wake = poller_module.StatusPoller._wake

    async def late_wake(self, snapshot):
        time.sleep(poller_module.max_age(self.cadence) + 0.3)  # a busy loop: every woken read runs late
        await wake(self, snapshot)

    monkeypatch.setattr(poller_module.StatusPoller, "_wake", late_wake)
    handles = [poller_module.status_reads(hook, run_id, BASIC, INTERVAL) for run_id in run_ids]
    try:
        runs = await asyncio.wait_for(asyncio.gather(*(h.read() for h in handles)), 30)
        seqs = [h._waiter.last_seq for h in handles]
    finally:
        for h in handles:
            h.close()

    assert [run.id for run in runs] == run_ids
    assert seqs == [1, 1, 1]  # the first cycle answered them all


async def test_a_run_that_did_not_change_keeps_its_record_across_cycles(emu, conn):
    """Unchanged runs keep last cycle's record (no new objects for the garbage collector); a change makes a new one."""
    run_ids = create_runs(3)
    tasks = await start([trigger(run_id) for run_id in run_ids])
    [poller] = active_pollers()
    await wait_until(lambda: poller.latest is not None and poller.latest.seq >= 1)
    first = poller.latest
    DataWorksHook().exec_pipeline_run_stage(run_ids[0], "PROD_CHECK", BASIC)  # changes run 0's stages only
    await wait_until(lambda: poller.latest.seq >= first.seq + 2)
    later = poller.latest
    await cancel_all(tasks)

    assert later.runs[run_ids[1]] is first.runs[run_ids[1]]
    assert later.runs[run_ids[2]] is first.runs[run_ids[2]]
    assert later.runs[run_ids[0]] is not first.runs[run_ids[0]]
    assert later.runs[run_ids[0]].stages != first.runs[run_ids[0]].stages


async def test_a_quiet_wait_is_woken_only_when_its_run_changes(emu, conn):
    """A trigger waiting on a run that does not change is not woken each cycle (no objects per cycle).

    Every cycle still counts as its read; a change wakes it, and it goes on to its event.
    """
    run_ids = create_runs(3)
    tasks = await start([trigger(run_id) for run_id in run_ids])
    [poller] = active_pollers()
    await wait_until(lambda: poller.latest is not None and poller.latest.seq >= 6)
    quiet_cycles = poller.latest.seq

    assert poller.stats["wakes"] == 3  # the first reads only
    assert poller.stats["unchanged_reads"] >= 3 * (quiet_cycles - 2)
    assert all(w.last_seq >= quiet_cycles - 1 for w in poller.waiters.values())  # no cycle skipped

    finish(run_ids[0])
    event = await asyncio.wait_for(tasks[0], 30)
    assert event["status"] == "success"
    assert 4 <= poller.stats["wakes"] <= 6  # run 0's changes (stage by stage), not the others
    assert not tasks[1].done() and not tasks[2].done()
    await cancel_all(tasks[1:])


async def test_a_longer_interval_reads_at_its_own_pace(emu, conn):
    """Two waiters, one at 3 × the other's interval: the poller cycles at the shorter; the longer takes every third."""
    fast_run, slow_run = create_runs(2)
    hook = DataWorksHook(retry_policy=FAST_RETRIES)
    taken = {"fast": 0, "slow": 0}

    async def reader(name: str, run_id: str, interval: float) -> None:
        reads = poller_module.status_reads(hook, run_id, BASIC, interval)
        try:
            pause = 0.0
            while True:
                await reads.read(pause)
                taken[name] += 1
                pause = interval
        finally:
            reads.close()

    tasks = [
        asyncio.create_task(reader("fast", fast_run, INTERVAL)),
        asyncio.create_task(reader("slow", slow_run, 3 * INTERVAL)),
    ]
    await asyncio.sleep(0)
    [poller] = active_pollers()
    await wait_until(lambda: poller.cycles >= 13)
    await cancel_all(tasks)

    assert taken["fast"] >= poller.cycles - 2
    assert math.floor(poller.cycles / 3) - 1 <= taken["slow"] <= math.ceil(poller.cycles / 3) + 1


async def test_one_wait_reads_per_run(emu, conn):
    [run_id] = create_runs(1)
    task = asyncio.create_task(first_event(trigger(run_id, advance_stages=True)))
    event = await asyncio.wait_for(task, 30)

    assert event["status"] == "success"
    lists, gets = reads(emu)
    assert lists == 0 and gets >= 1


async def test_a_workspace_full_of_other_runs_is_read_per_run(emu, conn):
    """2 waits among 300 running runs: 4 pages a cycle would cost more than 2 gets."""
    others = create_runs(300)
    mine = create_runs(2)
    tasks = await start([trigger(run_id) for run_id in mine])
    [poller] = active_pollers()
    await wait_until(lambda: poller.latest is not None and poller.latest.seq >= 6)
    await cancel_all(tasks)
    cycles = poller.cycles
    lists, gets = reads(emu)

    assert len(others) == 300
    assert lists == math.ceil(cycles / poller_module.PROBE_EVERY)  # the probe: page 1 only
    assert 2 * (cycles - 1) - 2 <= gets <= 2 * cycles
    assert lists + gets < 4 * (cycles - 1)  # what listing every page would have cost


async def test_poller_starts_with_the_first_waiter_and_ends_with_the_last(emu, conn):
    run_a, run_b = create_runs(2)
    assert active_pollers() == []
    task_a = asyncio.create_task(first_event(trigger(run_a)))
    await asyncio.sleep(0)
    [poller] = active_pollers()
    assert poller.running and len(poller.waiters) == 1
    task_b = asyncio.create_task(first_event(trigger(run_b)))
    await asyncio.sleep(0)
    assert active_pollers() == [poller] and len(poller.waiters) == 2

    await cancel_all([task_a])  # a cancelled (or killed) trigger leaves
    assert len(poller.waiters) == 1 and poller.running
    await cancel_all([task_b])
    await asyncio.sleep(0)
    assert active_pollers() == [] and not poller.running


async def test_the_first_cycle_waits_for_next_poll_at(emu, conn):
    [run_id] = create_runs(1)
    loop_time = asyncio.get_running_loop().time
    task = asyncio.create_task(first_event(trigger(run_id, next_poll_at=time.time() + 0.6)))
    started = loop_time()
    await asyncio.sleep(0.3)
    assert reads(emu) == (0, 0)
    await wait_until(lambda: sum(reads(emu)) >= 1)
    assert loop_time() - started >= 0.55
    await cancel_all([task])


async def test_a_failed_list_falls_back_to_per_run_reads_and_fails_no_trigger(emu, conn, monkeypatch):
    monkeypatch.setenv(STATUS_READS_ENV, "coalesced")
    emu.inject_fault(action="ListPipelineRuns", kind="http_error", status=503, count=0)
    run_ids = create_runs(3)
    tasks = await start([trigger(run_id, advance_stages=True) for run_id in run_ids])
    [poller] = active_pollers()
    events = await asyncio.wait_for(asyncio.gather(*tasks), 30)

    assert [e["status"] for e in events] == ["success"] * 3
    assert poller.stats["list_failures"] >= 1
    assert emu.call_counts().get("ExecPipelineRunStage") == 6
    assert active_pollers() == []


async def test_a_trigger_reading_an_unknown_run_gets_its_own_error_event(emu, conn, monkeypatch):
    monkeypatch.setenv(STATUS_READS_ENV, "coalesced")
    [run_id] = create_runs(1)
    tasks = await start([trigger(run_id), trigger("no-such-run")])
    unknown = await asyncio.wait_for(tasks[1], 30)
    [poller] = active_pollers()
    await wait_until(lambda: poller.latest is not None and poller.latest.seq >= 3)

    assert unknown["status"] == "error"
    assert not tasks[0].done()  # the other waiter keeps waiting
    await cancel_all(tasks[:1])


async def test_per_run_mode_has_no_poller(emu, conn, monkeypatch):
    monkeypatch.setenv(STATUS_READS_ENV, "per-run")
    run_ids = create_runs(3)
    tasks = await start([trigger(run_id) for run_id in run_ids])
    assert active_pollers() == []
    await wait_until(lambda: reads(emu)[1] >= 6)
    await cancel_all(tasks)
    assert reads(emu)[0] == 0


def test_an_unknown_mode_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv(STATUS_READS_ENV, "sometimes")
    with pytest.raises(ValueError, match=STATUS_READS_ENV):
        poller_module.status_reads_mode()


async def test_a_run_read_terminal_is_not_read_again_when_the_next_cycle_starts_at_once(emu, conn):
    """A terminal status is final: a cycle that starts before the woken triggers leave reads it no more.

    Slow reads (here 0.5 s a ``GetPipelineRun``, longer than the 0.3 s interval) start the next
    cycle right after the wake, while the finished runs' triggers are still members; before, each
    finished run then cost a second ``GetPipelineRun`` (a CI run under load counted 10 for 5).
    """
    run_ids = create_runs(20)
    tasks = await start([trigger(run_id) for run_id in run_ids])
    [poller] = active_pollers()
    await wait_until(lambda: poller.latest is not None)
    emu.inject_fault("GetPipelineRun", kind="delay", seconds=INTERVAL + 0.2, count=0)
    finished = run_ids[:5]
    for run_id in finished:
        finish(run_id)
    events = await asyncio.wait_for(asyncio.gather(*tasks[:5]), 30)
    seq = poller.latest.seq
    await wait_until(lambda: poller.latest.seq >= seq + 2)  # two more cycles with the finished runs gone or kept
    await cancel_all(tasks[5:])

    assert [e["status"] for e in events] == ["success"] * 5
    _, gets = reads(emu)
    assert gets == 5
