"""The status rules, as one table, and the stage-driving decisions."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_dataworks.progress import RunProgress, Step
from airflow_provider_dataworks.status import PipelineRun, Stage


def run(status: str, *stages: tuple[str, str], message: str = "") -> PipelineRun:
    return PipelineRun(
        id="run-1",
        project_id=10000,
        status=status,
        message=message,
        stages=tuple(
            Stage(code=code, step=index, type="Check", status=stage_status)
            for index, (code, stage_status) in enumerate(stages, start=1)
        ),
    )


@pytest.mark.parametrize(
    ("status", "terminal", "success", "failed"),
    [
        ("Init", False, False, False),
        ("Running", False, False, False),
        ("Success", True, True, False),
        ("Fail", True, False, True),
        ("Termination", True, False, True),
        ("Cancel", True, False, True),
        ("Paused", False, False, False),  # unknown to us: keep waiting
        ("", False, False, False),
    ],
)
def test_status_table(status, terminal, success, failed):
    r = run(status)
    assert (r.is_terminal, r.is_success, r.is_failed) == (terminal, success, failed)


def test_unknown_status_is_logged_once(caplog):
    with caplog.at_level(logging.WARNING):
        run("Frozen").is_terminal
        run("Frozen").is_terminal
    assert caplog.text.count("'Frozen'") == 1


def test_next_stage_only_after_every_earlier_stage_succeeded():
    assert run("Running", ("A", "Success"), ("B", "Init"), ("C", "Init")).next_stage_to_execute.code == "B"
    assert run("Running", ("A", "Running"), ("B", "Init")).next_stage_to_execute is None
    assert run("Running", ("A", "Success"), ("B", "Running")).next_stage_to_execute is None
    assert run("Fail", ("A", "Success"), ("B", "Init")).next_stage_to_execute is None
    assert run("Weird", ("A", "Init")).next_stage_to_execute is None


def test_stages_are_ordered_by_step_not_by_position():
    r = PipelineRun(
        id="r",
        project_id=1,
        status="Running",
        stages=(
            Stage("PROD", 3, "Deploy", "Init"),
            Stage("BUILD", 1, "Build", "Success"),
            Stage("CHK", 2, "Check", "Init"),
        ),
    )
    assert r.next_stage_to_execute.code == "CHK"


def test_failure_description_names_stage_messages_and_request_id():
    r = PipelineRun(
        id="run-9",
        project_id=1,
        status="Fail",
        message="deployment failed",
        request_id="REQ-1",
        stages=(Stage("PROD_CHECK", 2, "Check", "Fail", message="bad SQL"),),
    )
    text = r.describe_failure()
    for part in ("run-9", "Fail", "PROD_CHECK", "type Check", "step 2", "bad SQL", "deployment failed", "REQ-1"):
        assert part in text


def test_api_round_trip():
    r = run("Running", ("A", "Success"), ("B", "Init"))
    assert PipelineRun.from_api(r.to_api()) == r


def test_progress_executes_each_stage_once_and_stops_at_target():
    progress = RunProgress(advance_until_stage="B")
    first = progress.decide(run("Running", ("A", "Success"), ("B", "Init"), ("C", "Init")))
    assert first.step is Step.EXECUTE and first.stage.code == "B"
    progress.executed(first.stage)
    # exec is asynchronous: B may still read Init; never execute it twice
    assert progress.decide(run("Running", ("A", "Success"), ("B", "Init"), ("C", "Init"))).step is Step.WAIT
    assert progress.decide(run("Running", ("A", "Success"), ("B", "Success"), ("C", "Init"))).step is Step.SUCCEED


def test_progress_never_executes_beyond_the_target_or_when_disabled():
    assert (
        RunProgress(advance_until_stage="A").decide(run("Running", ("A", "Running"), ("B", "Init"))).step is Step.WAIT
    )
    waiting = RunProgress(advance_stages=False).decide(run("Running", ("A", "Success"), ("B", "Init")))
    assert waiting.step is Step.WAIT and "advance_stages is off" in waiting.reason


def test_progress_refused_stage_is_not_retried_and_is_explained():
    progress = RunProgress()
    r = run("Running", ("A", "Success"), ("B", "Init"))
    decision = progress.decide(r)
    progress.refused(decision.stage, RuntimeError("needs approval"))
    again = progress.decide(r)
    assert again.step is Step.WAIT
    assert "needs approval" in again.reason and "console" in again.reason


def test_progress_fails_on_a_target_the_run_does_not_have():
    decision = RunProgress(advance_until_stage="DEV").decide(run("Running", ("A", "Success"), ("B", "Init")))
    assert decision.step is Step.FAIL and "DEV" in decision.reason


def test_progress_reports_failure_and_success():
    assert RunProgress().decide(run("Fail", ("A", "Fail"))).step is Step.FAIL
    assert RunProgress().decide(run("Success", ("A", "Success"))).step is Step.SUCCEED
