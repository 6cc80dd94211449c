"""Answer shapes a real server may use where the emulator's habits differ: stages in listings,
shortened descriptions, smaller pages than asked."""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models

from airflow_provider_dataworks.testing import DataWorksEmulator, EmulatorControlError

from .helpers import BASIC_PROJECT, NODE, WORKFLOW, Sdk, make_client


def list_rows(sdk: Sdk, **query: str) -> dict[str, Any]:
    body: dict[str, Any] = sdk.raw("ListPipelineRuns", "GET", {"ProjectId": str(BASIC_PROJECT), **query})["body"]
    return body


@pytest.mark.parametrize(("shape", "expected"), [("full", 3), ("missing", None), ("empty", 0)])
def test_list_rows_carry_full_missing_or_empty_stages(
    emu: DataWorksEmulator, sync_sdk: Sdk, shape: str, expected: int | None
) -> None:
    run_id = sync_sdk.create(NODE)
    emu.set_list_stages(shape)

    [row] = list_rows(sync_sdk)["PagingInfo"]["PipelineRuns"]

    assert (len(row["Stages"]) if "Stages" in row else None) == expected
    assert len(sync_sdk.get(run_id).stages) == 3  # GetPipelineRun always carries them


def test_description_is_cut_to_the_limit_on_create(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    emu.set_description_limit(10)
    run_id = sync_sdk.create(NODE, description="airflow: dag=deploy run=manual__2024")
    assert sync_sdk.get(run_id).description == "airflow: d"
    assert emu.run(run_id)["description"] == "airflow: d"
    emu.set_description_limit(None)
    assert sync_sdk.get(sync_sdk.create(NODE, description="x" * 300)).description == "x" * 300


def test_pages_are_no_larger_than_the_server_serves(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    created = [sync_sdk.create(NODE) for _ in range(7)]
    emu.set_max_page_size(3)

    pages = [list_rows(sync_sdk, PageSize="100", PageNumber=str(n))["PagingInfo"] for n in (1, 2, 3)]

    assert [(p["PageSize"], p["TotalCount"], len(p["PipelineRuns"])) for p in pages] == [
        (3, 7, 3),
        (3, 7, 3),
        (3, 7, 1),
    ]
    assert [r["Id"] for p in pages for r in p["PipelineRuns"]] == created[::-1]
    small = list_rows(sync_sdk, PageSize="2")["PagingInfo"]
    assert (small["PageSize"], len(small["PipelineRuns"])) == (2, 2)  # a smaller ask is served as asked


def test_run_items_pages_are_capped_too(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    run_id = sync_sdk.create(WORKFLOW)  # the workflow and its two children
    emu.set_max_page_size(2)
    request = models.ListPipelineRunItemsRequest(project_id=BASIC_PROJECT, pipeline_run_id=run_id, page_size=50)
    paging = sync_sdk("list_pipeline_run_items", request).body.paging_info
    assert (paging.page_size, paging.total_count, len(paging.pipeline_run_items)) == (2, 3, 2)


def test_shapes_set_at_start_show_in_info_and_reset_restores_them() -> None:
    with DataWorksEmulator(list_stages="missing", description_limit=5, max_page_size=4) as emulator:
        remote = DataWorksEmulator.attach(emulator.url)
        assert (remote.list_stages, remote.description_limit, remote.max_page_size) == ("missing", 5, 4)
        remote.set_list_stages("empty")
        remote.set_description_limit(None)
        remote.set_max_page_size(None)
        sdk = Sdk(make_client(emulator), False)
        sdk.create(NODE, description="longer than five")
        [row] = list_rows(sdk)["PagingInfo"]["PipelineRuns"]
        assert (row["Stages"], row["Description"]) == ([], "longer than five")

        remote.reset()
        assert (remote.list_stages, remote.description_limit, remote.max_page_size) == ("missing", 5, 4)
        sdk.create(NODE, description="longer than five")
        [row] = list_rows(sdk)["PagingInfo"]["PipelineRuns"]
        assert "Stages" not in row and row["Description"] == "longe"


@pytest.mark.parametrize(
    ("setter", "value"),
    [("set_list_stages", "some"), ("set_description_limit", 0), ("set_max_page_size", -1)],
)
def test_bad_shape_settings_are_refused(emu: DataWorksEmulator, setter: str, value: object) -> None:
    with pytest.raises(EmulatorControlError):
        getattr(emu, setter)(value)
