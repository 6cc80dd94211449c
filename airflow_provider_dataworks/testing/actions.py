"""The DataWorks OpenAPI actions the emulator answers, and the JSON they return.

Each handler takes a :class:`Call` (merged query and form parameters, the caller's credential)
and returns the response body without ``RequestId``, which the server adds. Keys are PascalCase
exactly as the SDK models (``alibabacloud_dataworks_public20240518.models``) read them; times are
epoch milliseconds and IDs strings, except ``ProjectId`` which DataWorks types as a long.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import data_quality, errors
from .auth import Credential
from .shapes import EMPTY, FULL, Shapes
from .stages import (
    AUTO,
    CANCEL,
    NORMAL,
    RUN_MODES,
    RUN_TYPES,
    STANDARD,
    STATUSES,
    TERMINATION,
)
from .state import DwObject, EmulatorState, Project, Run, Stage, to_ms

MAX_PAGE_SIZE = 100


@dataclass
class Call:
    """One authenticated API request, as the handlers see it."""

    action: str
    params: dict[str, str]
    credential: Credential
    request_id: str
    state: EmulatorState
    object_not_found_code: str = errors.OBJECT_NOT_FOUND_CODE
    shapes: Shapes = field(default_factory=Shapes)

    def get(self, name: str) -> str | None:
        """Return parameter ``name``, treating an empty value as absent."""
        return self.params.get(name) or None

    def require(self, name: str) -> str:
        """Return parameter ``name`` or raise ``MissingParameter``."""
        value = self.get(name)
        if value is None:
            raise errors.missing_parameter(name)
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        """Return parameter ``name`` as an integer (``default`` when absent)."""
        value = self.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise errors.invalid_parameter(name, value, "It must be an integer.") from None

    def project(self, name: str = "ProjectId") -> Project:
        """Return the workspace named by parameter ``name`` if the caller may use it."""
        project_id = self.integer(name)
        if project_id is None:
            raise errors.missing_parameter(name)
        if not self.credential.may_access(project_id):
            raise errors.forbidden_project(project_id)
        return self.state.project(project_id)

    def paging(self) -> tuple[int, int]:
        """Return (PageNumber, PageSize), validated like DataWorks does (size at most 100)."""
        number = self.integer("PageNumber")
        size = self.integer("PageSize")
        number = 1 if number is None else number
        size = 10 if size is None else size
        if number < 1:
            raise errors.invalid_parameter("PageNumber", number, "It must be at least 1.")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise errors.invalid_parameter("PageSize", size, f"It must be between 1 and {MAX_PAGE_SIZE}.")
        return number, size


# --- views --------------------------------------------------------------------------------------


def stage_view(stage: Stage) -> dict[str, Any]:
    """Return one ``Stages[]`` entry of ``GetPipelineRun``."""
    detail: dict[str, Any] = {}
    if stage.start is not None:
        detail["StartTime"] = to_ms(stage.start)
    if stage.finish is not None:
        detail["FinishTime"] = to_ms(stage.finish)
    view: dict[str, Any] = {
        "Code": stage.code,
        "Step": stage.step,
        "Type": stage.template.type,
        "Name": stage.template.name,
        "Status": stage.status,
        "Description": stage.template.description,
        "Detail": detail,
    }
    if stage.message:
        view["Message"] = stage.message
    return view


def run_view(run: Run) -> dict[str, Any]:
    """Return the ``Pipeline`` object of ``GetPipelineRun`` (and a ``PipelineRuns[]`` entry)."""
    view: dict[str, Any] = {
        "Id": run.id,
        "ProjectId": run.project_id,
        "CreateTime": to_ms(run.create_time),
        "ModifyTime": to_ms(run.modify_time),
        "Creator": run.creator,
        "Description": run.description,
        "Status": run.status,
        "Stages": [stage_view(s) for s in run.stages],
    }
    if run.message:
        view["Message"] = run.message
    return view


def _item_status(run: Run) -> str:
    # Run items know no Cancel: an abolished run leaves its items terminated.
    return TERMINATION if run.status == CANCEL else run.status


def _flow_spec(obj: DwObject) -> str:
    kind = "CycleWorkflow" if obj.type == "WorkflowDefinition" else obj.type
    key = {"WorkflowDefinition": "workflows", "Resource": "fileResources", "Function": "functions"}
    spec = {
        "version": "1.1.0",
        "kind": kind,
        "spec": {key.get(obj.type, "nodes"): [{"id": obj.id, "name": obj.name}]},
    }
    return json.dumps(spec, separators=(",", ":"), ensure_ascii=False)


def item_view(run: Run, obj: DwObject) -> dict[str, Any]:
    """Return one ``PipelineRunItems[]`` entry."""
    view: dict[str, Any] = {
        "Id": obj.id,
        "Name": obj.name,
        "Type": obj.type,
        "Status": _item_status(run),
        "Version": run.target_version,
        "Spec": _flow_spec(obj),
        "CreateTime": to_ms(obj.create_time),
        "ModifyTime": to_ms(obj.modify_time),
    }
    if run.message:
        view["Message"] = run.message
    return view


def project_view(project: Project, owner: str) -> dict[str, Any]:
    """Return a ``Project`` of ``GetProject`` / ``ListProjects``."""
    return {
        "Id": project.id,
        "Name": project.name,
        "DisplayName": project.display_name or project.name,
        "Description": f"DataWorks emulator workspace ({project.mode} mode)",
        "Status": "Available",
        "Owner": owner,
        "DevEnvironmentEnabled": project.mode == STANDARD,
        "DevRoleDisabled": project.mode != STANDARD,
        "PaiTaskEnabled": False,
        "AliyunResourceGroupId": "rg-emulator",
        "AliyunResourceTags": [],
    }


# --- handlers -----------------------------------------------------------------------------------


def parse_object_ids(raw: str) -> list[str]:
    """Split the JSON-array ``ObjectIds`` string into IDs, keeping each exactly as received."""
    try:
        value = json.loads(raw)
    except ValueError:
        return [raw]
    items = value if isinstance(value, list) else [value]
    return [v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in items]


def create_pipeline_run(call: Call) -> dict[str, Any]:
    """``CreatePipelineRun``: start a deploy (Online) or undeploy (Offline) of one object."""
    call.require("ProjectId")
    run_type = call.require("Type")
    raw_ids = call.require("ObjectIds")
    if run_type not in RUN_TYPES:
        raise errors.invalid_parameter("Type", run_type, f"Allowed values: {', '.join(RUN_TYPES)}.")
    object_ids = parse_object_ids(raw_ids)
    if not object_ids:
        raise errors.invalid_parameter("ObjectIds", raw_ids, "At least one object ID is required.")
    run_mode = call.get("RunMode") or NORMAL
    if run_mode not in RUN_MODES:
        raise errors.invalid_parameter("RunMode", run_mode, f"Allowed values: {', '.join(RUN_MODES)}.")
    # "takes effect only when RunMode=Auto": ignored otherwise, not refused
    until = call.get("AutoRunUntilStage") if run_mode == AUTO else None
    if run_mode == AUTO and until is None:
        # The SDK's model: RunMode Auto "must be used together with the AutoRunUntilStage parameter".
        raise errors.missing_parameter("AutoRunUntilStage", "RunMode Auto must be used together with it.")
    project = call.project()
    # DataWorks deploys only the first object (with its children); a child alone is not deployable.
    obj = project.objects.get(object_ids[0])
    if obj is None:
        raise errors.object_not_found(object_ids, call.object_not_found_code)
    if until is not None:
        codes = [t.code for t in obj.stage_templates(run_type, project.mode)]
        if until not in codes:
            raise errors.invalid_parameter("AutoRunUntilStage", until, f"Stages of this run: {', '.join(codes)}.")
    run = call.state.create_run(
        project=project,
        obj=obj,
        object_ids=object_ids,
        run_type=run_type,
        description=call.shapes.description(call.get("Description") or ""),
        run_mode=run_mode,
        auto_run_until=until,
        creator=call.credential.account_id,
        access_key_id=call.credential.access_key_id,
        request_id=call.request_id,
        action=call.action,
    )
    return {"Id": run.id}


def _run(call: Call, id_param: str = "Id") -> Run:
    project = call.project()
    run_id = call.require(id_param)
    return call.state.get_run(project.id, run_id)


def get_pipeline_run(call: Call) -> dict[str, Any]:
    """``GetPipelineRun``: a run with its stages."""
    return {"Pipeline": run_view(_run(call))}


def _list_row(run: Run, list_stages: str) -> dict[str, Any]:
    view = run_view(run)
    if list_stages != FULL:
        if list_stages == EMPTY:
            view["Stages"] = []
        else:
            del view["Stages"]
    return view


def _list_runs(call: Call, key: str, numbers_as_strings: bool) -> dict[str, Any]:
    project = call.project()
    number, size = call.paging()
    size = call.shapes.page_size(size)
    object_id, status, creator = call.get("ObjectId"), call.get("Status"), call.get("Creator")
    if status is not None and status not in STATUSES:
        raise errors.invalid_parameter("Status", status, f"Allowed values: {', '.join(STATUSES)}.")
    matched: Sequence[Run] = call.state.list_runs(project.id, status)
    if object_id is not None or creator is not None:
        matched = [
            run
            for run in matched
            if (object_id is None or run.object.id == object_id) and (creator is None or run.creator == creator)
        ]
    page = [_list_row(r, call.shapes.list_stages) for r in matched[(number - 1) * size : number * size]]
    paging: dict[str, Any] = {"PageNumber": number, "PageSize": size, "TotalCount": len(matched), key: page}
    if numbers_as_strings:
        for name in ("PageNumber", "PageSize", "TotalCount"):
            paging[name] = str(paging[name])
    return {"PagingInfo": paging}


def list_pipeline_runs(call: Call) -> dict[str, Any]:
    """``ListPipelineRuns``: runs of a workspace, newest first, filtered and paged."""
    return _list_runs(call, "PipelineRuns", numbers_as_strings=False)


def list_deployments(call: Call) -> dict[str, Any]:
    """Legacy ``ListDeployments``: as ``ListPipelineRuns``, typed as the old SDK read it."""
    return _list_runs(call, "Deployments", numbers_as_strings=True)


def list_pipeline_run_items(call: Call) -> dict[str, Any]:
    """``ListPipelineRunItems``: the object a run deploys, followed by its children."""
    run = _run(call, "PipelineRunId")
    number, size = call.paging()
    size = call.shapes.page_size(size)
    items = [item_view(run, obj) for obj in run.object.family()]
    return {
        "PagingInfo": {
            "PageNumber": number,
            "PageSize": size,
            "TotalCount": len(items),
            "PipelineRunItems": items[(number - 1) * size : number * size],
        }
    }


def exec_pipeline_run_stage(call: Call) -> dict[str, Any]:
    """``ExecPipelineRunStage``: start the next stage of a run (asynchronously)."""
    run = _run(call)
    call.state.exec_stage(run, call.require("Code"))
    return {"Success": True}


def abolish_pipeline_run(call: Call) -> dict[str, Any]:
    """``AbolishPipelineRun``: terminate an active run (it reports ``Termination``)."""
    run = _run(call)
    call.state.abolish(run, by="api")
    return {"Success": True}


def create_deployment(call: Call) -> dict[str, Any]:
    """Legacy ``CreateDeployment``: as ``CreatePipelineRun``; the old SDK read the ID from ``Data``."""
    body = create_pipeline_run(call)
    return {"Id": body["Id"], "Data": body["Id"]}


def get_project(call: Call) -> dict[str, Any]:
    """``GetProject``: one workspace (the hook's connection test)."""
    return {"Project": project_view(call.project("Id"), call.credential.account_id)}


def list_projects(call: Call) -> dict[str, Any]:
    """``ListProjects``: the workspaces the caller may use."""
    number, size = call.paging()
    ids = {str(i) for i in parse_object_ids(call.params["Ids"])} if call.get("Ids") else None
    names = set(parse_object_ids(call.params["Names"])) if call.get("Names") else None
    status = call.get("Status")
    projects = [
        p
        for p_id, p in sorted(call.state.projects.items())
        if call.credential.may_access(p_id)
        and (ids is None or str(p_id) in ids)
        and (names is None or p.name in names)
        and status in (None, "Available")
    ]
    views = [project_view(p, call.credential.account_id) for p in projects]
    return {
        "PagingInfo": {
            "PageNumber": number,
            "PageSize": size,
            "TotalCount": len(views),
            "Projects": views[(number - 1) * size : number * size],
        }
    }


Handler = Callable[[Call], dict[str, Any]]

#: Every action name the emulator answers, including the pre-7.0.0 SDK names.
ACTIONS: dict[str, Handler] = {
    "CreatePipelineRun": create_pipeline_run,
    "GetPipelineRun": get_pipeline_run,
    "ListPipelineRuns": list_pipeline_runs,
    "ListPipelineRunItems": list_pipeline_run_items,
    "ExecPipelineRunStage": exec_pipeline_run_stage,
    "AbolishPipelineRun": abolish_pipeline_run,
    "CreateDeployment": create_deployment,
    "GetDeployment": get_pipeline_run,
    "ListDeployments": list_deployments,
    "ExecDeploymentStage": exec_pipeline_run_stage,
    "AbolishDeployment": abolish_pipeline_run,
    "GetProject": get_project,
    "ListProjects": list_projects,
}
ACTIONS.update(data_quality.ACTIONS)
