"""The fuzzer's world: an emulator on a virtual clock, and the events it can fire mid-call.

The emulator runs in process on a :class:`VirtualClock` that moves one :data:`TICK` per API call
it answers, so stage times, ``Init`` phases and timed outages are counted in calls, not in wall
time: a schedule of hours of emulator time runs in milliseconds, and the same schedule moves the
same way on a loaded machine. The provider keeps its real clock (its deadlines are real seconds,
kept short by the schedules).

Events that must land *during* a call of the provider — a person's abolish in the console, a
person's approval, a worker killed or a triggerer restarted mid-wait — are armed to fire after the
n-th API call from now. They fire on the emulator's event-loop thread, right after the call is
recorded and before its answer is sent:

* person actions go straight to the emulator's control operations (as the console does);
* a worker interruption sends ``SIGUSR1`` to the main thread, whose handler (installed only while a
  worker segment runs) calls the operator's ``on_kill`` for a kill, as Airflow's SIGTERM handler
  does, then raises :class:`WorkerKilled` — a ``BaseException``, as a dying worker's last frame sees it;
* a trigger interruption cancels the trigger's asyncio task (a triggerer restart; for a kill the
  harness then awaits ``trigger.on_kill()`` as Airflow 3.3's triggerer does).

The emulator's internals (``_backend.core``) are reached only here, in the test harness, to hook
its call log; nothing in the provider is patched.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_dataworks.reattach import STATE_KEY
from airflow_provider_dataworks.testing import DataWorksEmulator
from airflow_provider_dataworks.testing.controller import EmulatorControlError

#: virtual seconds the emulator's clock moves per API call it answers
TICK = 1.0
ACTIVE = frozenset({"Init", "Running"})
STOPPED = frozenset({"Termination", "Cancel"})


class WorkerKilled(BaseException):
    """The worker running a try died (a ``BaseException``: provider code must not swallow it)."""


class VirtualClock:
    """Epoch seconds that move only by :meth:`tick` (restarted at the real time for each schedule).

    Starting at the real time keeps the SDK's signed timestamps within the emulator's allowed skew.
    """

    def __init__(self) -> None:
        self.now = time.time()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def restart(self) -> None:
        with self._lock:
            self.now = time.time()


@dataclass
class Armed:
    """An event waiting for the ``countdown``-th API call from the moment it was armed."""

    kind: str
    countdown: int


@dataclass
class Segment:
    """What is running right now: a worker's synchronous code, or a trigger on an event loop."""

    kind: str  # "worker" | "trigger"
    operator: Any = None
    loop: asyncio.AbstractEventLoop | None = None
    task: asyncio.Future[Any] | None = None
    #: the interruption fired into this segment ("worker_lost", "kill", "triggerer_restart")
    interrupted: str | None = None


@dataclass
class Fired:
    """An armed event that fired (or found nothing to act on)."""

    kind: str
    run_id: str | None = None
    detail: str = ""
    #: for a console abolish: the task state store named the run at that moment, and the object's runs then
    stored: bool = False
    runs_then: int = 0


class FuzzEmulator:
    """One in-process emulator for many schedules, reset between them, with armed mid-call events."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.emu = DataWorksEmulator(stage_seconds=0.0, init_seconds=0.0, clock=self.clock)
        self.object_id: str | None = None
        self.armed: list[Armed] = []
        self.fired: list[Fired] = []
        self.segment: Segment | None = None
        self.api_calls = 0
        self._lock = threading.Lock()
        self._main = threading.main_thread().ident
        self.counts: Counter[str] = Counter()
        #: the task state store's record (read on the emulator thread when a person stops a run)
        self.store: dict[str, Any] = {}

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> FuzzEmulator:
        self.emu.start()
        core = self.emu._backend.core  # type: ignore[union-attr]  # the harness's one reach inside
        original: Callable[..., None] = core.record_call
        self._core = core

        def record_call(action: str, status: int, code: str | None, request_id: str, fault: str | None) -> None:
            original(action, status, code, request_id, fault)
            self._on_call()

        core.record_call = record_call
        return self

    def stop(self) -> None:
        self.emu.stop()

    def reset(self) -> None:
        """Back to the seed, no armed events, the virtual clock at the real time."""
        with self._lock:
            self.armed.clear()
            self.fired.clear()
            self.segment = None
        self.emu.reset()
        self.clock.restart()

    # --- armed events (run on the emulator's loop thread) ----------------------------------------

    def arm(self, kind: str, after_calls: int) -> None:
        with self._lock:
            self.armed.append(Armed(kind, after_calls))

    def disarm_interruptions(self) -> None:
        with self._lock:
            self.armed = [a for a in self.armed if a.kind in ("console_abolish", "approve")]

    def _on_call(self) -> None:
        self.clock.tick(TICK)
        self.api_calls += 1
        due: list[Armed] = []
        with self._lock:
            for armed in self.armed:
                armed.countdown -= 1
                if armed.countdown <= 0:
                    due.append(armed)
            self.armed = [a for a in self.armed if a.countdown > 0]
        for armed in due:
            self._fire(armed.kind)

    def _active_runs(self) -> list[Any]:
        return [run for run in self._core.state.all_runs() if run.object.id == self.object_id and run.status in ACTIVE]

    def _fire(self, kind: str) -> None:
        if kind == "console_abolish":
            runs = self._active_runs()
            if not runs:
                self.fired.append(Fired(kind, None, "no active run"))
                return
            run = runs[-1]
            record = self.store.get(STATE_KEY)
            stored = isinstance(record, dict) and record.get("pipeline_run_id") == run.id
            total = sum(1 for r in self._core.state.all_runs() if r.object.id == self.object_id)
            self._core.control("console_abolish", {"run_id": run.id})
            self.fired.append(Fired(kind, run.id, stored=stored, runs_then=total))
        elif kind == "approve":
            for run in self._active_runs():
                for stage in run.stages:
                    if stage.awaiting_approval:
                        self._core.control("approve", {"run_id": run.id, "stage": stage.code})
                        self.fired.append(Fired(kind, run.id, stage.code))
                        return
            self.fired.append(Fired(kind, None, "nothing awaits approval"))
        else:  # an interruption of whatever runs now
            self._interrupt(kind)

    def _interrupt(self, kind: str) -> None:
        segment = self.segment
        if segment is None or segment.interrupted is not None:
            self.fired.append(Fired(kind, None, "nothing running"))
            return
        if segment.kind == "worker" and kind in ("worker_lost", "kill"):
            segment.interrupted = kind
            signal.pthread_kill(self._main, signal.SIGUSR1)  # type: ignore[arg-type]
            self.fired.append(Fired(kind, None, "worker"))
        elif segment.kind == "trigger" and segment.loop is not None and segment.task is not None:
            segment.interrupted = "kill" if kind == "kill" else "triggerer_restart"
            segment.loop.call_soon_threadsafe(segment.task.cancel)
            self.fired.append(Fired(segment.interrupted, None, "trigger"))
        else:
            self.fired.append(Fired(kind, None, f"not for a {segment.kind}"))

    def person_now(self, kind: str) -> None:
        """Fire a person's action from the test thread, through the emulator's control API."""
        runs = [r for r in self.runs() if r["status"] in ACTIVE]
        if kind == "console_abolish" and runs:
            run = runs[-1]
            record = self.store.get(STATE_KEY)
            stored = isinstance(record, dict) and record.get("pipeline_run_id") == run["id"]
            total = len(self.runs())
            self.emu.console_abolish(run["id"])
            self.fired.append(Fired(kind, run["id"], stored=stored, runs_then=total))
        elif kind == "approve":
            for run in runs:
                for stage in run["stages"]:
                    if stage["awaiting_approval"]:
                        self.emu.approve(run["id"], stage["code"])
                        self.fired.append(Fired(kind, run["id"], stage["code"]))
                        return

    # --- reads ---------------------------------------------------------------------------------------

    def runs(self) -> list[dict[str, Any]]:
        return self.emu.runs(object_id=self.object_id)


def install_worker_signal(world: FuzzEmulator) -> Callable[[], None]:
    """Install the ``SIGUSR1`` handler that kills the current worker segment; return the uninstaller."""

    def handler(signum: int, frame: Any) -> None:
        segment = world.segment
        if segment is None or segment.kind != "worker" or segment.interrupted is None:
            return  # a late signal: the segment it was meant for has ended
        world.segment = None
        if segment.interrupted == "kill" and segment.operator is not None:
            # Airflow's SIGTERM handler: on_kill in the worker, then the task ends
            segment.operator.on_kill()
        raise WorkerKilled(segment.interrupted)

    previous = signal.signal(signal.SIGUSR1, handler)
    return lambda: signal.signal(signal.SIGUSR1, previous)


@dataclass
class Stats:
    """What the fuzzer ran: schedules, steps, events by kind, try outcomes."""

    schedules: int = 0
    steps: int = 0
    events: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.schedules / elapsed if elapsed > 0 else 0.0


__all__ = [
    "STOPPED",
    "EmulatorControlError",
    "FuzzEmulator",
    "Stats",
    "VirtualClock",
    "WorkerKilled",
    "install_worker_signal",
]
