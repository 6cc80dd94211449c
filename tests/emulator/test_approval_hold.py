"""Approval stages are accepted, then held ``Running`` until a person approves them.

A client recognises an approval wait from the run's stages, never from a refusal: executing an
unapproved approval stage answers ``Success: true`` and the stage stays ``Running`` until
``approve()``; its stage time runs from the approval.
"""

from __future__ import annotations

from alibabacloud_dataworks_public20240518 import models

from airflow_provider_dataworks.testing import DataWorksEmulator

from .clocked import clocked_emulator
from .helpers import APPROVAL_NODE, BASIC_PROJECT, Sdk, make_client


def statuses(sdk: Sdk, run_id: str) -> list[str]:
    return [s.status for s in sdk.get(run_id).stages]


def test_exec_of_an_unapproved_stage_is_accepted_and_held_running_until_approved() -> None:
    with clocked_emulator(stage_seconds=10) as (emu, clock):
        sdk = Sdk(make_client(emu), False)
        run_id = sdk.create(APPROVAL_NODE)
        clock.tick(10)  # BUILD_PACKAGE done

        assert sdk.exec(run_id, "PROD_CHECK") is True
        clock.tick(600)  # far beyond the stage time: still held (the fake clock stays within signature skew)
        assert statuses(sdk, run_id) == ["Success", "Running", "Init"]
        assert sdk.get(run_id).status == "Running"
        assert [s["awaiting_approval"] for s in emu.run(run_id)["stages"]] == [False, True, False]

        approved_at = clock.now
        record = emu.approve(run_id, "PROD_CHECK")
        assert record["stages"][1]["awaiting_approval"] is False
        clock.tick(9)
        assert statuses(sdk, run_id) == ["Success", "Running", "Init"]  # the stage time runs from the approval
        clock.tick(1)
        assert statuses(sdk, run_id) == ["Success", "Success", "Init"]
        stage = emu.run(run_id)["stages"][1]
        assert stage["finish_time"] == int((approved_at + 10) * 1000)
        assert stage["start_requests"] == 1


def test_a_held_stage_that_is_planned_to_fail_fails_after_its_approval() -> None:
    with clocked_emulator(stage_seconds=5) as (emu, clock):
        emu.add_object(
            BASIC_PROJECT, "71", name="gated_and_broken", approval_stages=["PROD_CHECK"], fail_at_stage="PROD_CHECK"
        )
        sdk = Sdk(make_client(emu), False)
        run_id = sdk.create("71")
        clock.tick(5)
        sdk.exec(run_id, "PROD_CHECK")
        clock.tick(60)
        assert sdk.get(run_id).stages[1].status == "Running"

        emu.approve(run_id, "PROD_CHECK")
        clock.tick(5)
        pipeline = sdk.get(run_id)
        assert (pipeline.status, pipeline.stages[1].status) == ("Fail", "Fail")


def test_the_hold_is_not_in_the_api_body(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    run_id = sync_sdk.create(APPROVAL_NODE)
    sync_sdk.exec(run_id, "PROD_CHECK")
    body = sync_sdk.raw("GetPipelineRun", "GET", {"ProjectId": str(BASIC_PROJECT), "Id": run_id})["body"]
    stage = body["Pipeline"]["Stages"][1]
    assert set(stage) == {"Code", "Step", "Type", "Name", "Status", "Description", "Detail"}
    assert stage["Status"] == "Running"


def test_auto_mode_holds_the_approval_stage_it_starts_by_itself(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    run_id = sync_sdk.create(APPROVAL_NODE, run_mode="Auto", auto_run_until_stage="PROD")
    assert statuses(sync_sdk, run_id) == ["Success", "Running", "Init"]
    assert emu.run(run_id)["stages"][1]["awaiting_approval"] is True

    emu.approve(run_id, "PROD_CHECK")
    assert sync_sdk.get(run_id).status == "Success"
    assert emu.calls("ExecPipelineRunStage") == []


def test_an_approval_ahead_of_its_turn_starts_the_stage_when_it_comes(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    emu.add_object(BASIC_PROJECT, "77", name="needs_prod_ok", approval_stages=["PROD"])
    run_id = sync_sdk.create("77")
    emu.approve(run_id, "PROD")  # start=True
    sync_sdk.exec(run_id, "PROD_CHECK")
    assert sync_sdk.get(run_id).status == "Success"
    assert emu.calls("ExecPipelineRunStage")[-1]["status"] == 200
    assert len(emu.calls("ExecPipelineRunStage")) == 1


def test_an_approval_ahead_without_start_lifts_the_hold_so_exec_runs_it_normally(
    emu: DataWorksEmulator, sync_sdk: Sdk
) -> None:
    run_id = sync_sdk.create(APPROVAL_NODE)
    emu.approve(run_id, "PROD_CHECK", start=False)
    assert statuses(sync_sdk, run_id) == ["Success", "Init", "Init"]

    assert sync_sdk.exec(run_id, "PROD_CHECK") is True
    assert statuses(sync_sdk, run_id) == ["Success", "Success", "Init"]
    assert emu.run(run_id)["stages"][1]["awaiting_approval"] is False


def test_a_held_stage_is_terminated_by_abolish(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    run_id = sync_sdk.create(APPROVAL_NODE)
    sync_sdk.exec(run_id, "PROD_CHECK")
    sync_sdk("abolish_pipeline_run", models.AbolishPipelineRunRequest(project_id=BASIC_PROJECT, id=run_id))
    assert statuses(sync_sdk, run_id) == ["Success", "Termination", "Init"]
    assert emu.run(run_id)["stages"][1]["awaiting_approval"] is False


def test_approve_releases_a_held_stage_over_the_http_control_api(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    remote = DataWorksEmulator.attach(emu.url)
    run_id = sync_sdk.create(APPROVAL_NODE)
    sync_sdk.exec(run_id, "PROD_CHECK")
    assert remote.run(run_id)["stages"][1]["awaiting_approval"] is True

    record = remote.approve(run_id, "PROD_CHECK")

    assert record["stages"][1]["status"] == "Success"
    assert record["stages"][1]["awaiting_approval"] is False
