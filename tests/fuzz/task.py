"""One task instance of ``CreatePipelineRunOperator`` driven through its tries as Airflow would.

A try runs the real operator in the main thread (a worker), and in deferrable mode its trigger
rebuilt from ``serialize()`` on an event loop (a triggerer), then a fresh operator's
``resume_execution`` (a new worker). The Airflow objects are the ``create_autospec`` task instance,
DAG run and task state store of ``tests/operators/support.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred
from operators.support import TaskInstance, rebuild

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

from .world import FuzzEmulator, Segment, WorkerKilled

#: fast, still exponential with jitter: the provider's own retry layer. Its lookup delays are also the
#: reconcile window of an ambiguous create (0.01+0.02+0.04+0.08+0.16 s), which must outlast the time a
#: late answer lands after the read timeout (schedules.LATE_ANSWER - READ_TIMEOUT), as 31 s do by default
FAST_RETRIES = {"max_attempts": 3, "base_delay": 0.005, "max_delay": 0.2}
#: a stage DataWorks keeps refusing: given up after this many executions
FAST_EXEC = {"attempts": 3, "backoff": 0.002, "max_backoff": 0.01}
POLL = 0.002
#: the longest a trigger may take to yield (its own deadline is far shorter): a hang fails the schedule
TRIGGER_LIMIT = 30.0


@dataclass(frozen=True)
class Config:
    """What one schedule deploys, and how."""

    deferrable: bool
    project_id: int
    object_id: str
    stages: tuple[tuple[str, str], ...]  # (code, type) in step order
    custom_stages: bool
    fail_at: str | None
    approval: tuple[str, ...]
    stage_seconds: float
    with_store: bool
    retries: int
    run_mode: str | None
    auto_until: str | None
    advance_until: str | None
    check_only: bool
    timeout: float
    execution_timeout: float | None
    cancel_on_timeout: bool
    cancel_on_kill: bool
    report: bool
    description: str | None

    def operator(self) -> CreatePipelineRunOperator:
        return CreatePipelineRunOperator(
            task_id="deploy",
            object_id=self.object_id,
            project_id=self.project_id,
            description=self.description,
            run_mode=self.run_mode,
            auto_run_until_stage=self.auto_until,
            advance_until_stage=self.advance_until,
            check_only=self.check_only,
            deferrable=self.deferrable,
            poll_interval=POLL,
            timeout=self.timeout,
            execution_timeout=None if self.execution_timeout is None else timedelta(seconds=self.execution_timeout),
            cancel_on_timeout=self.cancel_on_timeout,
            cancel_on_kill=self.cancel_on_kill,
            report=self.report,
            retries=self.retries,
            dataworks_retry_policy=FAST_RETRIES,
            stage_exec_policy=FAST_EXEC,
        )

    def step_of(self, code: str | None) -> int | None:
        codes = [c for c, _ in self.stages]
        return None if code is None or code not in codes else codes.index(code)

    @property
    def target(self) -> str:
        """The stage the task succeeds at (the provider's rule, restated from the README's table)."""
        if self.check_only:
            leading = [code for code, kind in self.stages[: self._leading_checks()]]
            return leading[-1] if leading else self.stages[0][0]
        return self.advance_until or self.auto_until or self.stages[-1][0]

    @property
    def last_allowed_step(self) -> int:
        """The last step any party may start: the task's target, or further where DataWorks runs by itself."""
        if self.check_only:
            return self._leading_checks() - 1
        steps = [self.step_of(self.advance_until), self.step_of(self.auto_until)]
        present = [s for s in steps if s is not None]
        return max(present) if present else len(self.stages) - 1

    def _leading_checks(self) -> int:
        count = 0
        for _, kind in self.stages:
            if kind not in ("Build", "Check"):
                break
            count += 1
        return count


@dataclass
class Try:
    """One try of the task instance and how it ended."""

    number: int
    attempt: int
    #: "running" (deferred), "success", "failed", "worker_lost", "killed"
    outcome: str = "running"
    result: Any = None
    error: BaseException | None = None
    xcom: dict[str, Any] = field(default_factory=dict)
    segments: list[str] = field(default_factory=list)
    #: real seconds from the try's start to its failure: the provider's deadlines are real seconds,
    #: so on a starved machine a long timeout can pass too (then it is a cause, not a defect)
    started: float = field(default_factory=time.monotonic)
    failed_after: float | None = None

    @property
    def retryable(self) -> bool:
        if self.outcome == "worker_lost":
            return True
        return self.outcome == "failed" and not isinstance(self.error, AirflowFailException)


class TaskDriver:
    """The task instance across tries, clears and kills; the model the invariants read."""

    def __init__(self, world: FuzzEmulator, config: Config) -> None:
        self.world = world
        self.config = config
        self.ti = TaskInstance(with_store=config.with_store, retries=config.retries)
        self.tries: list[Try] = []
        self.attempt = 0
        #: the try waiting on the triggerer: its context, the trigger as deferred, the resume method
        self._deferred: tuple[dict[str, Any], Any, str, dict[str, Any]] | None = None
        #: arm a kill at the first XCom push of the next try (right after the run exists)
        self.kill_after_create: str | None = None
        #: a kill of the worker (terminal: mark failed); only a clear starts a new try after it
        self.killed = False

    # --- what Airflow would do next -----------------------------------------------------------------

    @property
    def deferred(self) -> bool:
        return self._deferred is not None

    @property
    def last(self) -> Try | None:
        return self.tries[-1] if self.tries else None

    @property
    def max_tries(self) -> int:
        return self.config.retries if self.ti.max_tries is None else self.ti.max_tries

    def may_start_try(self) -> bool:
        """The first try of an attempt, or Airflow's retry of a retryable end with tries left."""
        if self.deferred or self.killed:
            return False
        last = self.last
        if last is None or last.attempt != self.attempt:
            return True
        return last.retryable and last.number <= self.max_tries

    def may_retry_anyway(self) -> bool:
        """A retry that comes although the try failed for good (its worker lost after the failure)."""
        last = self.last
        return (
            not self.deferred
            and not self.killed
            and last is not None
            and last.attempt == self.attempt
            and last.outcome == "failed"
            and not last.retryable
            and last.number <= self.max_tries
        )

    # --- tries -------------------------------------------------------------------------------------

    def start_try(self) -> Try:
        number = (self.last.number + 1) if self.last else 1
        attempt = Try(number, self.attempt)
        self.tries.append(attempt)
        context = self.ti.context(number)
        if self.kill_after_create is not None:
            self._kill_at_first_push(context, self.kill_after_create)
            self.kill_after_create = None
        operator = self.config.operator()
        self._worker(attempt, context, operator, lambda: operator.execute(context))
        return attempt

    def continue_deferred(self) -> Try:
        """Run the trigger (rebuilt from what was deferred) until its event or an interruption, then resume."""
        assert self._deferred is not None
        context, trigger, method, kwargs = self._deferred
        attempt = self.tries[-1]
        attempt.segments.append("trigger")
        payload, interrupted = asyncio.run(self._trigger_slice(rebuild(trigger)))
        if interrupted == "triggerer_restart":
            return attempt  # still deferred: the next triggerer rebuilds it from the same kwargs
        if interrupted == "kill":
            self._deferred = None
            attempt.outcome = "killed"
            self.killed = True
            return attempt
        self._deferred = None
        operator = self.config.operator()
        next_kwargs = {"event": payload, **kwargs}
        self._worker(attempt, context, operator, lambda: operator.resume_execution(method, next_kwargs, context))
        return attempt

    def kill_deferred(self) -> Try:
        """A user kills the deferred task (mark failed, or the kill before a clear): trigger cancelled, on_kill."""
        assert self._deferred is not None
        _, trigger, _, _ = self._deferred
        self._deferred = None
        attempt = self.tries[-1]
        attempt.segments.append("kill")

        async def kill() -> None:
            await rebuild(trigger).on_kill()

        asyncio.run(kill())
        attempt.outcome = "killed"
        self.killed = True
        return attempt

    def clear(self) -> None:
        """Clear the task instance (a running deferred try is killed first, as Airflow does)."""
        if self.deferred:
            self.kill_deferred()
        last = self.last
        self.ti.clear(try_number=last.number if last else 0)
        self.attempt += 1
        self.killed = False

    # --- the two kinds of segment ----------------------------------------------------------------

    def _worker(self, attempt: Try, context: dict[str, Any], operator: Any, call: Any) -> None:
        attempt.segments.append("worker")
        segment = Segment("worker", operator=operator)
        self.world.segment = segment
        try:
            try:
                attempt.result = call()
                attempt.outcome = "success"
            finally:
                self.world.segment = None
        except TaskDeferred as deferred:
            self._deferred = (context, deferred.trigger, deferred.method_name, dict(deferred.kwargs or {}))
            attempt.outcome = "running"
        except WorkerKilled as killed:
            attempt.outcome = "killed" if str(killed) == "kill" else "worker_lost"
            self.killed = attempt.outcome == "killed"
        except Exception as err:
            attempt.outcome = "failed"
            attempt.error = err
            attempt.failed_after = time.monotonic() - attempt.started
        finally:
            self.world.disarm_interruptions()
            attempt.xcom = dict(self.ti.state.xcom)

    async def _trigger_slice(self, trigger: Any) -> tuple[dict[str, Any] | None, str | None]:
        loop = asyncio.get_running_loop()

        async def first_event() -> dict[str, Any]:
            async for event in trigger.run():
                return dict(event.payload)
            raise AssertionError("the trigger ended without an event")

        task = asyncio.ensure_future(first_event())
        segment = Segment("trigger", loop=loop, task=task)
        self.world.segment = segment
        try:
            payload = await asyncio.wait_for(asyncio.shield(task), TRIGGER_LIMIT)
            return payload, None
        except asyncio.CancelledError:
            if segment.interrupted is None:
                raise
            if segment.interrupted == "kill":
                await trigger.on_kill()  # Airflow 3.3's triggerer: cancel, then on_kill
            return None, segment.interrupted
        finally:
            self.world.segment = None
            self.world.disarm_interruptions()

    def _kill_at_first_push(self, context: dict[str, Any], how: str) -> None:
        """The worker dies at the first XCom push of this try: right after the run exists."""
        ti = context["ti"]
        push = ti.xcom_push.side_effect
        world = self.world

        def dying_push(key: str, value: Any) -> None:
            push(key, value)
            segment = world.segment
            ti.xcom_push.side_effect = push
            if how == "kill" and segment is not None and segment.operator is not None:
                world.segment = None
                segment.operator.on_kill()
            raise WorkerKilled(how)

        ti.xcom_push.side_effect = dying_push
