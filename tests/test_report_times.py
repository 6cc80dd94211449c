"""The report's stage times: DataWorks' ``Detail`` when it gives them, else as the task observed them."""

from __future__ import annotations

from airflow_provider_dataworks.progress import RunProgress
from airflow_provider_dataworks.report import DeploymentReport
from airflow_provider_dataworks.status import PipelineRun, Stage


def run_of(*stages: Stage, status: str = "Running") -> PipelineRun:
    return PipelineRun(id="r", project_id=1, status=status, stages=stages)


def stage(code: str, step: int, status: str, detail: dict | None = None) -> Stage:
    return Stage(code=code, step=step, type="Check", status=status, detail=detail or {})


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_times_come_from_detail_when_dataworks_gives_them():
    done = stage("A", 1, "Success", {"StartTime": 1_000, "FinishTime": 4_500})
    summary = DeploymentReport(run=run_of(done, status="Success"), items=()).summary_xcom()
    row = summary["stages"][0]
    assert (row["duration_seconds"], row["times"]) == (3.5, "dataworks")


def test_times_fall_back_to_the_transitions_the_wait_observed_and_say_so(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("airflow_provider_dataworks.status.time.time", clock)
    progress = RunProgress(advance_stages=False)
    progress.decide(run_of(stage("A", 1, "Init"), stage("B", 2, "Init")))
    clock.now += 2
    progress.decide(run_of(stage("A", 1, "Running"), stage("B", 2, "Init")))
    clock.now += 5
    final = run_of(stage("A", 1, "Success"), stage("B", 2, "Success"), status="Success")
    progress.decide(final)

    rows = DeploymentReport(run=final, items=(), observed=progress.observed_stages).summary_xcom()["stages"]

    assert (rows[0]["duration_seconds"], rows[0]["times"]) == (5.0, "observed")
    # B was never seen running: its finish is known, its duration is not
    assert (rows[1]["start"], rows[1]["duration_seconds"], rows[1]["times"]) == (None, None, "observed")
    assert rows[1]["finish"] is not None
    assert "observed" in DeploymentReport(run=final, items=(), observed=progress.observed_stages).format()


def test_observed_times_survive_the_hand_over_to_the_trigger():
    first = RunProgress(advance_stages=False)
    first.decide(run_of(stage("A", 1, "Running")))
    handed = RunProgress(advance_stages=False, observed=first.observed_stages)
    handed.decide(run_of(stage("A", 1, "Success")))
    start, finish = handed.observed_stages["A"]
    assert start == first.observed_stages["A"][0] and finish is not None and finish >= start


def test_no_time_at_all_is_unknown_not_zero():
    row = DeploymentReport(run=run_of(stage("A", 1, "Init")), items=()).summary_xcom()["stages"][0]
    assert (row["start"], row["finish"], row["duration_seconds"], row["times"]) == (None, None, None, None)
