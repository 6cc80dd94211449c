"""Drive one pipeline run forward: decide, after each read, whether to stop, execute a stage or wait.

Both wait loops — the hook's blocking loop and the trigger's async loop — feed every run
they read to one :class:`RunProgress` and do what it says, so the two modes cannot drift
apart. The rules (from the DataWorks stage flow): execute only the lowest-step stage that
has not succeeded, only while it is ``Init``, only after every earlier stage succeeded,
never the same stage twice; a stage that the API refuses to execute (for example one that
waits for an approval in the console) is reported once and then waited on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from airflow_provider_dataworks.exceptions import DataWorksError, PipelineRunFailedError
from airflow_provider_dataworks.status import PipelineRun, Stage, StageTransitionLog


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
        """Raise when the decision is to fail: the run failed, or the wait cannot go on."""
        if self.step is Step.FAIL:
            if run.is_failed:
                raise PipelineRunFailedError(run)
            raise DataWorksError(self.reason)


class RunProgress:
    """Per-wait memory: stages already executed or refused, transitions already logged.

    :param advance_stages: execute stages that wait for ``ExecPipelineRunStage``.
    :param advance_until_stage: stop (successfully) once this stage code and every stage
        before it succeeded; later stages are left for someone else.
    :param executed: stage codes already executed by an earlier part of the same wait (the
        check before deferring); they are not executed again.
    :param check_only: run the build and check stages only: ``advance_until_stage`` becomes the
        last stage before the first ``Deploy``/``Offline`` stage, once the run's stages are known.
    """

    def __init__(
        self,
        *,
        advance_stages: bool = True,
        advance_until_stage: str | None = None,
        executed: Iterable[str] = (),
        logger: Any = None,
        check_only: bool = False,
    ) -> None:
        self.advance_stages = advance_stages
        self.check_only = check_only
        self.advance_until_stage = advance_until_stage
        self.log = logger or logging.getLogger(__name__)
        self._executed: set[str] = set(executed)
        self._refused: dict[str, str] = {}
        self._reported_wait: set[str] = set()
        self._transitions = StageTransitionLog()

    def decide(self, run: PipelineRun) -> Decision:
        """Log what changed in ``run`` and return what to do next."""
        self._transitions.log(run, self.log)
        if run.is_success:
            return Decision(Step.SUCCEED, reason=f"Pipeline run {run.id} succeeded.")
        if run.is_failed:
            return Decision(Step.FAIL, stage=run.failed_stage, reason=run.describe_failure())
        if self.check_only and run.stages and not self.advance_until_stage:
            last_check = run.last_check_stage
            if last_check is None:
                return Decision(
                    Step.FAIL, reason=f"check_only: pipeline run {run.id} has no stage before its first deploy stage."
                )
            self.advance_until_stage = last_check.code
        target = self.advance_until_stage
        if target and run.stages:
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
        if stage is None:
            return Decision(Step.WAIT, stage=run.current_stage, reason=self._waiting_reason(run))
        target_stage = run.stage(target) if target else None
        beyond_target = target_stage is not None and stage.step > target_stage.step
        if self.advance_stages and not beyond_target and stage.code not in self._executed | set(self._refused):
            return Decision(Step.EXECUTE, stage=stage, reason=f"executing stage {stage.code}")
        reason = self._waiting_reason(run)
        if stage.code not in self._reported_wait:
            self._reported_wait.add(stage.code)
            self.log.info("%s", reason)
        return Decision(Step.WAIT, stage=stage, reason=reason)

    def executed(self, stage: Stage) -> None:
        """Record that ``ExecPipelineRunStage`` accepted ``stage``."""
        self._executed.add(stage.code)
        self.log.info("Executed stage %s (%s, step %s).", stage.code, stage.type, stage.step)

    @property
    def executed_stages(self) -> list[str]:
        """The stage codes this wait executed, to hand over to the trigger."""
        return sorted(self._executed)

    def refused(self, stage: Stage, error: Exception) -> None:
        """Record that DataWorks refused to execute ``stage``; it is not tried again in this wait."""
        self._refused[stage.code] = str(error)
        self.log.warning(
            "DataWorks refused to execute stage %s (%s, step %s): %s. Waiting for it to be advanced "
            "in the DataWorks console.",
            stage.code,
            stage.type,
            stage.step,
            error,
        )

    def _waiting_reason(self, run: PipelineRun) -> str:
        stage = run.current_stage
        if stage is None:
            return f"Pipeline run {run.id} is {run.status} with no stage left to run."
        where = f"stage {stage.code} ({stage.type}, step {stage.step}, status {stage.status})"
        if not stage.is_waiting:
            return f"Pipeline run {run.id} is at {where}."
        if stage.code in self._refused:
            return (
                f"Pipeline run {run.id} waits at {where}: DataWorks refused to execute it through the API "
                f"({self._refused[stage.code]}); it must be advanced in the DataWorks console."
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
