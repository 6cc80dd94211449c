"""The deployment protocol's invariants, read from the emulator's records and the task's tries.

Each check raises ``AssertionError`` naming the rule and what contradicts it. They hold after every
step of a schedule and at its end; none depends on how the events interleaved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_dataworks.exceptions import (
    DataWorksApiError,
    DataWorksAuthError,
    DataWorksError,
    DataWorksTransportError,
    PipelineRunAmbiguousCreateError,
    PipelineRunFailedError,
    PipelineRunGaveUpError,
    PipelineRunStoppedError,
    PipelineRunTimeoutError,
)
from airflow_provider_dataworks.testing.core import DEFAULT_ACCESS_KEY_SECRET

from .task import Config, TaskDriver, Try
from .world import ACTIVE, STOPPED, Fired

_ABOLISHED = re.compile(r"[Pp]ipeline run (\S+) was abolished")
_STILL = re.compile(r"pipeline run (\S+) is still (\w+)")
_STOPPED_OUTSIDE = "stopped outside this task"


@dataclass
class Injected:
    """What the schedule did to the task, for the failure-cause rule."""

    faults: list[tuple[str, str, int | None]] = field(default_factory=list)  # (action, kind, status)
    #: runs a person stopped in the console while the task state store named them: attempt -> runs then
    person_stopped: dict[int, int] = field(default_factory=dict)

    def fault_on(self, action: str | None, kinds: Iterable[str] = (), status: int | None = None) -> bool:
        kinds = set(kinds)
        return any(
            (action is None or a in ("*", action) or action in a.split(","))
            and (not kinds or k in kinds)
            and (status is None or s == status)
            for a, k, s in self.faults
        )


def check_all(driver: TaskDriver, runs: list[dict[str, Any]], injected: Injected, logs: list[str]) -> None:
    config = driver.config
    by_id = {run["id"]: run for run in runs}
    one_active_run(runs)
    no_run_after_a_persons_stop(driver, runs, injected)
    for run in runs:
        nothing_after_the_target(config, run)
        no_stage_started_twice(run, injected)
        check_only_runs_only_checks(config, run)
    for attempt in driver.tries:
        success_is_confirmed(config, attempt, by_id)
        failure_names_its_cause(config, attempt, by_id, injected)
        no_run_left_open_by_a_give_up(config, attempt, by_id)
        messages_match_the_records(attempt, by_id)
        no_secret(attempt.xcom, attempt.error)
    no_secret(logs, None)


def one_active_run(runs: list[dict[str, Any]]) -> None:
    active = [run["id"] for run in runs if run["status"] in ACTIVE]
    assert len(active) <= 1, f"at most one non-terminal run per task instance: {active} are all active"


def no_run_after_a_persons_stop(driver: TaskDriver, runs: list[dict[str, Any]], injected: Injected) -> None:
    """With a task state store, a person's stop ends the attempt's deployments until a clear."""
    before = injected.person_stopped.get(driver.attempt)
    if before is not None:
        assert len(runs) == before, (
            f"a person stopped this task's run in attempt {driver.attempt}; the task created "
            f"{len(runs) - before} run(s) after that without a clear"
        )


def nothing_after_the_target(config: Config, run: dict[str, Any]) -> None:
    """No stage past the last one the task (or DataWorks, in Auto mode) may start was asked to start.

    The run's first stage is DataWorks' own: it starts with the run, whatever its type.
    """
    last = max(config.last_allowed_step, 0)
    late = [s["code"] for s in run["stages"][last + 1 :] if s["start_requests"] > 0]
    assert not late, f"run {run['id']}: stage(s) {late} were asked to start, past {config.stages[last][0]}"


def no_stage_started_twice(run: dict[str, Any], injected: Injected) -> None:
    """No stage is asked to start twice unless an answer to an execution was lost or refused.

    The emulator accepts one start per stage (it refuses a stage that left ``Init``), so accepted
    executions per stage are at most one by construction; what the provider controls is whether it
    asks again, which it may only do when it could not know the first execution's outcome.
    """
    if injected.fault_on("ExecPipelineRunStage"):
        return
    twice = [s["code"] for s in run["stages"] if s["start_requests"] > 1]
    assert not twice, f"run {run['id']}: stage(s) {twice} were asked to start more than once"


def check_only_runs_only_checks(config: Config, run: dict[str, Any]) -> None:
    """A check-only run starts no stage but Build/Check ones (the first stage starts with the run)."""
    if not config.check_only:
        return
    other = [s["code"] for s in run["stages"][1:] if s["start_requests"] > 0 and s["type"] not in ("Build", "Check")]
    assert not other, f"check-only run {run['id']} asked to start {other}, which are not Build/Check stages"


def success_is_confirmed(config: Config, attempt: Try, by_id: dict[str, dict[str, Any]]) -> None:
    if attempt.outcome != "success":
        return
    run = by_id.get(attempt.result)
    assert run is not None, f"try {attempt.number} succeeded with {attempt.result!r}, which is no run of the object"
    assert attempt.xcom.get("pipeline_run_id") == run["id"], (
        f"try {attempt.number}: XCom pipeline_run_id {attempt.xcom.get('pipeline_run_id')!r} is not {run['id']}"
    )
    if run["status"] == "Success":
        return
    target = config.step_of(config.target)
    assert target is not None
    through = run["stages"][: target + 1]
    not_done = [s["code"] for s in through if s["status"] != "Success"]
    assert not not_done, (
        f"try {attempt.number} succeeded, but run {run['id']} reads {run['status']} with "
        f"{not_done} not Success (target {config.target})"
    )


def _cause_allowed(config: Config, attempt: Try, error: BaseException, injected: Injected) -> bool:
    text = str(error)
    if isinstance(error, PipelineRunStoppedError):
        return _STOPPED_OUTSIDE in text
    if isinstance(error, PipelineRunTimeoutError):
        # a short timeout is drawn to pass; the long one passes only when the machine starved the try
        # (the emulator's clock is virtual, the provider's deadline real): then the try took that long
        passed = attempt.failed_after is not None and attempt.failed_after >= config.timeout
        return config.timeout < 5 or config.execution_timeout is not None or passed
    if isinstance(error, PipelineRunFailedError):
        return config.fail_at is not None and config.fail_at in text
    if isinstance(error, PipelineRunGaveUpError):
        if "did not start stage" in text:
            return injected.fault_on("ExecPipelineRunStage")
        if "no Build or Check stage" in text:
            return config.check_only
        if "refused" in text and "RAM" in text:
            return injected.fault_on(None, ("http_error",), 403) and "Forbidden" in text
        return injected.faults != []
    if isinstance(error, PipelineRunAmbiguousCreateError):
        return injected.fault_on("CreatePipelineRun")
    if isinstance(error, DataWorksAuthError):
        return injected.fault_on(getattr(error, "action", None), ("http_error",), 403)
    if isinstance(error, DataWorksApiError | DataWorksTransportError):
        # the error names its action: a fault on that action (or on every action) was injected
        return injected.fault_on(getattr(error, "action", None))
    return isinstance(error, DataWorksError) and injected.faults != []


def failure_names_its_cause(config: Config, attempt: Try, by_id: dict[str, Any], injected: Injected) -> None:
    if attempt.outcome != "failed":
        return
    error = attempt.error
    assert error is not None
    assert isinstance(error, DataWorksError), f"try {attempt.number} crashed: {type(error).__name__}: {error}"
    assert _cause_allowed(config, attempt, error, injected), (
        f"try {attempt.number} failed with {type(error).__name__}: {error} -- no such cause was injected "
        f"(faults {injected.faults}, config {config})"
    )
    if isinstance(error, PipelineRunStoppedError):
        run = by_id.get(error.run.id) if error.run is not None else None
        assert run is not None and run["abolished_by"] == "console", (
            f"try {attempt.number} says run {error.run.id if error.run else '?'} was stopped outside this task, "
            f"but the emulator says it was abolished by {run['abolished_by'] if run else 'nobody'!r}"
        )


def no_run_left_open_by_a_give_up(config: Config, attempt: Try, by_id: dict[str, Any]) -> None:
    if not (attempt.outcome == "failed" and isinstance(attempt.error, PipelineRunGaveUpError)):
        return
    if not config.cancel_on_timeout:
        return
    run = by_id.get(attempt.xcom.get("pipeline_run_id") or "")
    if run is None or run["status"] not in ACTIVE:
        return
    text = str(attempt.error)
    assert "refused" in text or "could not be read back" in text, (
        f"try {attempt.number} gave up and left run {run['id']} {run['status']} without saying an abolish "
        f"was refused: {text}"
    )


def messages_match_the_records(attempt: Try, by_id: dict[str, Any]) -> None:
    if attempt.error is None:
        return
    text = str(attempt.error)
    for run_id in _ABOLISHED.findall(text):
        run = by_id.get(run_id.rstrip("."))
        assert run is not None and run["status"] in STOPPED, (
            f"try {attempt.number} says run {run_id} was abolished; it reads {run['status'] if run else 'absent'}"
        )


def no_secret(values: Any, error: BaseException | None) -> None:
    text = json.dumps(values, default=str) + ("" if error is None else repr(error) + str(error))
    assert DEFAULT_ACCESS_KEY_SECRET not in text, "the AccessKey secret appears in a message, log or XCom"


def person_stops(driver: TaskDriver, fired: list[Fired], injected: Injected) -> None:
    """Record the attempts in which a person stopped the run the task state store named at that moment."""
    if not driver.config.with_store:
        return
    for event in fired:
        if event.kind == "console_abolish" and event.stored:
            injected.person_stopped.setdefault(driver.attempt, event.runs_then)
