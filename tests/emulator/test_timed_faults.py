"""Faults bounded in time (an outage of status reads) and faults on several actions at once."""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models
from alibabacloud_tea_openapi.exceptions import ServerException

from airflow_provider_dataworks.testing import DataWorksEmulator

from .clocked import clocked_emulator
from .helpers import BASIC_PROJECT, NODE, Sdk, make_client


def list_runs(sdk: Sdk) -> Any:
    return sdk("list_pipeline_runs", models.ListPipelineRunsRequest(project_id=BASIC_PROJECT))


def test_an_outage_hits_every_matching_call_then_disappears_by_itself() -> None:
    with clocked_emulator() as (emu, clock):
        sdk = Sdk(make_client(emu), False)
        run_id = sdk.create(NODE)
        emu.inject_fault(("GetPipelineRun", "ListPipelineRuns"), status=503, count=0, for_seconds=180.0)

        for _ in range(3):
            with pytest.raises(ServerException):
                sdk.get(run_id)
            with pytest.raises(ServerException):
                list_runs(sdk)
            clock.tick(59)
        assert sdk.exec(run_id, "PROD_CHECK")  # other actions answer meanwhile
        clock.tick(3)  # 180 s have passed

        assert sdk.get(run_id).id == run_id
        assert list_runs(sdk).body.paging_info.total_count == 1
        assert emu.pending_faults() == []
        assert [c["status"] for c in emu.calls("GetPipelineRun")] == [503, 503, 503, 200]


def test_a_timed_fault_reports_when_it_expires() -> None:
    with clocked_emulator() as (emu, clock):
        fault = emu.inject_fault("GetPipelineRun,ListPipelineRuns", count=0, for_seconds=60)
        assert fault.action == "GetPipelineRun,ListPipelineRuns"
        assert fault.expires_at == pytest.approx(clock.now + 60)
        assert len(emu.pending_faults()) == 1
        clock.tick(60)
        assert emu.pending_faults() == []


def test_a_counted_fault_with_a_window_ends_at_whichever_comes_first() -> None:
    with clocked_emulator() as (emu, clock):
        sdk = Sdk(make_client(emu), False)
        run_id = sdk.create(NODE)
        emu.inject_fault("GetPipelineRun", status=503, count=1, for_seconds=60)
        emu.inject_fault("GetPipelineRun", status=500, count=5, for_seconds=60)
        with pytest.raises(ServerException) as first:
            sdk.get(run_id)
        assert first.value.status_code == 503  # used up after one call
        with pytest.raises(ServerException) as second:
            sdk.get(run_id)
        assert second.value.status_code == 500
        clock.tick(61)  # four hits left, but the window is over
        assert sdk.get(run_id).id == run_id


def test_a_comma_separated_action_list_works_over_the_http_control_api(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    remote = DataWorksEmulator.attach(emu.url)
    run_id = sync_sdk.create(NODE)
    remote.inject_fault("GetPipelineRun, ListPipelineRuns", status=503, count=2)
    with pytest.raises(ServerException):
        sync_sdk.get(run_id)
    with pytest.raises(ServerException):
        list_runs(sync_sdk)
    assert sync_sdk.get(run_id).id == run_id
    assert remote.pending_faults() == []


@pytest.mark.parametrize("bad", [{"for_seconds": 0}, {"action": " , "}])
def test_a_bad_window_or_action_list_is_refused(emu: DataWorksEmulator, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        emu.inject_fault(**bad)  # type: ignore[arg-type]
