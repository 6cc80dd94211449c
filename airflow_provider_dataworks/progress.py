"""Drive one pipeline run forward: decide, after each read, whether to stop, execute a stage or wait.

Both wait loops — the hook's blocking loop and the trigger's async loop — feed every run
they read to one :class:`RunProgress` and do what it says, so the two modes cannot drift
apart. The rules (from the DataWorks stage flow): execute only the lowest-step stage that
has not succeeded, only while it is ``Init``, only after every earlier stage succeeded,
never a stage that shows ``Running`` or ``Success``, never again once DataWorks accepted it,
never a stage after the one the task was asked to stop at, and never while the run itself
still reports ``Init`` (DataWorks is preparing it).

DataWorks does not always accept an execution. ``{"Success": false}`` or a "not ready yet" 4xx
means the stage was not started; any other 4xx means it was refused. Either way the stage is
executed again after a backoff, at most :attr:`StageExecPolicy.attempts` times in all; then the
wait gives up (the caller abolishes the run and fails). A permission error is never retried: the
hook raises it. An approval wait is recognised from the run's stages (a stage that stays
``Running``), never from refusals, so it waits until the task's timeout. The retries ride on the
wait's own reads: a retry happens after a read that shows the stage still ``Init``, so the backoff
adds no reads, only the executions DataWorks did not accept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from airflow_provider_dataworks.exceptions import PipelineRunGaveUpError, failure_error
from airflow_provider_dataworks.status import PipelineRun, PipelineRunStatus, Stage, StageTransitionLog


class Step(StrEnum):
    """What the wait loop does next."""

    SUCCEED = "succeed"
    FAIL = "fail"
    EXECUTE = "execute"
    WAIT = "wait"


@dataclass(frozen=True)
class Decision:
    step: Step
    stage: Stage | None = None
    reason: str = ""

    def raise_for_failure(self, run: PipelineRun) -> None:
        """Raise when the decision is to fail: the run failed or was stopped, or the wait gives up on it."""
        if self.step is Step.FAIL:
            if run.is_failed:
                raise failure_error(run)
            raise PipelineRunGaveUpError(self.reason, run=run)


@dataclass(frozen=True)
class StageExecPolicy:
    """How a wait executes a stage again that DataWorks did not accept (plain numbers: JSON-able).

    :param attempts: executions of one stage that DataWorks did not start (``Success: false``, a 4xx),
        backed off, before the wait gives up on the run.
    :param backoff: seconds before the second execution; doubles each time, up to ``max_backoff``.
    :param max_backoff: seconds; the longest backoff between two executions.
    """

    attempts: int = 5
    backoff: float = 10.0
    max_backoff: float = 120.0

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool) or self.attempts < 1:
            raise ValueError(f"stage_exec_policy attempts must be an int of at least 1, got {self.attempts!r}.")
        for name in ("backoff", "max_backoff"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"stage_exec_policy {name} must be a number of seconds >= 0, got {value!r}.")

    @classmethod
    def coerce(cls, value: StageExecPolicy | Mapping[str, Any] | None) -> StageExecPolicy:
        """Accept a policy, a mapping of its fields (as serialised), or ``None`` for the default."""
        if value is None:
            return cls()
        if isinstance(value, StageExecPolicy):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {f.name for f in fields(cls)}
            if unknown:
                raise ValueError(f"stage_exec_policy has unknown keys: {', '.join(sorted(unknown))}.")
            return cls(**value)
        raise TypeError(f"stage_exec_policy must be a StageExecPolicy or a mapping, got {type(value).__name__}.")

    def to_dict(self) -> dict[str, Any]:
        """Return the policy as JSON primitives."""
        return asdict(self)

    def delay(self, failures: int) -> float | None:
        """Seconds before the next execution after ``failures`` unaccepted ones; ``None``: never (give up)."""
        if failures < self.attempts:
            return min(self.max_backoff, self.backoff * 2 ** (failures - 1))
        return None


@dataclass
class _Unaccepted:
    """Executions of one stage that DataWorks did not accept, and when to try again."""

    failures: int = 0
    retry_at: float | None = None
    last_answer: str = ""


class RunProgress:
    """Per-wait memory: stages already executed or refused, transitions already logged.

    :param advance_stages: execute stages that wait for ``ExecPipelineRunStage``.
    :param advance_until_stage: stop (successfully) once this stage code and every stage
        before it succeeded; later stages are left for someone else.
    :param executed: stage codes already executed by an earlier part of the same wait (the
        check before deferring); they are not executed again.
    :param stage_exec_policy: how a stage DataWorks did not accept is executed again
        (:class:`StageExecPolicy` or the mapping of its fields).
    :param exec_failures: :attr:`exec_failures` of an earlier part of the same wait: per stage
        code, executions DataWorks did not accept; the backoff continues from there.
    :param clock: monotonic seconds, for the backoff.
    :param check_only: run the build and check stages only: ``advance_until_stage`` becomes the
        last of the leading ``Build``/``Check`` stages, once the run's stages are known.
    :param observed: :attr:`observed_stages` of an earlier part of the same wait.
    """

    def __init__(
        self,
        *,
        advance_stages: bool = True,
        advance_until_stage: str | None = None,
        executed: Iterable[str] = (),
        stage_exec_policy: StageExecPolicy | Mapping[str, Any] | None = None,
        exec_failures: Mapping[str, int] | None = None,
        logger: Any = None,
        clock: Callable[[], float] = time.monotonic,
        check_only: bool = False,
        observed: Mapping[str, Any] | None = None,
    ) -> None:
        self.advance_stages = advance_stages
        self.check_only = check_only
        self.advance_until_stage = advance_until_stage
        self.stage_exec_policy = StageExecPolicy.coerce(stage_exec_policy)
        self.log = logger or logging.getLogger(__name__)
        self._clock = clock
        self._executed: set[str] = set(executed)
        self._unaccepted: dict[str, _Unaccepted] = {}
        for code, failures in (exec_failures or {}).items():
            delay = self.stage_exec_policy.delay(int(failures))
            self._unaccepted[code] = _Unaccepted(
                failures=int(failures),
                retry_at=None if delay is None else self._clock() + delay,
                last_answer="earlier executions did not start it",
            )
        self._reported_wait: set[str] = set()
        self._transitions = StageTransitionLog(observed)

    def decide(self, run: PipelineRun) -> Decision:
        """Log what changed in ``run`` and return what to do next."""
        self._transitions.log(run, self.log)
        if run.is_success:
            return Decision(Step.SUCCEED, reason=f"Pipeline run {run.id} succeeded.")
        if run.is_failed:
            return Decision(Step.FAIL, stage=run.failed_stage, reason=failure_error(run).args[0])
        if not run.stages_known:
            # read with GetPipelineRun already (the hook does): DataWorks reports no stages yet
            return Decision(Step.WAIT, reason=f"Pipeline run {run.id} is {run.status} and reports no stages yet.")
        if self.check_only and not self.advance_until_stage:
            last_check = run.last_check_stage
            if last_check is None:
                first = run.ordered_stages[0]
                return Decision(
                    Step.FAIL,
                    reason=f"check_only: pipeline run {run.id} has no Build or Check stage to run: its first stage "
                    f"{first.code} is of type {first.type}.",
                )
            self.advance_until_stage = last_check.code
        target = self.advance_until_stage
        if target:
            if run.stage(target) is None:
                codes = ", ".join(stage.code for stage in run.ordered_stages)
                return Decision(
                    Step.FAIL,
                    reason=f"advance_until_stage {target!r} is not a stage of pipeline run {run.id} "
                    f"(its stages: {codes}).",
                )
            if run.stages_succeeded_through(target):
                return Decision(Step.SUCCEED, reason=f"Pipeline run {run.id} completed stage {target}; stopping there.")
        stage = run.next_stage_to_execute
        if stage is None or run.state is PipelineRunStatus.INIT:
            # An Init run is still being prepared; its first stage starts by itself.
            return Decision(Step.WAIT, stage=run.current_stage, reason=self._waiting_reason(run))
        target_stage = run.stage(target) if target else None
        beyond_target = target_stage is not None and stage.step > target_stage.step
        if self.advance_stages and not beyond_target and (refusal := self._exhausted(stage)) is not None:
            return Decision(Step.FAIL, stage=stage, reason=refusal)
        if self.advance_stages and not beyond_target and self._may_execute(stage.code):
            return Decision(Step.EXECUTE, stage=stage, reason=f"executing stage {stage.code}")
        reason = self._waiting_reason(run)
        if stage.code not in self._reported_wait:
            self._reported_wait.add(stage.code)
            self.log.info("%s", reason)
        return Decision(Step.WAIT, stage=stage, reason=reason)

    def _exhausted(self, stage: Stage) -> str | None:
        """Why the wait gives up on ``stage``: DataWorks did not start it after every allowed execution."""
        record = self._unaccepted.get(stage.code)
        if record is None or record.failures < self.stage_exec_policy.attempts:
            return None
        return (
            f"DataWorks did not start stage {stage.code} ({stage.type}, step {stage.step}) after {record.failures} "
            f"executions ({record.last_answer}); waiting does not help."
        )

    def _may_execute(self, code: str) -> bool:
        if code in self._executed:
            return False
        unaccepted = self._unaccepted.get(code)
        if unaccepted is None:
            return True
        return unaccepted.retry_at is not None and self._clock() >= unaccepted.retry_at

    def recheck_in(self, run: PipelineRun) -> float | None:
        """Seconds until :meth:`decide` on this same ``run`` may decide otherwise; ``None``: only a change will.

        The clock matters only for the stage waiting to be executed that DataWorks did not accept:
        its backoff ends. A trigger waiting on an unchanged run is woken for a change, or after this.
        """
        stage = run.next_stage_to_execute
        record = self._unaccepted.get(stage.code) if stage is not None else None
        if record is None or record.retry_at is None:
            return None
        return max(0.0, record.retry_at - self._clock())

    def executed(self, stage: Stage) -> None:
        """Record that ``ExecPipelineRunStage`` accepted ``stage``; it is never executed again."""
        self._executed.add(stage.code)
        self._unaccepted.pop(stage.code, None)
        self.log.info("Executed stage %s (%s, step %s).", stage.code, stage.type, stage.step)

    def not_started(self, stage: Stage, answer: str = "Success: false") -> None:
        """Record that ``ExecPipelineRunStage`` answered without starting ``stage``."""
        self._unaccepted_once(stage, f"DataWorks answered {answer}; the stage did not start")

    def refused(self, stage: Stage, error: Exception) -> None:
        """Record that DataWorks refused to execute ``stage`` (a 4xx)."""
        self._unaccepted_once(stage, f"DataWorks refused to execute it: {error}")

    def _unaccepted_once(self, stage: Stage, answer: str) -> None:
        record = self._unaccepted.setdefault(stage.code, _Unaccepted())
        record.failures += 1
        record.last_answer = answer
        delay = self.stage_exec_policy.delay(record.failures)
        record.retry_at = None if delay is None else self._clock() + delay
        policy = self.stage_exec_policy
        where = f"stage {stage.code} ({stage.type}, step {stage.step})"
        if record.failures < policy.attempts:
            self.log.warning(
                "Executing %s did not start it (attempt %d of %d): %s. Executing it again in %.0f s.",
                where,
                record.failures,
                policy.attempts,
                answer,
                delay or 0.0,
            )
        else:
            self.log.warning(
                "Executing %s did not start it (attempt %d of %d): %s. Giving up on it.",
                where,
                record.failures,
                policy.attempts,
                answer,
            )

    @property
    def executed_stages(self) -> list[str]:
        """The stage codes this wait executed, to hand over to the trigger."""
        return sorted(self._executed)

    @property
    def observed_stages(self) -> dict[str, list[int | None]]:
        """Per stage code, when this wait first saw it running and finished (epoch ms; JSON-able)."""
        return {code: list(times) for code, times in self._transitions.observed.items()}

    @property
    def exec_failures(self) -> dict[str, int]:
        """Per stage code, executions DataWorks did not accept (JSON-able), to hand over to the trigger."""
        return {code: record.failures for code, record in sorted(self._unaccepted.items())}

    def _waiting_reason(self, run: PipelineRun) -> str:
        stage = run.current_stage
        if stage is None:
            return f"Pipeline run {run.id} is {run.status} with no stage left to run."
        where = f"stage {stage.code} ({stage.type}, step {stage.step}, status {stage.status})"
        if not stage.is_waiting:
            return f"Pipeline run {run.id} is at {where}."
        if run.state is PipelineRunStatus.INIT:
            return f"Pipeline run {run.id} is being prepared by DataWorks (Init) at {where}."
        unaccepted = self._unaccepted.get(stage.code)
        if unaccepted is not None:
            return (
                f"Pipeline run {run.id} waits at {where}: {unaccepted.last_answer}; it is executed again "
                "after a backoff."
            )
        if stage.code in self._executed:
            return f"Pipeline run {run.id} is starting {where}."
        if not self.advance_stages:
            return (
                f"Pipeline run {run.id} waits at {where} for someone to execute it "
                "(advance_stages is off): advance it in the DataWorks console."
            )
        return f"Pipeline run {run.id} waits at {where}, beyond advance_until_stage {self.advance_until_stage}."

    def describe_stop(self, run: PipelineRun | None) -> str:
        """Say where the run stood, for timeout messages."""
        if run is None:
            return "The pipeline run was never read successfully."
        return self._waiting_reason(run)
