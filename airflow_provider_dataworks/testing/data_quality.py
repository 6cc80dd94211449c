"""DataWorks Data Quality in the emulator: evaluation tasks, their instances and per-rule results.

Actions (2024-05-18, shapes as ``alibabacloud_dataworks_public20240518.models`` read them):
``CreateDataQualityEvaluationTaskInstance`` (POST form: ``DataQualityEvaluationTaskId``,
``ProjectId``, ``Parameters`` JSON with the required ``triggerTime`` ms, optional
``RuntimeResource`` JSON) → ``{"Id": long}``; ``GetDataQualityEvaluationTaskInstance`` (``Id``)
→ ``{"DataQualityEvaluationTaskInstance": {...}}``; ``ListDataQualityEvaluationTaskInstances``
(``ProjectId``, ``DataQualityEvaluationTaskId``, ``CreateTimeFrom``/``CreateTimeTo``, paging).

An instance is ``Running`` for the task's ``seconds`` (default: the emulator's stage time), then
takes the status of its worst rule (Passed < Warned < Error < Critical). Rules are seeded with the
outcome they produce and the value they "measure"::

    {"data_quality_tasks": [{"id": 70001, "project_id": 10000, "name": "sales_checks", "seconds": 0.5,
      "rules": [{"id": 1, "name": "row_count", "outcome": "Warned", "checked_value": "12",
                 "critical": {"operator": "<", "value": "1"}, "warned": {"operator": "<", "value": "100"},
                 "expected": {"operator": ">=", "value": "100"}, "severity": "High"}]}]}

Like every action, these take the injected faults of :mod:`.faults` (``commit_then_drop`` on the
create starts an instance whose ID the client never receives).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors

if TYPE_CHECKING:
    from .actions import Call

RUNNING = "Running"
PASSED = "Passed"
WARNED = "Warned"
CRITICAL = "Critical"
ERROR = "Error"
OUTCOMES = (PASSED, WARNED, ERROR, CRITICAL)  # worst last
FIRST_INSTANCE_ID = 5_000_000


@dataclass(frozen=True)
class RuleSeed:
    """A Data Quality rule and the result it produces."""

    id: int
    name: str
    outcome: str = PASSED
    checked_value: str = "0"
    referenced_value: str | None = None
    severity: str = "Normal"
    template_code: str = "system:table:count:fixed"
    critical: Mapping[str, str] | None = None
    warned: Mapping[str, str] | None = None
    expected: Mapping[str, str] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuleSeed:
        outcome = str(data.get("outcome", PASSED))
        if outcome not in OUTCOMES:
            raise ValueError(f"rule outcome must be one of {OUTCOMES}, not {outcome!r}")
        return cls(
            id=int(data["id"]),
            name=str(data.get("name") or f"rule_{data['id']}"),
            outcome=outcome,
            checked_value=str(data.get("checked_value", "0")),
            referenced_value=None if data.get("referenced_value") is None else str(data["referenced_value"]),
            severity=str(data.get("severity", "Normal")),
            template_code=str(data.get("template_code", "system:table:count:fixed")),
            critical=data.get("critical"),
            warned=data.get("warned"),
            expected=data.get("expected"),
        )


@dataclass(frozen=True)
class TaskSeed:
    """A Data Quality evaluation task of a workspace."""

    id: int
    project_id: int
    name: str
    rules: tuple[RuleSeed, ...]
    seconds: float | None = None
    table_guid: str = "odps.demo_project.dataworks_example_sales"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskSeed:
        return cls(
            id=int(data["id"]),
            project_id=int(data["project_id"]),
            name=str(data.get("name") or f"task_{data['id']}"),
            rules=tuple(RuleSeed.from_json(r) for r in data.get("rules", ())),
            seconds=None if data.get("seconds") is None else float(data["seconds"]),
            table_guid=str(data.get("table_guid") or "odps.demo_project.dataworks_example_sales"),
        )


@dataclass
class Instance:
    """One evaluation task instance."""

    id: int
    task: TaskSeed
    parameters: str
    runtime_resource: str | None
    create_time: float
    finish_time: float

    def status(self, now: float) -> str:
        if now < self.finish_time:
            return RUNNING
        worst = max((OUTCOMES.index(rule.outcome) for rule in self.task.rules), default=0)
        return OUTCOMES[worst]


@dataclass
class DataQualityState:
    """The Data Quality tasks of an emulator (from its seed) and the instances started since."""

    clock: Callable[[], float]
    default_seconds: Callable[[], float]
    tasks: dict[int, TaskSeed] = field(default_factory=dict)
    instances: dict[int, Instance] = field(default_factory=dict)
    _next_id: int = FIRST_INSTANCE_ID

    @classmethod
    def from_seed(
        cls, seed: Mapping[str, Any], clock: Callable[[], float], default_seconds: Callable[[], float]
    ) -> DataQualityState:
        state = cls(clock=clock, default_seconds=default_seconds)
        for task in seed.get("data_quality_tasks", ()):
            state.add_task(TaskSeed.from_json(task))
        return state

    def add_task(self, task: TaskSeed) -> None:
        self.tasks[task.id] = task

    def start(self, task: TaskSeed, parameters: str, runtime_resource: str | None) -> Instance:
        now = self.clock()
        seconds = task.seconds if task.seconds is not None else self.default_seconds()
        self._next_id += 1
        instance = Instance(self._next_id, task, parameters, runtime_resource, now, now + seconds)
        self.instances[instance.id] = instance
        return instance


def to_ms(seconds: float) -> int:
    return int(seconds * 1000)


# --- views --------------------------------------------------------------------------------------


def _threshold(spec: Mapping[str, str] | None) -> dict[str, str] | None:
    if not spec:
        return None
    operator, value = str(spec.get("operator", "")), str(spec.get("value", ""))
    return {"Operator": operator, "Value": value, "Expression": f"$checkValue {operator} {value}"}


def _result_view(instance: Instance, rule: RuleSeed, index: int) -> dict[str, Any]:
    thresholds = {
        key: view
        for key, view in (
            ("Critical", _threshold(rule.critical)),
            ("Warned", _threshold(rule.warned)),
            ("Expected", _threshold(rule.expected)),
        )
        if view is not None
    }
    detail: dict[str, Any] = {"CheckedValue": rule.checked_value, "Status": rule.outcome}
    if rule.referenced_value is not None:
        detail["ReferencedValue"] = rule.referenced_value
    return {
        "Id": instance.id * 100 + index,
        "TaskInstanceId": instance.id,
        "CreateTime": to_ms(instance.finish_time),
        "Status": rule.outcome,
        "Sample": json.dumps([{"value": rule.checked_value}], separators=(",", ":")),
        "Details": [detail],
        "Rule": {
            "Id": rule.id,
            "Name": rule.name,
            "ProjectId": instance.task.project_id,
            "Severity": rule.severity,
            "TemplateCode": rule.template_code,
            "Enabled": True,
            "Description": f"Emulated rule {rule.name}",
            "CheckingConfig": {"Type": "Fixed", "Thresholds": thresholds},
            "Target": {"Type": "Table", "DatabaseType": "maxcompute", "TableGuid": instance.task.table_guid},
        },
    }


def instance_view(instance: Instance, now: float, *, with_results: bool = True) -> dict[str, Any]:
    """Return ``DataQualityEvaluationTaskInstance`` (or a ``List…`` entry without ``Results``)."""
    status = instance.status(now)
    task = instance.task
    view: dict[str, Any] = {
        "Id": instance.id,
        "ProjectId": task.project_id,
        "CreateTime": to_ms(instance.create_time),
        "Parameters": instance.parameters,
        "Status": status,
        "TriggerContext": json.dumps({"TriggerClient": "OpenAPI"}, separators=(",", ":")),
        "Task": {
            "Id": task.id,
            "Name": task.name,
            "ProjectId": task.project_id,
            "Description": f"Emulated Data Quality task {task.name}",
            "Target": {"Type": "Table", "DatabaseType": "maxcompute", "TableGuid": task.table_guid},
            "Trigger": {"Type": "ByManual"},
        },
    }
    if status != RUNNING:
        view["FinishTime"] = to_ms(instance.finish_time)
    if with_results:
        view["Results"] = (
            [] if status == RUNNING else [_result_view(instance, rule, i) for i, rule in enumerate(task.rules, 1)]
        )
    return view


# --- handlers -----------------------------------------------------------------------------------


def _store(call: Call) -> DataQualityState:
    store: DataQualityState = call.state.data_quality
    return store


def _task(call: Call, project_id: int) -> TaskSeed:
    task_id = call.integer("DataQualityEvaluationTaskId")
    if task_id is None:
        raise errors.missing_parameter("DataQualityEvaluationTaskId")
    task = _store(call).tasks.get(task_id)
    if task is None or task.project_id != project_id:
        raise errors.ApiError(
            404,
            "InvalidDataQualityEvaluationTask.NotFound",
            f"The data quality evaluation task {task_id} does not exist in workspace {project_id}.",
        )
    return task


def create_data_quality_evaluation_task_instance(call: Call) -> dict[str, Any]:
    """``CreateDataQualityEvaluationTaskInstance``: start one evaluation of a task."""
    project = call.project()
    task = _task(call, project.id)
    raw = call.require("Parameters")
    try:
        parameters = json.loads(raw)
    except ValueError:
        raise errors.invalid_parameter("Parameters", raw, "It must be a JSON object.") from None
    trigger_time = parameters.get("triggerTime") if isinstance(parameters, dict) else None
    if isinstance(trigger_time, bool) or not isinstance(trigger_time, int):
        raise errors.invalid_parameter("Parameters", raw, "triggerTime (epoch milliseconds) is required.")
    runtime = call.get("RuntimeResource")
    if runtime is not None:
        try:
            json.loads(runtime)
        except ValueError:
            raise errors.invalid_parameter("RuntimeResource", runtime, "It must be a JSON object.") from None
    instance = _store(call).start(task, raw, runtime)
    return {"Id": instance.id}


def get_data_quality_evaluation_task_instance(call: Call) -> dict[str, Any]:
    """``GetDataQualityEvaluationTaskInstance``: an instance with its per-rule results."""
    instance_id = call.integer("Id")
    if instance_id is None:
        raise errors.missing_parameter("Id")
    instance = _store(call).instances.get(instance_id)
    if instance is None or not call.credential.may_access(instance.task.project_id):
        raise errors.ApiError(
            404,
            "InvalidDataQualityEvaluationTaskInstance.NotFound",
            f"The data quality evaluation task instance {instance_id} does not exist.",
        )
    return {"DataQualityEvaluationTaskInstance": instance_view(instance, call.state.clock())}


def list_data_quality_evaluation_task_instances(call: Call) -> dict[str, Any]:
    """``ListDataQualityEvaluationTaskInstances``: a workspace's instances, newest first, filtered and paged."""
    project = call.project()
    number, size = call.paging()
    task_id = call.integer("DataQualityEvaluationTaskId")
    since, until = call.integer("CreateTimeFrom"), call.integer("CreateTimeTo")
    now = call.state.clock()
    matched = [
        instance
        for instance in sorted(_store(call).instances.values(), key=lambda i: i.id, reverse=True)
        if instance.task.project_id == project.id
        and (task_id is None or instance.task.id == task_id)
        and (since is None or to_ms(instance.create_time) >= since)
        and (until is None or to_ms(instance.create_time) <= until)
    ]
    page = matched[(number - 1) * size : number * size]
    return {
        "PagingInfo": {
            "PageNumber": number,
            "PageSize": size,
            "TotalCount": len(matched),
            "DataQualityEvaluationTaskInstances": [instance_view(i, now, with_results=False) for i in page],
        }
    }


ACTIONS = {
    "CreateDataQualityEvaluationTaskInstance": create_data_quality_evaluation_task_instance,
    "GetDataQualityEvaluationTaskInstance": get_data_quality_evaluation_task_instance,
    "ListDataQualityEvaluationTaskInstances": list_data_quality_evaluation_task_instances,
}


def instance_record(instance: Instance, now: float) -> dict[str, Any]:
    """The control-API view of an instance (snake_case)."""
    return {
        "id": instance.id,
        "task_id": instance.task.id,
        "project_id": instance.task.project_id,
        "parameters": json.loads(instance.parameters),
        "runtime_resource": None if instance.runtime_resource is None else json.loads(instance.runtime_resource),
        "status": instance.status(now),
        "create_time": to_ms(instance.create_time),
    }
