"""Wait for a pipeline run on the triggerer, and the one place that reads the event back.

The trigger polls with the hook's ``*_async`` methods (one kept-alive session per event loop,
nothing blocking on the loop), retries transient errors through the hook's retry policy, drives
stages through the same :class:`~airflow_provider_dataworks.progress.RunProgress` as the
blocking wait, and yields exactly one :class:`PipelineRunEvent`.

The event crosses a process boundary (triggerer → a fresh worker), so it is JSON and
self-contained; :func:`resolve_trigger_event` is the only code that turns it back into a
result, for the operator and the sensor alike. A missing, malformed or unknown event fails
loudly — it is never read as success.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, TypedDict

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_dataworks._compat import (
    STATE_READ_TIMEOUT,
    TRIGGER_ON_KILL,
    DeferralEnd,
    deferral_end,
    outlast_cancels,
)
from airflow_provider_dataworks.abolish import abolish_and_confirm_async
from airflow_provider_dataworks.exceptions import (
    DataWorksError,
    InvalidTriggerEventError,
    PipelineRunGaveUpError,
    PipelineRunTimeoutError,
    Remedy,
    describe_permission_error,
    error_remedy,
    failure_error,
    is_transient,
)
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook, Outage
from airflow_provider_dataworks.hooks.poller import StatusReads, status_reads
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.pacing import delay_before_first_read, pause_before_next_read
from airflow_provider_dataworks.progress import RunProgress, StageExecPolicy, Step
from airflow_provider_dataworks.status import PipelineRun
from airflow_provider_dataworks.triggers.events import EVENT_STATUSES, EventStatus, check_event

__all__ = ["EVENT_STATUSES", "PipelineRunEvent", "PipelineRunTrigger", "resolve_trigger_event"]

#: seconds the trigger's ``on_kill`` may spend abolishing the run (the triggerer allows 30)
ON_KILL_TIMEOUT = 20.0


class PipelineRunEvent(TypedDict):
    """The payload of the one event a :class:`PipelineRunTrigger` yields.

    ``status``:
      * ``success`` — the run succeeded (or, with ``advance_until_stage``, that stage and every
        stage before it did); ``run`` is the final run.
      * ``failed`` — the run ended ``Fail``, ``Termination`` or ``Cancel``; ``run`` says where.
      * ``timeout`` — ``end_time`` passed while the run was still active; the run was left as it
        is (the operator abolishes it when ``cancel_on_timeout`` is on); ``message`` names the stage.
      * ``error`` — the wait gave up: an error waiting cannot heal (a permission error, an invalid
        connection, a run that is gone), ``advance_until_stage`` is not a stage of the run, or a
        stage DataWorks kept refusing; ``run`` is the last run read, if any. Transient errors never
        make an event: the trigger rides them out until ``end_time``.
    """

    status: EventStatus
    pipeline_run_id: str
    project_id: int
    message: str
    #: :meth:`PipelineRun.to_api` of the last run read, or ``None``
    run: dict[str, Any] | None
    #: RequestId of the last successful read, or ``None``
    request_id: str | None
    #: :attr:`RunProgress.observed_stages`: when the wait first saw each stage running and finished
    observed: dict[str, list[int | None]]


def observed_of(event: Any) -> dict[str, Any]:
    """The stage times an event's wait observed (for the report); ``{}`` when it carries none or a bad shape."""
    observed = event.get("observed") if isinstance(event, dict) else None
    return dict(observed) if isinstance(observed, dict) else {}


def resolve_trigger_event(
    event: Any,
    *,
    pipeline_run_id: str | None = None,
    advance_until_stage: str | None = None,
    check_only: bool = False,
) -> PipelineRun:
    """Validate the event that resumed a task and turn it into the final run or an exception.

    :param event: what the task was resumed with.
    :param pipeline_run_id: the run the task waited for; an event about another run is refused.
    :param advance_until_stage: the stage after which a still-running run counts as success.
    :param check_only: success means every stage before the run's first deploy stage succeeded.
    :return: the final run, for a ``success`` event only.
    :raises InvalidTriggerEventError: no event, not a mapping, a missing key, an unknown status, an
        event about another run, or a ``success`` the run itself does not confirm.
    :raises PipelineRunFailedError: ``failed`` (:class:`PipelineRunStoppedError`, no retry, when someone
        abolished the run).
    :raises PipelineRunTimeoutError: ``timeout``.
    :raises PipelineRunGaveUpError: ``error`` (no retry).
    """
    event = check_event(
        event,
        id_key="pipeline_run_id",
        expected_id=pipeline_run_id,
        subject="pipeline run",
        record="run",
        required=("project_id",),
    )
    status, run_id = event["status"], event["pipeline_run_id"]
    if not isinstance(run_id, str):
        raise InvalidTriggerEventError(f"The trigger event has no valid pipeline_run_id: {run_id!r}.")
    message = event["message"]
    data = event["run"]
    request_id = event.get("request_id")
    run = PipelineRun.from_api(data, request_id=str(request_id) if request_id else None) if data else None
    if run is not None and run.id and run.id != run_id:
        raise InvalidTriggerEventError(f"The trigger event's run {run.id} is not pipeline run {run_id}.")

    if status == "success":
        if run is None:
            raise InvalidTriggerEventError(f"The success event of pipeline run {run_id} carries no run to confirm it.")
        if check_only and (last_check := run.last_check_stage) is not None:
            advance_until_stage = last_check.code
        if run.is_success or (advance_until_stage and run.stages_succeeded_through(advance_until_stage)):
            return run
        raise InvalidTriggerEventError(
            f"The trigger reported success, but pipeline run {run_id} is {run.status}"
            + (f" and stage {advance_until_stage} has not succeeded." if advance_until_stage else ".")
        )
    if status == "failed":
        if run is None or not run.is_failed:
            raise InvalidTriggerEventError(
                f"The trigger reported a failure of pipeline run {run_id}, but the run it sent is "
                f"{run.status if run else 'missing'}: {message}"
            )
        raise failure_error(run)
    if status == "timeout":
        raise PipelineRunTimeoutError(
            message or f"Pipeline run {run_id} did not finish before the timeout.",
            run=run,
            stage=run.current_stage if run else None,
        )
    raise PipelineRunGaveUpError(message or f"Waiting for pipeline run {run_id} failed.", run=run)


class PipelineRunTrigger(BaseTrigger):
    """Poll one pipeline run until it finishes (optionally driving its stages); yield one event.

    Every argument is a JSON primitive so :meth:`serialize` round-trips exactly; a triggerer
    that restarts rebuilds the trigger and resumes waiting on the same run.

    :param pipeline_run_id: the run to wait for.
    :param project_id: its workspace ID.
    :param dataworks_conn_id: the connection to read the run with.
    :param region: overrides the connection's region.
    :param poll_interval: seconds between two reads of the run.
    :param end_time: absolute ``time.time()`` after which a ``timeout`` event is yielded;
        ``None`` waits without limit.
    :param advance_stages: execute each stage that waits for ``ExecPipelineRunStage``.
    :param advance_until_stage: succeed once this stage and every stage before it succeeded.
    :param retry_policy: :meth:`DataWorksRetryPolicy.to_dict` of the per-call retry policy.
    :param cancel_on_kill: abolish the run when a user kills the deferred task: in :meth:`on_kill` on
        Airflow 3.3+, and below 3.3 when the trigger is cancelled and its task instance is no longer
        deferred (see :func:`~airflow_provider_dataworks._compat.deferral_end`).
    :param executed_stages: stage codes the task already executed before deferring; not executed again.
    :param check_only: drive the build and check stages only (see ``RunProgress``).
    :param stage_exec_policy: :meth:`StageExecPolicy.to_dict` of how a stage DataWorks did not
        accept is executed again; default: the policy's defaults.
    :param exec_failures: per stage code, the executions DataWorks did not accept before deferring
        (``RunProgress.exec_failures``): the backoff goes on from there instead of executing a
        refused stage again on the first read.
    :param observed_stages: ``RunProgress.observed_stages`` of the check before deferring.
    :param next_poll_at: absolute ``time.time()`` of the first read. The task reads the run just
        before deferring, so reading again at once would only spend an API call; a trigger
        rebuilt later (triggerer restart) finds this time passed and reads at once.
    """

    def __init__(
        self,
        pipeline_run_id: str,
        project_id: int,
        dataworks_conn_id: str = DataWorksHook.default_conn_name,
        region: str | None = None,
        poll_interval: float = 10.0,
        end_time: float | None = None,
        advance_stages: bool = False,
        advance_until_stage: str | None = None,
        retry_policy: dict[str, Any] | None = None,
        cancel_on_kill: bool = False,
        executed_stages: list[str] | None = None,
        next_poll_at: float | None = None,
        check_only: bool = False,
        stage_exec_policy: dict[str, Any] | None = None,
        exec_failures: dict[str, int] | None = None,
        observed_stages: dict[str, list[int | None]] | None = None,
    ) -> None:
        super().__init__()
        self.pipeline_run_id = str(pipeline_run_id)
        self.project_id = int(project_id)
        self.dataworks_conn_id = dataworks_conn_id
        self.region = region
        self.poll_interval = float(poll_interval)
        self.end_time = None if end_time is None else float(end_time)
        self.advance_stages = bool(advance_stages)
        self.advance_until_stage = advance_until_stage or None
        self.retry_policy = DataWorksRetryPolicy.coerce(retry_policy).to_dict()
        self.cancel_on_kill = bool(cancel_on_kill)
        self.executed_stages = sorted(executed_stages or ())
        self.next_poll_at = None if next_poll_at is None else float(next_poll_at)
        self.check_only = bool(check_only)
        self.stage_exec_policy = StageExecPolicy.coerce(stage_exec_policy).to_dict()
        self.exec_failures = {str(code): int(count) for code, count in sorted((exec_failures or {}).items())}
        self.observed_stages = {str(code): list(times) for code, times in (observed_stages or {}).items()}
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval must be greater than 0 seconds, got {poll_interval!r}.")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "pipeline_run_id": self.pipeline_run_id,
                "project_id": self.project_id,
                "dataworks_conn_id": self.dataworks_conn_id,
                "region": self.region,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "advance_stages": self.advance_stages,
                "advance_until_stage": self.advance_until_stage,
                "retry_policy": dict(self.retry_policy),
                "cancel_on_kill": self.cancel_on_kill,
                "executed_stages": list(self.executed_stages),
                "next_poll_at": self.next_poll_at,
                "check_only": self.check_only,
                "stage_exec_policy": dict(self.stage_exec_policy),
                "exec_failures": dict(self.exec_failures),
                "observed_stages": {code: list(times) for code, times in self.observed_stages.items()},
            },
        )

    def _hook(self, retry_policy: DataWorksRetryPolicy | None = None) -> DataWorksHook:
        # the reads of a wait pause no longer than about a poll interval between retries (see for_wait)
        policy = retry_policy or DataWorksRetryPolicy.coerce(self.retry_policy).for_wait(self.poll_interval)
        return DataWorksHook(self.dataworks_conn_id, region=self.region, retry_policy=policy)

    def _event(
        self, status: EventStatus, message: str, run: PipelineRun | None, progress: RunProgress | None = None
    ) -> TriggerEvent:
        payload: PipelineRunEvent = {
            "status": status,
            "pipeline_run_id": self.pipeline_run_id,
            "project_id": self.project_id,
            "message": message,
            "run": run.to_api() if run is not None else None,
            "request_id": run.request_id if run is not None else None,
            "observed": progress.observed_stages if progress is not None else {},
        }
        return TriggerEvent(dict(payload))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._wait()
        except asyncio.CancelledError:
            if not TRIGGER_ON_KILL:
                # the triggerer re-cancels this task about once a second until it ends (see outlast_cancels)
                await outlast_cancels(self._cancelled_below_3_3(), STATE_READ_TIMEOUT + ON_KILL_TIMEOUT)
            raise
        # Yielded outside the try: a cancellation after the event (the triggerer stopping this trigger
        # once its task was resumed) is no kill and must not abolish a finished or timed-out run.
        yield event

    async def _wait(self) -> TriggerEvent:
        """Poll (and drive) the run until there is an event to report; return it."""
        hook = self._hook()
        # The run's status comes from the process's shared poller (coalesced reads, hooks/poller.py);
        # the trigger leaves it as soon as it has its event, or when it is cancelled.
        reads = status_reads(hook, self.pipeline_run_id, self.project_id, self.poll_interval, self.next_poll_at)
        try:
            return await self._poll(hook, reads)
        finally:
            reads.close()

    async def _poll(self, hook: DataWorksHook, reads: StatusReads) -> TriggerEvent:
        progress = RunProgress(
            advance_stages=self.advance_stages,
            advance_until_stage=self.advance_until_stage,
            executed=self.executed_stages,
            logger=self.log,
            check_only=self.check_only,
            stage_exec_policy=self.stage_exec_policy,
            exec_failures=self.exec_failures,
            observed=self.observed_stages,
        )
        run: PipelineRun | None = None
        pause: float = 0.0
        known: PipelineRun | None = None
        recheck_in: float | None = None
        if (delay := delay_before_first_read(self.next_poll_at, self.end_time)) > 0:
            await asyncio.sleep(delay)
        outage = Outage(self.log, self.pipeline_run_id)
        while True:
            # Transient errors were already retried by the hook; they never end the wait while the
            # deadline is ahead (DataWorks may be deploying all along). Anything else ends it.
            decision = None
            try:
                status = await reads.read(pause, known=known, recheck_in=recheck_in)
                run, decision = await hook.advance_pipeline_run_async(
                    self.pipeline_run_id, self.project_id, progress, run=status
                )
            except (DataWorksError, ValueError) as err:
                if not is_transient(err):
                    return self._event("error", self._error_message(err), run, progress)
                outage.failed(err)
            else:
                outage.ended()
            if decision is not None and decision.step is Step.SUCCEED:
                self.log.info("%s", decision.reason)
                return self._event("success", decision.reason, run, progress)
            if decision is not None and decision.step is Step.FAIL:
                return self._event(
                    "failed" if run is not None and run.is_failed else "error", decision.reason, run, progress
                )
            next_pause = pause_before_next_read(self.poll_interval, self.end_time)
            if next_pause is None:
                stop = progress.describe_stop(run) + outage.describe()
                message = f"Pipeline run {self.pipeline_run_id} did not finish before the timeout. {stop}"
                self.log.warning("%s", message)
                return self._event("timeout", message, run, progress)
            pause = next_pause
            # Waiting on a run that does not change decides the same again until the clock says
            # otherwise (a refused stage's backoff ends, the deadline comes), so the shared poller
            # wakes this trigger only when the run changes: a quiet wait costs no objects per cycle.
            known = run if decision is not None and decision.step is Step.WAIT else None
            left = None if self.end_time is None else self.end_time - time.time()
            recheck = progress.recheck_in(run) if run is not None and decision is not None else None
            recheck_in = min((s for s in (recheck, left) if s is not None), default=None)

    def _error_message(self, error: BaseException) -> str:
        if error_remedy(error) is Remedy.PERMISSION and isinstance(error, DataWorksError):
            return describe_permission_error(error)
        return f"Could not read or drive pipeline run {self.pipeline_run_id}; waiting cannot heal this: {error}"

    async def _cancelled_below_3_3(self) -> None:
        """Below Airflow 3.3: abolish the run if the cancellation was a user's kill; never raises.

        A cancelled trigger whose task instance is still deferred is being stopped or moved by the
        triggerer (the run goes on); one that Airflow 2.x timed out itself is left to the resumed task
        (it abolishes with ``cancel_on_timeout``); anything else is a kill.
        """
        if not self.cancel_on_kill:
            return
        end = await deferral_end(self.task_instance)
        if end is DeferralEnd.KILLED:
            await self._abolish_killed()
        elif end is DeferralEnd.UNKNOWN:
            self.log.warning(
                "Trigger cancelled and its task's state could not be read; pipeline run %s is left running.",
                self.pipeline_run_id,
            )
        else:
            self.log.info("Trigger cancelled (%s); pipeline run %s goes on.", end.value, self.pipeline_run_id)

    async def on_kill(self) -> None:
        """Abolish the run when a user kills the deferred task (``cancel_on_kill``); bounded, never raises.

        Not called on trigger timeout, triggerer restart or normal completion (Airflow 3.3 semantics),
        and ``cleanup()`` is deliberately left alone: a restarting triggerer must not cancel deployments.
        """
        if not self.cancel_on_kill:
            self.log.info("Task killed; pipeline run %s is left running (cancel_on_kill is off).", self.pipeline_run_id)
            return
        await self._abolish_killed()

    async def _abolish_killed(self) -> None:
        """Abolish the run of a killed task: at most :data:`ON_KILL_TIMEOUT` seconds, never raises."""
        policy = DataWorksRetryPolicy.coerce(self.retry_policy)
        hook = self._hook(
            DataWorksRetryPolicy(max_attempts=min(policy.max_attempts, 3), base_delay=policy.base_delay, max_delay=2.0)
        )
        try:
            outcome = await asyncio.wait_for(
                abolish_and_confirm_async(hook, self.pipeline_run_id, self.project_id), timeout=ON_KILL_TIMEOUT
            )
        except TimeoutError:
            self.log.warning(
                "Abolishing pipeline run %s did not finish within %.0f s; its state is not known.",
                self.pipeline_run_id,
                ON_KILL_TIMEOUT,
            )
        except Exception as err:  # the kill path must never raise into the triggerer
            self.log.warning("Could not abolish pipeline run %s: %s", self.pipeline_run_id, type(err).__name__)
        else:
            if outcome.abolished:
                self.log.info("The task was killed. %s", outcome.message)
            else:
                self.log.warning("The task was killed. %s", outcome.message)
