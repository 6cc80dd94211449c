"""The pipeline-run state machine: status vocabulary, typed records and the outcome rules.

This module is the single owner of "what does this status mean". The hook parses API
responses into :class:`PipelineRun` records here; the operator, the sensor, the trigger and
the hook's poll loop only ask the record (``is_terminal``, ``is_success``,
``next_stage_to_execute`` …) and never compare status strings themselves.

DataWorks may add statuses in the future. An unknown status is kept verbatim as a string,
logged once, and treated as *not finished*: waiting longer is safe, declaring success or
failure on a value we do not understand is not.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from operator import attrgetter
from typing import Any, TypeVar

log = logging.getLogger(__name__)


class PipelineRunStatus(StrEnum):
    """Status of a pipeline run and of each of its stages, spelled exactly as DataWorks does."""

    INIT = "Init"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAIL = "Fail"
    TERMINATION = "Termination"
    CANCEL = "Cancel"


class RunType(StrEnum):
    """What a pipeline run does to its object."""

    ONLINE = "Online"
    OFFLINE = "Offline"


class RunMode(StrEnum):
    """Who advances the stages: the caller (``Normal``) or DataWorks (``Auto``)."""

    NORMAL = "Normal"
    AUTO = "Auto"


#: stage types that change what is deployed (reports name them; nothing is decided on this list)
DEPLOY_STAGE_TYPES: frozenset[str] = frozenset({"Deploy", "Offline"})
#: the only stage types a check-only run executes: an allow-list, so a type DataWorks adds later
#: (or ``Delete``, which the SDK documents) ends a check-only run instead of being executed
CHECK_STAGE_TYPES: frozenset[str] = frozenset({"Build", "Check"})

TERMINAL_STATUSES: frozenset[PipelineRunStatus] = frozenset(
    {
        PipelineRunStatus.SUCCESS,
        PipelineRunStatus.FAIL,
        PipelineRunStatus.TERMINATION,
        PipelineRunStatus.CANCEL,
    }
)
FAILED_STATUSES: frozenset[PipelineRunStatus] = TERMINAL_STATUSES - {PipelineRunStatus.SUCCESS}
#: how a run ends when someone abolishes it (the API page: ``Termination``; a practitioner's guide: ``Cancel``)
STOPPED_STATUSES: frozenset[PipelineRunStatus] = frozenset({PipelineRunStatus.TERMINATION, PipelineRunStatus.CANCEL})

_warned_unknown: set[tuple[str, str]] = set()

E = TypeVar("E", bound=StrEnum)


def _parse_known(vocabulary: type[E], raw: str | None, what: str) -> E | None:
    """Return the member of ``vocabulary`` spelled ``raw``; log a new value once and return ``None``."""
    if raw is None:
        return None
    try:
        return vocabulary(raw)
    except ValueError:
        if (what, raw) not in _warned_unknown:
            _warned_unknown.add((what, raw))
            log.warning("DataWorks returned the unknown %s status %r; treating it as not finished.", what, raw)
        return None


def parse_status(raw: str | None) -> PipelineRunStatus | None:
    """Return the known status for ``raw``, or ``None`` when DataWorks sent something new."""
    return _parse_known(PipelineRunStatus, raw, "pipeline-run")


def _as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class _RunStatusRules:
    """The outcome rules a pipeline run and each of its stages share: both speak :class:`PipelineRunStatus`."""

    status: str
    #: ``status`` parsed once, by each record's ``__post_init__``
    _state: PipelineRunStatus | None

    @property
    def state(self) -> PipelineRunStatus | None:
        """The status as a known value, or ``None`` when it is new to this provider."""
        return self._state

    @property
    def is_success(self) -> bool:
        """Whether it succeeded: only ``Success`` counts."""
        return self.state is PipelineRunStatus.SUCCESS

    @property
    def is_failed(self) -> bool:
        """Whether it finished without success (``Fail``, ``Termination`` or ``Cancel``)."""
        return self.state in FAILED_STATUSES


@dataclass(frozen=True)
class Stage(_RunStatusRules):
    """One stage of a pipeline run (build, a check, a deployment…)."""

    code: str
    step: int
    type: str
    status: str
    name: str = ""
    message: str = ""
    description: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    #: derived from ``status``, not given
    _state: PipelineRunStatus | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Parsed once: a poll asks every stage of every waited run for its state (10,000 runs
        # an interval in one triggerer). Not a cached_property: that makes each record carry
        # a dict of its own, one more object per record for the garbage collector.
        object.__setattr__(self, "_state", parse_status(self.status))

    @property
    def is_waiting(self) -> bool:
        """Whether the stage has not started (it waits for DataWorks or for ``ExecPipelineRunStage``)."""
        return self.state is PipelineRunStatus.INIT

    @property
    def is_check(self) -> bool:
        """Whether a check-only run may execute the stage: a ``Build`` or ``Check`` stage, nothing else."""
        return self.type in CHECK_STAGE_TYPES

    @property
    def is_deploy(self) -> bool:
        """Whether the stage changes what is deployed (``Deploy`` or ``Offline``), not a build or a check."""
        return self.type in DEPLOY_STAGE_TYPES

    @property
    def start_time_ms(self) -> int | None:
        """When the stage started (epoch ms), if DataWorks said so in ``Detail``."""
        return _as_int(self.detail.get("StartTime"))

    @property
    def finish_time_ms(self) -> int | None:
        """When the stage finished (epoch ms), if DataWorks said so in ``Detail``."""
        return _as_int(self.detail.get("FinishTime"))

    def describe(self) -> str:
        """Return a one-line description for logs and error messages."""
        text = f"stage {self.step} {self.code} ({self.type}) {self.status}"
        if self.message:
            text += f": {self.message}"
        return text

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Stage:
        """Build a stage from the PascalCase mapping DataWorks returns."""
        return cls(
            code=str(data.get("Code") or ""),
            step=_as_int(data.get("Step")) or 0,
            type=str(data.get("Type") or ""),
            status=str(data.get("Status") or ""),
            name=str(data.get("Name") or ""),
            message=str(data.get("Message") or ""),
            description=str(data.get("Description") or ""),
            detail=dict(data.get("Detail") or {}),
        )

    def to_api(self) -> dict[str, Any]:
        """Return the PascalCase mapping (JSON primitives) this stage was built from."""
        return {
            "Code": self.code,
            "Step": self.step,
            "Type": self.type,
            "Status": self.status,
            "Name": self.name,
            "Message": self.message,
            "Description": self.description,
            "Detail": dict(self.detail),
        }


@dataclass(frozen=True)
class PipelineRun(_RunStatusRules):
    """A pipeline run (deployment process) as last read from DataWorks.

    ``is_success``: the run deployed (or undeployed) its object.
    """

    id: str
    project_id: int | None
    status: str
    stages: tuple[Stage, ...] = ()
    message: str = ""
    description: str = ""
    creator: str = ""
    create_time_ms: int | None = None
    modify_time_ms: int | None = None
    request_id: str | None = None

    #: derived from ``status`` and ``stages``, not given
    _state: PipelineRunStatus | None = field(default=None, init=False, repr=False, compare=False)
    _ordered: tuple[Stage, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Once, as for Stage (a poll asks for the state and the ordered stages many times).
        object.__setattr__(self, "_state", parse_status(self.status))
        object.__setattr__(self, "_ordered", tuple(sorted(self.stages, key=lambda stage: stage.step)))

    def same_state(self, other: PipelineRun) -> bool:
        """Whether ``other`` says what this record says, the RequestId of the read aside."""
        return _state_of(self) == _state_of(other)

    @property
    def is_terminal(self) -> bool:
        """Whether the run has finished, successfully or not. Unknown statuses are not terminal."""
        return self.state in TERMINAL_STATUSES

    @property
    def ordered_stages(self) -> tuple[Stage, ...]:
        return self._ordered

    @property
    def was_stopped(self) -> bool:
        """Whether the run was abolished (``Termination`` or ``Cancel``), by whoever did it."""
        return self.state in STOPPED_STATUSES

    @property
    def stages_known(self) -> bool:
        """Whether the record carries the run's stages.

        The SDK's models name ``Stages`` in every listing row, but nothing confirms that a real
        listing fills it: an active run read without stages is read again with ``GetPipelineRun``
        before anything is decided on it.
        """
        return bool(self.stages)

    @property
    def failed_stage(self) -> Stage | None:
        """The first stage that failed, if any."""
        return next((stage for stage in self.ordered_stages if stage.is_failed), None)

    @property
    def current_stage(self) -> Stage | None:
        """The first stage that has not succeeded (where the run is, or where it stopped)."""
        return next((stage for stage in self.ordered_stages if not stage.is_success), None)

    @property
    def next_stage_to_execute(self) -> Stage | None:
        """The stage that waits for ``ExecPipelineRunStage``, or ``None``.

        Only while the run is active, only the lowest-step stage that has not succeeded, only
        when it is still ``Init`` and every earlier stage succeeded. A stage that is running,
        failed or in an unknown state is never returned, so a stage is never executed twice.
        """
        if self.is_terminal or self.state is None:
            return None
        stage = self.current_stage
        if stage is None or not stage.is_waiting:
            return None
        return stage

    @property
    def run_type(self) -> str:
        """``Offline`` when the run has an undeploy stage, else ``Online`` (``GetPipelineRun`` has no Type)."""
        if any(stage.type == RunType.OFFLINE.value for stage in self.stages):
            return RunType.OFFLINE.value
        return RunType.ONLINE.value

    @property
    def last_check_stage(self) -> Stage | None:
        """The last of the leading ``Build``/``Check`` stages: where a check-only run stops.

        An allow-list: the first stage of any other type (``Deploy``, ``Offline``, ``Delete``, or a
        type DataWorks adds later) ends the checks. ``None`` when the stages are not known yet, or
        the first stage is not a build or a check.
        """
        before: Stage | None = None
        for stage in self.ordered_stages:
            if not stage.is_check:
                return before
            before = stage
        return before

    def stage(self, code: str) -> Stage | None:
        """Return the stage with this code, if the run has one."""
        return next((stage for stage in self.stages if stage.code == code), None)

    def stages_succeeded_through(self, code: str) -> bool:
        """Whether the stage ``code`` and every stage before it succeeded."""
        target = self.stage(code)
        if target is None:
            return False
        return all(stage.is_success for stage in self.ordered_stages if stage.step <= target.step)

    def describe_failure(self) -> str:
        """Return why the run did not succeed: run id, failing stage and the messages DataWorks gave."""
        stage = self.failed_stage
        where = f" at stage {stage.code} (type {stage.type}, step {stage.step})" if stage is not None else ""
        return f"DataWorks pipeline run {self.id} ended with status {self.status}{where}.{self.messages(stage)}"

    def messages(self, stage: Stage | None) -> str:
        """The messages DataWorks gave (``stage``'s, the run's if it differs) and the last RequestId, as sentences."""
        text = ""
        if stage is not None and stage.message:
            text += f" Stage message: {stage.message}."
        if self.message and (stage is None or self.message != stage.message):
            text += f" Pipeline message: {self.message}."
        if self.request_id:
            text += f" Last RequestId: {self.request_id}."
        return text

    @classmethod
    def from_api(cls, data: Mapping[str, Any], request_id: str | None = None) -> PipelineRun:
        """Build a run from the PascalCase ``Pipeline`` mapping of ``GetPipelineRun``/``ListPipelineRuns``."""
        return cls(
            id=str(data.get("Id") or ""),
            project_id=_as_int(data.get("ProjectId")),
            status=str(data.get("Status") or ""),
            stages=tuple(Stage.from_api(stage) for stage in data.get("Stages") or ()),
            message=str(data.get("Message") or ""),
            description=str(data.get("Description") or ""),
            creator=str(data.get("Creator") or ""),
            create_time_ms=_as_int(data.get("CreateTime")),
            modify_time_ms=_as_int(data.get("ModifyTime")),
            request_id=request_id,
        )

    def to_api(self) -> dict[str, Any]:
        """Return a PascalCase mapping of JSON primitives; :meth:`from_api` reads it back."""
        return {
            "Id": self.id,
            "ProjectId": self.project_id,
            "Status": self.status,
            "Stages": [stage.to_api() for stage in self.stages],
            "Message": self.message,
            "Description": self.description,
            "Creator": self.creator,
            "CreateTime": self.create_time_ms,
            "ModifyTime": self.modify_time_ms,
        }


#: a run's fields but the RequestId: what two reads of one run are compared on
_state_of = attrgetter(*(f.name for f in fields(PipelineRun) if f.compare and f.name != "request_id"))


class StageTransitionLog:
    """Remembers what was logged so each stage transition shows once in the task log.

    It also notes when each transition was first seen (:attr:`observed`): DataWorks documents no
    stage times (a stage's ``Detail`` has no documented schema), so the deployment report falls back
    to these, marked as observed, accurate to one poll interval.
    """

    def __init__(self, observed: Mapping[str, Any] | None = None, clock: Any = None) -> None:
        self._seen: dict[str, str] = {}
        #: stage code -> [first seen running, first seen finished], epoch ms (``None`` where not seen)
        self.observed: dict[str, list[int | None]] = {
            str(code): [_as_int(times[0]), _as_int(times[1])]
            for code, times in (observed or {}).items()
            if isinstance(times, (list, tuple)) and len(times) == 2
        }
        self._clock = clock or time.time

    def new_transitions(self, run: PipelineRun) -> list[Stage]:
        """Return the stages whose status changed since the last call."""
        changed = []
        for stage in run.ordered_stages:
            key = stage.code or str(stage.step)
            if self._seen.get(key) != stage.status:
                self._seen[key] = stage.status
                changed.append(stage)
                self._observe(key, stage)
        return changed

    def _observe(self, key: str, stage: Stage) -> None:
        times = self.observed.setdefault(key, [None, None])
        now = int(self._clock() * 1000)
        if stage.state is PipelineRunStatus.RUNNING and times[0] is None:
            times[0] = now
        elif stage.state in TERMINAL_STATUSES and times[1] is None:
            times[1] = now

    def log(self, run: PipelineRun, logger: logging.Logger) -> None:
        for stage in self.new_transitions(run):
            logger.info(
                "Pipeline run %s: step %s %s (%s) is %s%s",
                run.id,
                stage.step,
                stage.code,
                stage.type,
                stage.status,
                f": {stage.message}" if stage.message else "",
            )


@dataclass(frozen=True)
class PipelineRunItem:
    """An object (node, workflow, resource, function) fixed in a pipeline run."""

    id: str
    name: str
    type: str
    status: str
    message: str = ""
    version: int | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> PipelineRunItem:
        return cls(
            id=str(data.get("Id") or ""),
            name=str(data.get("Name") or ""),
            type=str(data.get("Type") or ""),
            status=str(data.get("Status") or ""),
            message=str(data.get("Message") or ""),
            version=_as_int(data.get("Version")),
        )


# ======================================================================================
# DataWorks Data Quality (2024-05-18): evaluation task instances.
#
# The same policy as for pipeline runs: the status words exactly as DataWorks spells them,
# an unknown status is logged once and means "not finished", and the outcome rules live
# here, on the record, for the operator, the hook's blocking wait and the trigger alike.
# ======================================================================================


class DataQualityStatus(StrEnum):
    """Status of a Data Quality evaluation task instance and of each rule's result."""

    RUNNING = "Running"
    PASSED = "Passed"
    WARNED = "Warned"
    CRITICAL = "Critical"
    ERROR = "Error"


DATA_QUALITY_TERMINAL_STATUSES: frozenset[DataQualityStatus] = frozenset(
    {DataQualityStatus.PASSED, DataQualityStatus.WARNED, DataQualityStatus.CRITICAL, DataQualityStatus.ERROR}
)


def parse_data_quality_status(raw: str | None) -> DataQualityStatus | None:
    """Return the known Data Quality status for ``raw``, or ``None`` when DataWorks sent something new."""
    return _parse_known(DataQualityStatus, raw, "data-quality")


def _threshold_text(threshold: Mapping[str, Any] | None) -> str:
    """``"> 100"`` from ``{"Operator": ">", "Value": "100"}``, else the expression DataWorks gave."""
    if not threshold:
        return ""
    operator, value = threshold.get("Operator"), threshold.get("Value")
    if operator and value not in (None, ""):
        return f"{operator} {value}"
    return str(threshold.get("Expression") or "")


@dataclass(frozen=True)
class DataQualityRuleResult:
    """The result of one rule in one evaluation, with the threshold it was held to."""

    rule_id: int | None
    rule_name: str
    status: str
    severity: str = ""
    #: the threshold the status refers to: the critical one for ``Critical``, the warning one for ``Warned``
    threshold: str = ""
    expected: str = ""
    checked_value: str | None = None
    referenced_value: str | None = None

    @property
    def state(self) -> DataQualityStatus | None:
        return parse_data_quality_status(self.status)

    @property
    def passed(self) -> bool:
        return self.state is DataQualityStatus.PASSED

    def describe(self) -> str:
        text = f"rule {self.rule_name!r} ({self.rule_id}) {self.status}: actual value {self.checked_value}"
        if self.threshold:
            text += f", {self.status.lower()} threshold {self.threshold}"
        if self.expected:
            text += f", expected {self.expected}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "status": self.status,
            "severity": self.severity,
            "threshold": self.threshold,
            "expected": self.expected,
            "checked_value": self.checked_value,
            "referenced_value": self.referenced_value,
        }

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> DataQualityRuleResult:
        """Build a rule result from one ``Results[]`` entry of ``GetDataQualityEvaluationTaskInstance``."""
        rule = data.get("Rule") or {}
        thresholds = (rule.get("CheckingConfig") or {}).get("Thresholds") or {}
        status = str(data.get("Status") or "")
        crossed = {"Critical": thresholds.get("Critical"), "Warned": thresholds.get("Warned")}.get(status)
        details = data.get("Details") or []
        # The detail whose status is the result's carries the value that decided it.
        detail = next((d for d in details if d.get("Status") == status), details[0] if details else {})
        checked = detail.get("CheckedValue")
        referenced = detail.get("ReferencedValue")
        return cls(
            rule_id=_as_int(rule.get("Id")),
            rule_name=str(rule.get("Name") or ""),
            status=status,
            severity=str(rule.get("Severity") or ""),
            threshold=_threshold_text(crossed),
            expected=_threshold_text(thresholds.get("Expected")),
            checked_value=None if checked is None else str(checked),
            referenced_value=None if referenced is None else str(referenced),
        )


@dataclass(frozen=True)
class DataQualityEvaluation:
    """A Data Quality evaluation task instance, as last read from DataWorks."""

    id: int
    project_id: int | None
    status: str
    task_id: int | None = None
    task_name: str = ""
    parameters: str = ""
    create_time_ms: int | None = None
    finish_time_ms: int | None = None
    results: tuple[DataQualityRuleResult, ...] = ()
    request_id: str | None = None

    @property
    def state(self) -> DataQualityStatus | None:
        return parse_data_quality_status(self.status)

    @property
    def is_terminal(self) -> bool:
        """Whether the evaluation has finished. Unknown statuses are not terminal."""
        return self.state in DATA_QUALITY_TERMINAL_STATUSES

    @property
    def trigger_time_ms(self) -> int | None:
        """The ``triggerTime`` of the instance's ``Parameters`` JSON."""
        try:
            value = json.loads(self.parameters or "{}").get("triggerTime")
        except (ValueError, AttributeError):
            return None
        return _as_int(value)

    def passes(self, fail_on_warn: bool = False) -> bool:
        """Whether the gate opens: ``Passed``, or ``Warned`` unless ``fail_on_warn``."""
        if self.state is DataQualityStatus.PASSED:
            return True
        return self.state is DataQualityStatus.WARNED and not fail_on_warn

    @property
    def rules_not_passed(self) -> list[DataQualityRuleResult]:
        return [result for result in self.results if not result.passed]

    def describe_failure(self) -> str:
        """Why the gate stays shut: the instance's status and every rule that did not pass."""
        text = f"DataWorks Data Quality evaluation {self.id}"
        if self.task_id is not None:
            text += f" of task {self.task_id}" + (f" ({self.task_name})" if self.task_name else "")
        text += f" ended {self.status}."
        rules = self.rules_not_passed
        if rules:
            text += " Rules that did not pass: " + "; ".join(rule.describe() for rule in rules) + "."
        if self.request_id:
            text += f" Last RequestId: {self.request_id}."
        return text

    @classmethod
    def from_api(cls, data: Mapping[str, Any], request_id: str | None = None) -> DataQualityEvaluation:
        """Build from ``DataQualityEvaluationTaskInstance`` (or a ``List…`` entry), PascalCase."""
        task = data.get("Task") or {}
        return cls(
            id=_as_int(data.get("Id")) or 0,
            project_id=_as_int(data.get("ProjectId")),
            status=str(data.get("Status") or ""),
            task_id=_as_int(task.get("Id")),
            task_name=str(task.get("Name") or ""),
            parameters=str(data.get("Parameters") or ""),
            create_time_ms=_as_int(data.get("CreateTime")),
            finish_time_ms=_as_int(data.get("FinishTime")),
            results=tuple(DataQualityRuleResult.from_api(r) for r in data.get("Results") or () if r),
            request_id=request_id,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON primitives (for the trigger event and XCom); :meth:`from_json` reads it back."""
        return {
            "id": self.id,
            "project_id": self.project_id,
            "status": self.status,
            "task_id": self.task_id,
            "task_name": self.task_name,
            "parameters": self.parameters,
            "create_time_ms": self.create_time_ms,
            "finish_time_ms": self.finish_time_ms,
            "results": [result.to_json() for result in self.results],
            "request_id": self.request_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DataQualityEvaluation:
        return cls(
            id=int(data["id"]),
            project_id=_as_int(data.get("project_id")),
            status=str(data.get("status") or ""),
            task_id=_as_int(data.get("task_id")),
            task_name=str(data.get("task_name") or ""),
            parameters=str(data.get("parameters") or ""),
            create_time_ms=_as_int(data.get("create_time_ms")),
            finish_time_ms=_as_int(data.get("finish_time_ms")),
            results=tuple(
                DataQualityRuleResult(**{k: r.get(k) for k in DataQualityRuleResult.__dataclass_fields__})
                for r in data.get("results") or ()
            ),
            request_id=data.get("request_id") or None,
        )
