"""The emulator's answers, and the provider's own parser, agree with the installed SDK's models.

Real response bodies are taken over HTTP (the SDK client's own requests, its ``call_api`` result
recorded before the SDK maps it into models, which would drop unknown keys) in as many states as
the emulator produces: running, held, failed, abolished, finished runs; the list shapes; Data
Quality instances running and finished. Each body is checked key by key and type by type against
the SDK model of its action (:mod:`.sdk_models`). Error bodies are checked against the POP error
body (``dataworks-api.md`` §3.1). Then the keys ``status.py`` reads (:mod:`.parser_keys`) are
looked up in the models its records are built from.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models
from alibabacloud_dataworks_public20240518.client import Client
from Tea.exceptions import TeaException

from airflow_provider_dataworks import status
from airflow_provider_dataworks.testing import PROXY_ENV_VARS, DataWorksEmulator

from .helpers import (
    APPROVAL_NODE,
    BASIC_PROJECT,
    BROKEN_NODE,
    DEPLOYED_NODE,
    NODE,
    STANDARD_PROJECT,
    STD_WORKFLOW,
    WORKFLOW,
    make_client,
)
from .parser_keys import parser_reads
from .sdk_models import conform, locate, model_keys

#: Every action the provider calls.
PROVIDER_ACTIONS = (
    "CreatePipelineRun",
    "GetPipelineRun",
    "ListPipelineRuns",
    "ListPipelineRunItems",
    "ExecPipelineRunStage",
    "AbolishPipelineRun",
    "GetProject",
    "ListProjects",
    "CreateDataQualityEvaluationTaskInstance",
    "GetDataQualityEvaluationTaskInstance",
    "ListDataQualityEvaluationTaskInstances",
)

#: The POP error body (dataworks-api.md §3.1): key -> JSON type; AccessDeniedDetail is optional.
ERROR_BODY = {"RequestId": str, "HostId": str, "Code": str, "Message": str, "Recommend": str}
ERROR_BODY_OPTIONAL = {"AccessDeniedDetail": dict}

#: The SDK models the records of ``status.py`` are parsed from: the first is the one every key the
#: parser reads must be in; a record also parsed from list rows names the row model after it.
PARSER_MODELS: dict[str, tuple[type[Any], ...]] = {
    "PipelineRun": (
        models.GetPipelineRunResponseBodyPipeline,
        models.ListPipelineRunsResponseBodyPagingInfoPipelineRuns,
    ),
    "Stage": (
        models.GetPipelineRunResponseBodyPipelineStages,
        models.ListPipelineRunsResponseBodyPagingInfoPipelineRunsStages,
    ),
    "PipelineRunItem": (models.ListPipelineRunItemsResponseBodyPagingInfoPipelineRunItems,),
    "DataQualityEvaluation": (
        models.GetDataQualityEvaluationTaskInstanceResponseBodyDataQualityEvaluationTaskInstance,
        models.ListDataQualityEvaluationTaskInstancesResponseBodyPagingInfoDataQualityEvaluationTaskInstances,
    ),
    "DataQualityRuleResult": (
        models.GetDataQualityEvaluationTaskInstanceResponseBodyDataQualityEvaluationTaskInstanceResults,
    ),
}

#: Keys the parser reads inside a dict the SDK leaves free-form: allowed only as optional extras
#: (nothing guarantees DataWorks sends them). Add one here only when the parser copes without it.
FREE_FORM_READS = {
    ("Stage", "Detail.StartTime"),
    ("Stage", "Detail.FinishTime"),
}

#: Keys of the first model that a later one (a list row) lacks: parsed from such a row, the record
#: simply has no value for them. Listed so that a new one is seen, not silently absent.
ABSENT_FROM_LIST_ROWS = {
    ("DataQualityEvaluation", "ListDataQualityEvaluationTaskInstances", "Results"),
}


class Recorder:
    """An SDK client whose every answer body (success or error) is kept, per action."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.bodies: dict[str, list[dict[str, Any]]] = {}
        self.errors: list[tuple[str, int, dict[str, Any]]] = []
        call_api = client.call_api

        def recording(params: Any, request: Any, runtime: Any) -> Any:
            result = call_api(params, request, runtime)
            self.bodies.setdefault(params.action, []).append(result["body"])
            return result

        client.call_api = recording  # type: ignore[method-assign]

    def __call__(self, method: str, request: Any) -> Any:
        return getattr(self.client, method)(request)

    def fails(self, method: str, request: Any) -> None:
        """Call ``method`` expecting an error answer; keep its body."""
        with pytest.raises(TeaException) as info:
            self(method, request)
        body = dict(info.value.data)
        # The SDK adds the HTTP status to the body it read; it is not part of the answer.
        assert body.pop("statusCode", info.value.status_code) == info.value.status_code
        self.errors.append((method, info.value.status_code, body))


def create(sdk: Recorder, object_id: str, project_id: int = BASIC_PROJECT, **fields: Any) -> str:
    request = models.CreatePipelineRunRequest(project_id=project_id, object_ids=[object_id], **fields)
    return str(sdk("create_pipeline_run", request).body.id)


def exec_stage(sdk: Recorder, run_id: str, code: str, project_id: int = BASIC_PROJECT) -> None:
    sdk("exec_pipeline_run_stage", models.ExecPipelineRunStageRequest(project_id=project_id, id=run_id, code=code))


def drive(emu: DataWorksEmulator, sdk: Recorder) -> None:
    """Bring runs and Data Quality instances into every state the emulator answers with."""
    get: Callable[[str, int], Any] = lambda run_id, project_id=BASIC_PROJECT: sdk(  # noqa: E731
        "get_pipeline_run", models.GetPipelineRunRequest(project_id=project_id, id=run_id)
    )
    emu.add_object(
        BASIC_PROJECT,
        "9100",
        name="with_cleanup",
        stages=[
            {"code": "BUILD_PACKAGE", "type": "Build"},
            {"code": "PROD_CHECK", "type": "Check"},
            {"code": "CLEANUP", "type": "Delete"},
            {"code": "PROD", "type": "Deploy"},
        ],
    )
    succeeded = create(sdk, NODE, type="Online", description="conformance")
    for code in ("PROD_CHECK", "PROD"):
        exec_stage(sdk, succeeded, code)
    get(succeeded)
    failed = create(sdk, BROKEN_NODE, type="Online")
    exec_stage(sdk, failed, "PROD_CHECK")
    get(failed)  # run and stage Message
    held = create(sdk, APPROVAL_NODE, type="Online")
    exec_stage(sdk, held, "PROD_CHECK")
    get(held)
    custom = create(sdk, "9100", type="Online", run_mode="Auto", auto_run_until_stage="CLEANUP")
    get(custom)
    undeploy = create(sdk, DEPLOYED_NODE, type="Offline")
    get(undeploy)
    standard = create(sdk, STD_WORKFLOW, STANDARD_PROJECT, type="Online", run_mode="Auto", auto_run_until_stage="DEV")
    get(standard, STANDARD_PROJECT)
    emu.set_stage_seconds(60)
    running = create(sdk, WORKFLOW, type="Online")
    get(running)  # a running stage: Detail without FinishTime
    sdk("abolish_pipeline_run", models.AbolishPipelineRunRequest(project_id=BASIC_PROJECT, id=running))
    get(running)
    emu.set_stage_seconds(0)
    emu.inject_fault("ExecPipelineRunStage", kind="not_started")
    exec_stage(sdk, create(sdk, NODE, type="Online"), "PROD_CHECK")  # {"Success": false}

    for shape in ("full", "missing", "empty"):
        emu.set_list_stages(shape)
        sdk("list_pipeline_runs", models.ListPipelineRunsRequest(project_id=BASIC_PROJECT, page_size=100))
    emu.set_list_stages("full")
    sdk("list_pipeline_runs", models.ListPipelineRunsRequest(project_id=BASIC_PROJECT, status="Fail"))
    for run_id in (running, failed, succeeded):
        sdk(
            "list_pipeline_run_items",
            models.ListPipelineRunItemsRequest(project_id=BASIC_PROJECT, pipeline_run_id=run_id),
        )

    sdk("get_project", models.GetProjectRequest(id=BASIC_PROJECT))
    sdk("list_projects", models.ListProjectsRequest(page_size=100))

    emu.add_data_quality_task(BASIC_PROJECT, 79001, rules=[{"id": 1, "name": "slow"}], seconds=600)
    for task_id in (70001, 70002, 70003, 79001):
        request = models.CreateDataQualityEvaluationTaskInstanceRequest(
            project_id=BASIC_PROJECT,
            data_quality_evaluation_task_id=task_id,
            parameters=json.dumps({"triggerTime": 1_700_000_000_000}),
        )
        instance_id = sdk("create_data_quality_evaluation_task_instance", request).body.id
        sdk(
            "get_data_quality_evaluation_task_instance",
            models.GetDataQualityEvaluationTaskInstanceRequest(id=instance_id),
        )
    sdk(
        "list_data_quality_evaluation_task_instances",
        models.ListDataQualityEvaluationTaskInstancesRequest(project_id=BASIC_PROJECT, page_size=100),
    )


def provoke_errors(sdk: Recorder, emu: DataWorksEmulator) -> None:
    """Collect error answers of every family the emulator gives."""
    run_id = create(sdk, NODE, type="Online")
    sdk.fails("create_pipeline_run", models.CreatePipelineRunRequest(project_id=BASIC_PROJECT, object_ids=[NODE]))
    sdk.fails(
        "create_pipeline_run",
        models.CreatePipelineRunRequest(project_id=BASIC_PROJECT, type="Online", object_ids=[NODE], run_mode="Auto"),
    )
    sdk.fails(
        "create_pipeline_run",
        models.CreatePipelineRunRequest(project_id=BASIC_PROJECT, type="Online", object_ids=["1"]),
    )
    sdk.fails("get_pipeline_run", models.GetPipelineRunRequest(project_id=BASIC_PROJECT, id="no-such-run"))
    sdk.fails("get_pipeline_run", models.GetPipelineRunRequest(project_id=424242, id=run_id))
    sdk.fails(
        "exec_pipeline_run_stage", models.ExecPipelineRunStageRequest(project_id=BASIC_PROJECT, id=run_id, code="PROD")
    )
    sdk("abolish_pipeline_run", models.AbolishPipelineRunRequest(project_id=BASIC_PROJECT, id=run_id))
    sdk.fails("abolish_pipeline_run", models.AbolishPipelineRunRequest(project_id=BASIC_PROJECT, id=run_id))
    sdk.fails("list_pipeline_runs", models.ListPipelineRunsRequest(project_id=BASIC_PROJECT, page_size=101))
    sdk.fails("get_data_quality_evaluation_task_instance", models.GetDataQualityEvaluationTaskInstanceRequest(id=1))
    emu.inject_fault("GetProject", status=429, retry_after_ms=1000)
    sdk.fails("get_project", models.GetProjectRequest(id=BASIC_PROJECT))
    emu.inject_fault("ListProjects", status=503)
    sdk.fails("list_projects", models.ListProjectsRequest())
    wrong = Recorder(make_client(emu, access_key_secret="wrong"))
    wrong.fails("get_project", models.GetProjectRequest(id=BASIC_PROJECT))
    sdk.errors += wrong.errors


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorder]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in PROXY_ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        with DataWorksEmulator(stage_seconds=0.0, init_seconds=0.0) as emu:
            sdk = Recorder(make_client(emu))
            drive(emu, sdk)
            provoke_errors(sdk, emu)
            yield sdk


@pytest.mark.parametrize("action", PROVIDER_ACTIONS)
def test_success_bodies_conform_to_the_sdk_model(recorded: Recorder, action: str) -> None:
    bodies = recorded.bodies.get(action, [])
    assert bodies, f"the scenario never called {action}"
    model = getattr(models, f"{action}ResponseBody")
    problems = [p for body in bodies for p in conform(body, model, action)]
    assert problems == []


def test_the_scenario_reaches_the_states_worth_checking(recorded: Recorder) -> None:
    runs = [b["Pipeline"] for b in recorded.bodies["GetPipelineRun"]]
    stages = [s for run in runs for s in run["Stages"]]
    assert {r["Status"] for r in runs} >= {"Running", "Success", "Fail", "Termination"}
    assert any("Message" in r for r in runs) and any("Message" in s for s in stages)
    assert {s["Type"] for s in stages} >= {"Build", "Check", "Deploy", "Offline", "Delete"}
    rows = [r for b in recorded.bodies["ListPipelineRuns"] for r in b["PagingInfo"]["PipelineRuns"]]
    assert any("Stages" not in r for r in rows) and any(r.get("Stages") == [] for r in rows)
    instances = [
        b["DataQualityEvaluationTaskInstance"] for b in recorded.bodies["GetDataQualityEvaluationTaskInstance"]
    ]
    assert {i["Status"] for i in instances} == {"Running", "Passed", "Warned", "Critical"}
    assert {False, True} == {b["Success"] for b in recorded.bodies["ExecPipelineRunStage"]}


def test_error_bodies_have_the_pop_error_keys_and_types(recorded: Recorder) -> None:
    assert len(recorded.errors) >= 12
    for method, status_code, body in recorded.errors:
        assert set(ERROR_BODY) <= set(body) <= set(ERROR_BODY) | set(ERROR_BODY_OPTIONAL), (method, body)
        wrong = {k: v for k, v in body.items() if not isinstance(v, {**ERROR_BODY, **ERROR_BODY_OPTIONAL}[k])}
        assert wrong == {}, (method, status_code)


def test_every_status_record_is_mapped_to_its_sdk_models() -> None:
    reads = parser_reads(inspect.getsource(status))
    assert set(reads) == set(PARSER_MODELS), "map each record class with from_api to the SDK models it parses"
    # The reader finds what the parser obviously reads: it is not silently reading nothing.
    assert ("Stages",) in reads["PipelineRun"] and ("Detail",) in reads["Stage"]


def test_every_key_the_parser_reads_is_in_the_sdk_models() -> None:
    unknown, free_form, absent_from_rows = [], set(), set()
    for record, paths in parser_reads(inspect.getsource(status)).items():
        primary, *rows = PARSER_MODELS[record]
        for path in sorted(paths):
            where = locate(primary, path)
            if where == "free-form":
                free_form.add((record, ".".join(path)))
            elif where != "known":
                unknown.append(f"{record}.from_api vs {primary.__name__}: {where}")
            for row in rows:
                if where == "known" and locate(row, path) not in ("known", "free-form"):
                    action = row.__name__.split("ResponseBody")[0]
                    absent_from_rows.add((record, action, ".".join(path)))
    assert unknown == []
    assert free_form == FREE_FORM_READS, "a key read inside a free-form SDK dict: optional at best"
    assert absent_from_rows == ABSENT_FROM_LIST_ROWS


# --- the checks themselves catch what they are for ---------------------------------------------------


def test_the_check_reports_unknown_keys_wrong_types_and_nulls() -> None:
    body = {
        "RequestId": "r",
        "Pipeline": {
            "ProjectId": "10000",
            "Bogus": 1,
            "Stages": [{"Step": True, "Detail": [], "Code": None}],
        },
    }
    assert conform(body, models.GetPipelineRunResponseBody, "GetPipelineRun") == [
        "GetPipelineRun.Pipeline.ProjectId: string '10000', the SDK wants int",
        "GetPipelineRun.Pipeline.Bogus: a key the SDK model GetPipelineRunResponseBodyPipeline does not know",
        "GetPipelineRun.Pipeline.Stages[0].Step: boolean True, the SDK wants int",
        "GetPipelineRun.Pipeline.Stages[0].Detail: array, the SDK wants an object",
        "GetPipelineRun.Pipeline.Stages[0].Code: null None, the SDK wants str",
    ]
    assert (
        conform({"Pipeline": {"Stages": [{"Detail": {"Anything": [1]}}]}}, models.GetPipelineRunResponseBody, "x") == []
    )


def test_model_keys_come_from_the_models_own_to_map() -> None:
    keys = model_keys(models.GetPipelineRunResponseBodyPipelineStages)
    assert sorted(keys) == ["Code", "Description", "Detail", "Message", "Name", "Status", "Step", "Type"]


def test_the_parser_reader_follows_values_helpers_and_fields() -> None:
    source = """
def _text(threshold):
    return threshold.get("Operator")

class Record:
    @property
    def started(self):
        return self.detail.get("StartTime")

    @classmethod
    def from_api(cls, data):
        rule = data.get("Rule") or {}
        first = next((d for d in data.get("Details") or [] if d.get("Status")), {})
        return cls(x=_text(rule.get("Thresholds")), y=first["Value"], detail=dict(data.get("Detail") or {}))
"""
    assert parser_reads(source) == {
        "Record": {
            ("Rule",),
            ("Rule", "Thresholds"),
            ("Rule", "Thresholds", "Operator"),
            ("Details",),
            ("Details", "[]", "Status"),
            ("Details", "[]", "Value"),
            ("Detail",),
            ("Detail", "StartTime"),
        }
    }
