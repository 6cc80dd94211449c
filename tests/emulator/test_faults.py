"""Injected faults, as the real SDK experiences them."""

from __future__ import annotations

import time

import pytest
from alibabacloud_dataworks_public20240518 import models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.exceptions import UnretryableException
from darabonba.runtime import RuntimeOptions

from airflow_provider_dataworks.testing import DataWorksEmulator, EmulatorControlError

from .helpers import BASIC_PROJECT, NODE, Sdk


def create_request() -> models.CreatePipelineRunRequest:
    return models.CreatePipelineRunRequest(project_id=BASIC_PROJECT, type="Online", object_ids=[NODE])


def test_throttling_error_then_normal_answers(emu: DataWorksEmulator, sdk: Sdk) -> None:
    run_id = sdk.create()
    emu.inject_fault(action="GetPipelineRun", kind="http_error", count=2, status=429)
    for _ in range(2):
        with pytest.raises(ClientException) as info:
            sdk.get(run_id)
        assert (info.value.status_code, info.value.code) == (429, "Throttling.User")
        assert info.value.data["Message"] == "Your request is too frequent. Try again later."
    assert sdk.get(run_id).id == run_id
    assert [c["status"] for c in emu.calls("GetPipelineRun")] == [429, 429, 200]


def test_retry_after_makes_a_throttling_exception(emu: DataWorksEmulator, sdk: Sdk) -> None:
    emu.inject_fault(action="CreatePipelineRun", status=429, retry_after_ms=1500)
    with pytest.raises(ThrottlingException) as info:
        sdk.create()
    assert info.value.retry_after == 1500
    assert emu.runs() == []


def test_server_error_with_custom_code(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    emu.inject_fault(status=500, code="InternalError.System", message="boom")
    with pytest.raises(ServerException) as info:
        sync_sdk.create()
    assert (info.value.status_code, info.value.code, info.value.data["Message"]) == (
        500,
        "InternalError.System",
        "boom",
    )


def test_fault_for_other_action_does_not_fire(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    emu.inject_fault(action="AbolishPipelineRun", status=503)
    sync_sdk.get(sync_sdk.create())
    assert [f.action for f in emu.pending_faults()] == ["AbolishPipelineRun"]
    emu.clear_faults()
    assert emu.pending_faults() == []


def test_delay_then_normal_answer(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    run_id = sync_sdk.create()
    emu.inject_fault(action="GetPipelineRun", kind="delay", seconds=0.3)
    started = time.monotonic()
    assert sync_sdk.get(run_id).id == run_id
    assert time.monotonic() - started >= 0.3


def test_delay_beyond_read_timeout_is_a_transport_error(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    run_id = sync_sdk.create()
    emu.inject_fault(action="GetPipelineRun", kind="delay", seconds=1.0)
    request = models.GetPipelineRunRequest(project_id=BASIC_PROJECT, id=run_id)
    with pytest.raises(UnretryableException):
        sync_sdk.client.get_pipeline_run_with_options(request, RuntimeOptions(read_timeout=200))


def test_html_502_is_unparseable(emu: DataWorksEmulator, sdk: Sdk) -> None:
    emu.inject_fault(kind="html_502")
    with pytest.raises(UnretryableException) as info:
        sdk.create()
    assert info.value.code is None
    assert emu.calls()[-1]["status"] == 502
    assert emu.runs() == []


def test_drop_gives_transport_error_and_no_run(emu: DataWorksEmulator, sdk: Sdk) -> None:
    emu.inject_fault(action="CreatePipelineRun", kind="drop")
    with pytest.raises(UnretryableException) as info:
        sdk.create()
    assert info.value.code is None
    assert emu.runs() == []
    assert sdk.create()  # the next call is answered


def test_commit_then_drop_creates_the_run_without_answering(emu: DataWorksEmulator, sdk: Sdk) -> None:
    emu.inject_fault(action="CreatePipelineRun", kind="commit_then_drop")
    with pytest.raises(UnretryableException):
        sdk.create()
    [run] = emu.runs()
    assert run["object_id"] == NODE
    assert emu.calls("CreatePipelineRun")[-1]["fault"] == "commit_then_drop"


def test_unlimited_fault_until_cleared(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    emu.inject_fault(count=0, status=503)
    for _ in range(3):
        with pytest.raises(ServerException):
            sync_sdk.create()
    emu.clear_faults()
    assert sync_sdk.create()


def test_bad_fault_kind_is_refused(emu: DataWorksEmulator) -> None:
    with pytest.raises(ValueError, match="fault kind"):
        emu.inject_fault(kind="explode")
    with pytest.raises(EmulatorControlError):
        emu._control("add_fault", {"kind": "explode"})
