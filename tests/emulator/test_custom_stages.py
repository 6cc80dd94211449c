"""An object may bring its own stage list, e.g. a template with a ``Delete`` stage before deploying."""

from __future__ import annotations

import pytest
from alibabacloud_dataworks_public20240518 import models
from Tea.exceptions import TeaException

from airflow_provider_dataworks.testing import DataWorksEmulator, EmulatorControlError

from .helpers import BASIC_PROJECT, Sdk, make_client

WITH_DELETE = [
    {"code": "BUILD_PACKAGE", "type": "Build"},
    {"code": "PROD_CHECK", "type": "Check"},
    {"code": "CLEANUP", "type": "Delete"},
    {"code": "PROD", "type": "Deploy"},
]


def test_runs_use_the_objects_stages_in_order(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    emu.add_object(BASIC_PROJECT, "81", name="with_cleanup", stages=WITH_DELETE)
    run_id = sync_sdk.create("81")

    stages = sync_sdk.get(run_id).stages
    assert [(s.step, s.code, s.type, s.name, s.status) for s in stages] == [
        (1, "BUILD_PACKAGE", "Build", "BUILD_PACKAGE", "Success"),  # a Build stage runs by itself
        (2, "PROD_CHECK", "Check", "PROD_CHECK", "Init"),
        (3, "CLEANUP", "Delete", "CLEANUP", "Init"),
        (4, "PROD", "Deploy", "PROD", "Init"),
    ]
    for code in ("PROD_CHECK", "CLEANUP", "PROD"):
        assert sync_sdk.exec(run_id, code)
    assert sync_sdk.get(run_id).status == "Success"
    assert emu.get_object(BASIC_PROJECT, "81")["deployed"] is True


def test_names_descriptions_and_self_running_can_be_given(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    stages = [
        {"code": "PRE", "type": "Check", "name": "Pre-flight", "description": "checks first", "self_running": True},
        {"code": "BUILD", "type": "Build", "self_running": False},
    ]
    emu.add_object(BASIC_PROJECT, "82", stages=stages)
    run_id = sync_sdk.create("82")

    got = sync_sdk.get(run_id).stages
    assert [(s.name, s.description, s.status) for s in got] == [
        ("Pre-flight", "checks first", "Success"),
        ("BUILD", "Build stage BUILD", "Init"),
    ]
    assert emu.get_object(BASIC_PROJECT, "82")["stages"][1]["self_running"] is False


def test_auto_run_until_stage_names_one_of_the_objects_stages(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    emu.add_object(BASIC_PROJECT, "83", stages=WITH_DELETE)
    run_id = sync_sdk.create("83", run_mode="Auto", auto_run_until_stage="CLEANUP")
    assert [s.status for s in sync_sdk.get(run_id).stages] == ["Success", "Success", "Success", "Init"]
    with pytest.raises(TeaException) as info:
        sync_sdk.create("83", run_mode="Auto", auto_run_until_stage="DEV")  # in the standard template, not here
    assert (info.value.status_code, info.value.code) == (400, "InvalidParameter")


def test_the_seed_document_takes_stage_lists() -> None:
    seed = {"projects": [{"id": 7, "objects": [{"id": "70", "name": "n70", "stages": WITH_DELETE}]}]}
    with DataWorksEmulator(seed=seed, init_seconds=0.0) as emulator:
        sdk = Sdk(make_client(emulator), False)
        request = models.CreatePipelineRunRequest(project_id=7, type="Online", object_ids=["70"])
        run_id = sdk("create_pipeline_run", request).body.id
        assert [s.type for s in sdk.get(run_id, 7).stages] == ["Build", "Check", "Delete", "Deploy"]
        emulator.reset()
        assert [s["code"] for s in emulator.get_object(7, "70")["stages"]] == [s["code"] for s in WITH_DELETE]


@pytest.mark.parametrize(
    ("stages", "complaint"),
    [
        ([], "at least one stage"),
        ([{"code": "X", "type": "Approve"}], "stage type"),
        ([{"type": "Check"}], "needs a code"),
        ([{"code": "X", "type": "Check"}, {"code": "X", "type": "Deploy"}], "unique"),
    ],
    ids=["empty", "unknown-type", "no-code", "duplicate-code"],
)
def test_a_bad_stage_list_is_refused(emu: DataWorksEmulator, stages: list[dict[str, str]], complaint: str) -> None:
    with pytest.raises(EmulatorControlError, match=complaint):
        emu.add_object(BASIC_PROJECT, "84", stages=stages)
