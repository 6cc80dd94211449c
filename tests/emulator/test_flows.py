"""Whole pipeline-run flows through the real SDK: stages, modes, outcomes, object state."""

from __future__ import annotations

import pytest
from alibabacloud_dataworks_public20240518 import models

from airflow_provider_dataworks.testing import DataWorksEmulator

from .helpers import (
    APPROVAL_NODE,
    BASIC_PROJECT,
    BROKEN_NODE,
    DEPLOYED_NODE,
    NODE,
    STANDARD_PROJECT,
    STD_WORKFLOW,
    WORKFLOW,
    Sdk,
)


def drive(sdk: Sdk, run_id: str, project_id: int = BASIC_PROJECT) -> list[str]:
    """Execute every waiting stage in order, as an operator with auto-advance would; return codes."""
    executed: list[str] = []
    while True:
        pipeline = sdk.get(run_id, project_id)
        if pipeline.status != "Running":
            return executed
        stage = next(s for s in pipeline.stages if s.status != "Success")
        assert stage.status == "Init"
        sdk.exec(run_id, stage.code, project_id)
        executed.append(stage.code)


def stage_statuses(sdk: Sdk, run_id: str, project_id: int = BASIC_PROJECT) -> list[tuple[str, str]]:
    return [(s.code, s.status) for s in sdk.get(run_id, project_id).stages]


def test_basic_online_flow_deploys_the_workflow(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    run_id = sync_sdk.create(WORKFLOW)
    assert drive(sync_sdk, run_id) == ["PROD_CHECK", "PROD"]
    pipeline = sync_sdk.get(run_id)
    assert pipeline.status == "Success"
    assert all(s.status == "Success" for s in pipeline.stages)
    workflow = emu.get_object(BASIC_PROJECT, WORKFLOW)
    assert workflow["deployed"] is True
    assert workflow["version"] == 1
    assert all(child["deployed"] for child in workflow["children"])


def test_standard_online_flow_has_dev_stages(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    run_id = sync_sdk.create(STD_WORKFLOW, STANDARD_PROJECT)
    assert [c for c, _ in stage_statuses(sync_sdk, run_id, STANDARD_PROJECT)] == [
        "BUILD_PACKAGE",
        "DEV_CHECK",
        "DEV",
        "PROD_CHECK",
        "PROD",
    ]
    assert drive(sync_sdk, run_id, STANDARD_PROJECT) == ["DEV_CHECK", "DEV", "PROD_CHECK", "PROD"]
    assert sync_sdk.get(run_id, STANDARD_PROJECT).status == "Success"
    assert emu.get_object(STANDARD_PROJECT, STD_WORKFLOW)["deployed"] is True


def test_offline_flow_undeploys(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    run_id = sync_sdk.create(DEPLOYED_NODE, type="Offline")
    stages = sync_sdk.get(run_id).stages
    assert [(s.code, s.type) for s in stages] == [
        ("OfflineCheck", "Check"),
        ("PROD_CHECK", "Check"),
        ("PROD", "Offline"),
    ]
    assert drive(sync_sdk, run_id) == ["PROD_CHECK", "PROD"]
    assert sync_sdk.get(run_id).status == "Success"
    assert emu.get_object(BASIC_PROJECT, DEPLOYED_NODE)["deployed"] is False


def test_offline_of_undeployed_object_fails_at_offline_check(sync_sdk: Sdk) -> None:
    run_id = sync_sdk.create(NODE, type="Offline")
    pipeline = sync_sdk.get(run_id)
    assert pipeline.status == "Fail"
    assert pipeline.stages[0].status == "Fail"
    assert "not deployed" in pipeline.stages[0].message
    assert "not deployed" in pipeline.message


def test_deploy_then_undeploy_round_trip(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    drive(sync_sdk, sync_sdk.create(NODE))
    assert emu.get_object(BASIC_PROJECT, NODE)["deployed"] is True
    undeploy = sync_sdk.create(NODE, type="Offline")
    drive(sync_sdk, undeploy)
    assert sync_sdk.get(undeploy).status == "Success"
    assert emu.get_object(BASIC_PROJECT, NODE)["deployed"] is False


def test_auto_run_mode_runs_until_the_named_stage(sync_sdk: Sdk) -> None:
    run_id = sync_sdk.create(NODE, run_mode="Auto", auto_run_until_stage="PROD_CHECK")
    assert stage_statuses(sync_sdk, run_id) == [
        ("BUILD_PACKAGE", "Success"),
        ("PROD_CHECK", "Success"),
        ("PROD", "Init"),
    ]
    assert drive(sync_sdk, run_id) == ["PROD"]


def test_auto_run_mode_to_the_last_stage_succeeds(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    run_id = sync_sdk.create(STD_WORKFLOW, STANDARD_PROJECT, run_mode="Auto", auto_run_until_stage="PROD")
    assert sync_sdk.get(run_id, STANDARD_PROJECT).status == "Success"
    assert emu.runs()[0]["auto_run_until_stage"] == "PROD"


def test_abolish_terminates_the_run(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    # The API page: AbolishPipelineRun "changes the status of the process to Terminated".
    emu.set_stage_seconds(30)
    run_id = sync_sdk.create(NODE)
    sync_sdk("abolish_pipeline_run", models.AbolishPipelineRunRequest(project_id=BASIC_PROJECT, id=run_id))
    pipeline = sync_sdk.get(run_id)
    assert pipeline.status == "Termination"
    assert [(s.code, s.status) for s in pipeline.stages] == [
        ("BUILD_PACKAGE", "Termination"),
        ("PROD_CHECK", "Init"),
        ("PROD", "Init"),
    ]
    assert emu.get_object(BASIC_PROJECT, NODE)["deployed"] is False


def test_configured_check_failure_fails_stage_and_run(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    run_id = sync_sdk.create(BROKEN_NODE)
    drive(sync_sdk, run_id)
    pipeline = sync_sdk.get(run_id)
    expected = "生产检查未通过: SQL syntax error at line 3 (production check failed)"
    assert pipeline.status == "Fail"
    failed = pipeline.stages[1]
    assert (failed.code, failed.status, failed.message) == ("PROD_CHECK", "Fail", expected)
    assert pipeline.message == expected
    assert pipeline.stages[2].status == "Init"
    assert emu.get_object(BASIC_PROJECT, BROKEN_NODE)["deployed"] is False


def test_manual_approval_holds_the_stage_until_approved(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    run_id = sync_sdk.create(APPROVAL_NODE)
    assert sync_sdk.exec(run_id, "PROD_CHECK") is True
    assert stage_statuses(sync_sdk, run_id)[1] == ("PROD_CHECK", "Running")
    record = emu.approve(run_id, "PROD_CHECK")
    assert record["stages"][1]["approved"] is True
    assert stage_statuses(sync_sdk, run_id)[1] == ("PROD_CHECK", "Success")
    assert drive(sync_sdk, run_id) == ["PROD"]
    assert sync_sdk.get(run_id).status == "Success"


def test_approval_before_its_turn_runs_when_reached(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    emu.add_object(BASIC_PROJECT, "77", name="needs_prod_ok", approval_stages=["PROD"])
    run_id = sync_sdk.create("77")
    emu.approve(run_id, "PROD")
    sync_sdk.exec(run_id, "PROD_CHECK")
    assert sync_sdk.get(run_id).status == "Success"


def test_auto_run_holds_an_unapproved_stage_running(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    run_id = sync_sdk.create(APPROVAL_NODE, run_mode="Auto", auto_run_until_stage="PROD")
    assert stage_statuses(sync_sdk, run_id)[1] == ("PROD_CHECK", "Running")
    assert emu.run(run_id)["stages"][1]["awaiting_approval"] is True
    emu.approve(run_id, "PROD_CHECK")
    assert sync_sdk.get(run_id).status == "Success"


def test_stages_take_stage_seconds(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    emu.set_stage_seconds(0.3)
    run_id = sync_sdk.create(NODE)
    first = sync_sdk.get(run_id)
    assert (first.status, first.stages[0].status) == ("Running", "Running")
    import time

    time.sleep(0.35)
    assert sync_sdk.get(run_id).stages[0].status == "Success"


def test_list_pipeline_runs_pages_over_many_runs(sync_sdk: Sdk) -> None:
    created = [sync_sdk.create(NODE) for _ in range(105)]
    seen: list[str] = []
    for page in (1, 2):
        request = models.ListPipelineRunsRequest(project_id=BASIC_PROJECT, page_number=page, page_size=100)
        paging = sync_sdk("list_pipeline_runs", request).body.paging_info
        assert paging.total_count == 105
        assert (paging.page_number, paging.page_size) == (page, 100)
        seen += [r.id for r in paging.pipeline_runs]
    assert seen == created[::-1]


def test_only_first_object_id_is_used(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    request = models.CreatePipelineRunRequest(project_id=BASIC_PROJECT, type="Online", object_ids=[NODE, WORKFLOW])
    sync_sdk("create_pipeline_run", request)
    [run] = emu.runs()
    assert run["object_id"] == NODE
    assert run["object_ids"] == [NODE, WORKFLOW]


def test_reset_returns_to_the_seed(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    drive(sync_sdk, sync_sdk.create(NODE))
    emu.add_object(BASIC_PROJECT, "99", name="extra")
    emu.reset()
    assert emu.runs() == []
    assert emu.get_object(BASIC_PROJECT, NODE)["deployed"] is False
    with pytest.raises(KeyError):
        emu.get_object(BASIC_PROJECT, "99")
