"""ListPipelineRuns answers from an index of runs by status; it must answer what a full scan would.

Before the index, every listing advanced every run of the workspace and filtered them. The
differential test below keeps that algorithm as the reference (``ScanningState``) and drives it
and the indexed state through the same random history on a fake clock, comparing every
listing's JSON (``TotalCount``, page, each run's stages and times) and every object's state.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models

from airflow_provider_dataworks.testing import DataWorksEmulator
from airflow_provider_dataworks.testing.actions import Call, list_pipeline_runs
from airflow_provider_dataworks.testing.auth import Credential
from airflow_provider_dataworks.testing.errors import ApiError
from airflow_provider_dataworks.testing.seed import default_seed
from airflow_provider_dataworks.testing.stages import STATUSES
from airflow_provider_dataworks.testing.state import DwObject, EmulatorState, Run

from .helpers import BASIC_PROJECT, NODE, Sdk

PROJECTS = (10000, 20000)
CREDENTIAL = Credential("a", "b")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class ScanningState(EmulatorState):
    """The listing as it was before the index: advance every run of the workspace, then filter."""

    def list_runs(self, project_id: int, status: str | None = None) -> list[Run]:
        runs = []
        for run in reversed(self.project_runs.get(project_id, [])):
            self.advance(run)
            if status is None or run.status == status:
                runs.append(run)
        return runs


def listing(state: EmulatorState, params: dict[str, str]) -> Any:
    """Return the ListPipelineRuns body with run IDs (random UUIDs) replaced by creation order."""
    body = list_pipeline_runs(Call("ListPipelineRuns", params, CREDENTIAL, "r", state))
    seq = {run.id: run.seq for run in state.runs.values()}
    for view in body["PagingInfo"]["PipelineRuns"]:
        view["Id"] = seq[view["Id"]]
    return body


def objects(state: EmulatorState) -> list[tuple[Any, ...]]:
    return [
        (p.id, o.id, o.deployed, o.version, o.modify_time)
        for p in state.projects.values()
        for o in p.objects.values()
        if o.id.startswith("bench")
    ]


def outcome(op: str, state: EmulatorState, run: Run, code: str, start: bool) -> str:
    """Apply ``op`` to ``run``; return ``ok`` or the error code it was refused with."""
    try:
        if op == "exec":
            state.exec_stage(run, code)
        elif op == "approve":
            state.approve(run, code, start=start)
        elif op == "abolish":
            state.abolish(run)
        else:
            state.get_run(run.project_id, run.id)
    except ApiError as err:
        return err.code
    return "ok"


@pytest.mark.parametrize("init_seconds", [0.0, 1.0])
@pytest.mark.parametrize("seed", range(4))
def test_indexed_listing_answers_what_a_full_scan_answers(seed: int, init_seconds: float) -> None:
    rng = random.Random(seed)
    clocks = FakeClock(), FakeClock()
    indexed = EmulatorState(default_seed(), stage_seconds=1.0, clock=clocks[0], init_seconds=init_seconds)
    scanning = ScanningState(default_seed(), stage_seconds=1.0, clock=clocks[1], init_seconds=init_seconds)
    both = (indexed, scanning)
    listings = 0

    def run_pair(seq: int) -> tuple[Run, Run]:
        first, second = (next(r for r in s.runs.values() if r.seq == seq) for s in both)
        return first, second

    for step in range(400):
        op = rng.choices(["create", "tick", "exec", "approve", "abolish", "get", "list"], [4, 4, 4, 1, 1, 2, 3])[0]
        runs = len(indexed.runs)
        if op == "create" or runs == 0:
            project_id = rng.choice(PROJECTS)
            run_type = rng.choice(["Online"] * 5 + ["Offline"])
            mode, until = rng.choice([("Normal", None), ("Auto", None), ("Auto", "PROD_CHECK")])
            # Some runs deploy an object another run deploys too: they may finish together.
            shared = [o for o in indexed.project(project_id).objects if o.startswith("bench")]
            object_id = rng.choice(shared) if shared and rng.random() < 0.3 else f"bench{step}"
            spec = {
                "id": object_id,
                "deployed": rng.random() < 0.5,
                "stage_seconds": rng.choice([0, 0.5, 1, 3]),
                "fail_at_stage": rng.choice([None] * 6 + ["BUILD_PACKAGE", "PROD_CHECK", "PROD"]),
                "approval_stages": rng.choice([[]] * 4 + [["PROD_CHECK"]]),
            }
            for state in both:
                project = state.project(project_id)
                if object_id not in project.objects:
                    obj = DwObject.from_json(spec)
                    obj.create_time = obj.modify_time = state.clock()
                    project.add(obj)
                state.create_run(
                    project=project,
                    obj=project.objects[object_id],
                    object_ids=[object_id],
                    run_type=run_type,
                    description=f"step {step}",
                    run_mode=mode,
                    auto_run_until=until,
                    creator=CREDENTIAL.account_id,
                    access_key_id="a",
                    request_id="r",
                    action="CreatePipelineRun",
                )
        elif op == "tick":
            seconds = rng.choice([0.0, 0.25, 0.5, 1.0, 2.5])
            for clock in clocks:
                clock.now += seconds
        elif op in ("exec", "approve", "abolish", "get"):
            pair = run_pair(rng.randint(1, runs))
            code = rng.choice([s.code for s in pair[0].stages])
            start = rng.random() < 0.5  # drawn once: both states get the same call
            results = [outcome(op, state, run, code, start) for state, run in zip(both, pair, strict=True)]
            assert results[0] == results[1], (op, code)
        else:
            listings += 1
            params = {
                "ProjectId": str(rng.choice(PROJECTS)),
                "PageSize": str(rng.choice([1, 7, 100])),
                "PageNumber": str(rng.choice([1, 1, 2, 3])),
            }
            status = rng.choice([None, *STATUSES, "Running", "Running"])
            if status is not None:
                params["Status"] = status
            if rng.random() < 0.2:
                params["Creator"] = CREDENTIAL.account_id
            if rng.random() < 0.3 and indexed.project(int(params["ProjectId"])).objects:
                params["ObjectId"] = rng.choice(sorted(indexed.project(int(params["ProjectId"])).objects))
            assert listing(indexed, params) == listing(scanning, params), (step, params)
            assert objects(indexed) == objects(scanning)

    # After the whole history: every status of every workspace, each in one page.
    for project_id in PROJECTS:
        for status in STATUSES:
            params = {"ProjectId": str(project_id), "PageSize": "100", "Status": status}
            assert listing(indexed, params) == listing(scanning, params)
    assert objects(indexed) == objects(scanning)
    assert listings > 30
    assert {r.status for r in indexed.runs.values()} >= {"Running", "Success", "Fail", "Termination"}


def test_running_pages_over_http_follow_runs_as_they_finish(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    emu.set_stage_seconds(0.0)
    created = [sync_sdk.create(NODE) for _ in range(230)]

    def running_pages() -> tuple[list[int], list[str]]:
        totals, seen = [], []
        for page in (1, 2, 3):
            request = models.ListPipelineRunsRequest(
                project_id=BASIC_PROJECT, status="Running", page_number=page, page_size=100
            )
            paging = sync_sdk("list_pipeline_runs", request).body.paging_info
            totals.append(paging.total_count)
            seen += [r.id for r in paging.pipeline_runs]
        return totals, seen

    assert running_pages() == ([230] * 3, created[::-1])
    finished = created[::23]
    for run_id in finished:
        assert sync_sdk.exec(run_id, "PROD_CHECK")
        assert sync_sdk.exec(run_id, "PROD")
    still_running = [run_id for run_id in created if run_id not in finished]
    assert running_pages() == ([220] * 3, still_running[::-1])
    request = models.ListPipelineRunsRequest(project_id=BASIC_PROJECT, status="Success", page_size=100)
    paging = sync_sdk("list_pipeline_runs", request).body.paging_info
    assert (paging.total_count, [r.id for r in paging.pipeline_runs]) == (10, finished[::-1])
