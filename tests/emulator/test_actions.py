"""Every action answered to the real SDK, in all four flavours (sync/async x ACS3/V2)."""

from __future__ import annotations

import json

from alibabacloud_dataworks_public20240518 import models

from airflow_provider_dataworks.testing import DataWorksEmulator

from .helpers import BASIC_PROJECT, NODE, WORKFLOW, WORKFLOW_CHILD, Sdk


def test_create_pipeline_run_returns_run_id_and_request_id(sdk: Sdk, emu: DataWorksEmulator) -> None:
    request = models.CreatePipelineRunRequest(
        project_id=BASIC_PROJECT, type="Online", object_ids=[NODE], description="airflow deploy"
    )
    response = sdk("create_pipeline_run", request)
    assert response.status_code == 200
    assert response.body.request_id == response.headers["x-acs-request-id"]
    [run] = emu.runs()
    assert run["id"] == response.body.id
    assert run["object_ids"] == [NODE]
    assert run["description"] == "airflow deploy"
    assert run["creator"] == "1379463177660000"
    assert run["created_by_action"] == "CreatePipelineRun"
    assert run["request_id"] == response.body.request_id


def test_get_pipeline_run_reports_stages(sdk: Sdk) -> None:
    run_id = sdk.create()
    pipeline = sdk.get(run_id)
    assert pipeline.id == run_id
    assert pipeline.project_id == BASIC_PROJECT
    assert pipeline.status == "Running"
    assert pipeline.creator == "1379463177660000"
    assert pipeline.create_time > 1_600_000_000_000
    assert [(s.code, s.step, s.type, s.status) for s in pipeline.stages] == [
        ("BUILD_PACKAGE", 1, "Build", "Success"),
        ("PROD_CHECK", 2, "Check", "Init"),
        ("PROD", 3, "Deploy", "Init"),
    ]
    assert pipeline.stages[0].name == "Publish package build"
    assert isinstance(pipeline.stages[0].detail, dict)


def test_list_pipeline_runs_filters_and_orders_newest_first(sdk: Sdk) -> None:
    first = sdk.create(NODE)
    second = sdk.create(WORKFLOW)
    body = sdk("list_pipeline_runs", models.ListPipelineRunsRequest(project_id=BASIC_PROJECT)).body
    assert body.paging_info.total_count == 2
    assert [r.id for r in body.paging_info.pipeline_runs] == [second, first]
    filtered = sdk(
        "list_pipeline_runs",
        models.ListPipelineRunsRequest(
            project_id=BASIC_PROJECT, object_id=NODE, status="Running", creator="1379463177660000"
        ),
    ).body
    assert [r.id for r in filtered.paging_info.pipeline_runs] == [first]
    none = sdk("list_pipeline_runs", models.ListPipelineRunsRequest(project_id=BASIC_PROJECT, status="Success")).body
    assert none.paging_info.total_count == 0


def test_list_pipeline_run_items_lists_object_and_children(sdk: Sdk) -> None:
    run_id = sdk.create(WORKFLOW)
    body = sdk(
        "list_pipeline_run_items",
        models.ListPipelineRunItemsRequest(project_id=BASIC_PROJECT, pipeline_run_id=run_id),
    ).body
    items = body.paging_info.pipeline_run_items
    assert body.paging_info.total_count == 3
    assert [(i.id, i.type, i.name) for i in items] == [
        (WORKFLOW, "WorkflowDefinition", "daily_sales_workflow"),
        (WORKFLOW_CHILD, "Node", "ods_sales"),
        ("8600000000000000012", "Node", "dws_sales"),
    ]
    assert items[0].status == "Running"
    assert items[0].version == 1
    assert json.loads(items[0].spec)["spec"]["workflows"][0]["id"] == WORKFLOW


def test_exec_pipeline_run_stage_triggers_the_next_stage(sdk: Sdk) -> None:
    run_id = sdk.create()
    assert sdk.exec(run_id, "PROD_CHECK") is True
    assert sdk.get(run_id).stages[1].status == "Success"


def test_abolish_pipeline_run_terminates(sdk: Sdk) -> None:
    run_id = sdk.create()
    request = models.AbolishPipelineRunRequest(project_id=BASIC_PROJECT, id=run_id)
    assert sdk("abolish_pipeline_run", request).body.success is True
    assert sdk.get(run_id).status == "Termination"


def test_get_project_describes_the_workspace(sdk: Sdk) -> None:
    project = sdk("get_project", models.GetProjectRequest(id=BASIC_PROJECT)).body.project
    assert (project.id, project.name, project.display_name, project.status) == (
        BASIC_PROJECT,
        "demo_basic",
        "demo_basic",
        "Available",
    )


def test_list_projects_pages_workspaces(sdk: Sdk) -> None:
    paging = sdk("list_projects", models.ListProjectsRequest(page_size=1)).body.paging_info
    assert (paging.total_count, paging.page_number, paging.page_size) == (2, 1, 1)
    assert [p.id for p in paging.projects] == [BASIC_PROJECT]
    by_id = sdk("list_projects", models.ListProjectsRequest(ids=[20000])).body.paging_info
    assert [p.name for p in by_id.projects] == ["demo_standard"]


def test_legacy_deployment_actions_are_aliases(sdk: Sdk, emu: DataWorksEmulator) -> None:
    created = sdk.raw(
        "CreateDeployment",
        "POST",
        body={"ProjectId": BASIC_PROJECT, "Type": "Online", "ObjectIds": json.dumps([NODE])},
    )["body"]
    run_id = created["Id"]
    assert created["Data"] == run_id
    got = sdk.raw("GetDeployment", "GET", query={"ProjectId": str(BASIC_PROJECT), "Id": run_id})["body"]
    assert got["Pipeline"]["Status"] == "Running"
    listed = sdk.raw("ListDeployments", "GET", query={"ProjectId": str(BASIC_PROJECT)})["body"]
    assert [d["Id"] for d in listed["PagingInfo"]["Deployments"]] == [run_id]
    assert listed["PagingInfo"]["TotalCount"] == "1"
    executed = sdk.raw(
        "ExecDeploymentStage",
        "POST",
        query={"ProjectId": str(BASIC_PROJECT)},
        body={"Id": run_id, "Code": "PROD_CHECK"},
    )
    assert executed["body"]["Success"] is True
    abolished = sdk.raw("AbolishDeployment", "POST", body={"ProjectId": BASIC_PROJECT, "Id": run_id})
    assert abolished["body"]["Success"] is True
    assert emu.runs()[0]["status"] == "Termination"
    assert emu.runs()[0]["created_by_action"] == "CreateDeployment"
