"""The status rules, as one table, and the stage-driving decisions."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_dataworks.exceptions import PipelineRunFailedError, PipelineRunStoppedError
from airflow_provider_dataworks.progress import RunProgress, StageExecPolicy, Step
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


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_retries_an_unaccepted_stage_after_a_growing_backoff_then_gives_up():
    clock = FakeClock()
    policy = StageExecPolicy(attempts=3, backoff=10, max_backoff=15)
    progress = RunProgress(stage_exec_policy=policy, clock=clock)
    r = run("Running", ("A", "Success"), ("B", "Init"))
    executions = []
    decision = progress.decide(r)
    for _ in range(2000):  # one read per second for 2000 s
        decision = progress.decide(r)
        if decision.step is Step.FAIL:
            break
        if decision.step is Step.EXECUTE:
            executions.append(clock.now - 1000)
            if len(executions) % 2:
                progress.refused(decision.stage, RuntimeError("refused"))
            else:
                progress.not_started(decision.stage)
        clock.now += 1
    # backoffs 10, 15 (capped), then the wait gives up: no hours of waiting on refusals
    assert executions == [0, 10, 25]
    assert decision.step is Step.FAIL and decision.stage.code == "B"
    assert "after 3 executions" in decision.reason and "waiting does not help" in decision.reason
    assert clock.now - 1000 == 26  # the first read after the third refusal
    assert progress.exec_failures == {"B": 3}


def test_progress_never_executes_an_accepted_running_or_init_run_stage():
    progress = RunProgress(stage_exec_policy={"backoff": 0, "attempts": 2})
    waiting = run("Running", ("A", "Success"), ("B", "Init"))
    decision = progress.decide(waiting)
    assert decision.step is Step.EXECUTE
    progress.not_started(decision.stage)
    assert progress.decide(waiting).step is Step.EXECUTE  # no backoff configured
    progress.executed(decision.stage)
    assert progress.decide(waiting).step is Step.WAIT  # accepted: "is starting", never again
    assert progress.exec_failures == {}
    assert RunProgress().decide(run("Running", ("A", "Success"), ("B", "Running"))).step is Step.WAIT
    initialising = RunProgress().decide(run("Init", ("A", "Init"), ("B", "Init")))
    assert initialising.step is Step.WAIT and "being prepared" in initialising.reason


def test_progress_resumes_the_backoff_it_is_handed():
    clock = FakeClock()
    policy = {"attempts": 2, "backoff": 5, "max_backoff": 5}
    r = run("Running", ("A", "Success"), ("B", "Init"))
    resumed = RunProgress(stage_exec_policy=policy, exec_failures={"B": 1}, clock=clock)
    assert resumed.decide(r).step is Step.WAIT
    clock.now += 5
    assert resumed.decide(r).step is Step.EXECUTE
    # the attempts were spent before the hand-over: the wait gives up at once
    spent = RunProgress(stage_exec_policy=policy, exec_failures={"B": 2}, clock=clock)
    decision = spent.decide(r)
    assert decision.step is Step.FAIL and "after 2 executions" in decision.reason


def test_progress_says_when_its_decision_on_an_unchanged_run_may_change():
    """A quiet wait is woken after recheck_in: exactly when a refused stage's backoff ends, never otherwise."""
    clock = FakeClock()
    policy = StageExecPolicy(attempts=2, backoff=10, max_backoff=10)
    progress = RunProgress(stage_exec_policy=policy, clock=clock)
    waiting = run("Running", ("A", "Success"), ("B", "Init"))
    assert progress.recheck_in(waiting) is None  # nothing refused: only a change changes the decision

    progress.not_started(progress.decide(waiting).stage)
    clock.now += 4
    assert progress.recheck_in(waiting) == 6
    assert progress.decide(waiting).step is Step.WAIT
    clock.now += 6
    assert progress.recheck_in(waiting) == 0
    assert progress.decide(waiting).step is Step.EXECUTE

    progress.not_started(waiting.stage("B"))  # attempts spent: the wait gives up, no timer to wait for
    assert progress.recheck_in(waiting) is None
    # B was started in the console: the refused record no longer concerns the run's next stage
    assert progress.recheck_in(run("Running", ("A", "Success"), ("B", "Running"))) is None


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"attempts": 0}, "attempts"),
        ({"backoff": -1}, "backoff"),
        ({"retries": 3}, "retries"),
        ({"attempts": True}, "attempts"),
    ],
)
def test_stage_exec_policy_names_the_bad_field(policy, field):
    with pytest.raises(ValueError, match=field):
        StageExecPolicy.coerce(policy)
    assert StageExecPolicy.coerce(StageExecPolicy(attempts=2).to_dict()) == StageExecPolicy(attempts=2)


def test_check_only_executes_only_build_and_check_stages():
    """An allow-list: a Delete stage (or any type DataWorks adds) ends a check-only run's checks."""
    delete_first = RunProgress(check_only=True)
    stages = [("B", "Success", "Build"), ("C", "Init", "Check"), ("X", "Init", "Delete"), ("P", "Init", "Deploy")]
    r = typed_run("Running", *stages)
    decision = delete_first.decide(r)
    assert decision.step is Step.EXECUTE and decision.stage.code == "C"
    delete_first.executed(decision.stage)
    done = typed_run("Running", ("B", "Success", "Build"), ("C", "Success", "Check"), *stages[2:])
    assert delete_first.decide(done).step is Step.SUCCEED
    assert typed_run("Running", *stages).last_check_stage.code == "C"
    unknown = typed_run("Running", ("B", "Success", "Build"), ("N", "Init", "Notify"), ("C", "Init", "Check"))
    assert unknown.last_check_stage.code == "B"
    no_check = RunProgress(check_only=True).decide(typed_run("Running", ("X", "Init", "Delete")))
    assert no_check.step is Step.FAIL and "no Build or Check stage" in no_check.reason


def test_a_run_stopped_by_someone_fails_without_retry_naming_it():
    stopped = run("Termination", ("A", "Success"), ("B", "Termination"))
    decision = RunProgress().decide(stopped)
    assert decision.step is Step.FAIL
    with pytest.raises(PipelineRunStoppedError, match="stopped outside this task") as caught:
        decision.raise_for_failure(stopped)
    assert isinstance(caught.value, AirflowFailException)
    failed = run("Fail", ("A", "Fail"))
    with pytest.raises(PipelineRunFailedError) as plain:
        RunProgress().decide(failed).raise_for_failure(failed)
    assert not isinstance(plain.value, AirflowFailException)


def test_a_run_without_stages_is_never_decided_on():
    bare = PipelineRun(id="r", project_id=1, status="Running")
    decision = RunProgress(advance_until_stage="DEV").decide(bare)
    assert decision.step is Step.WAIT and "no stages" in decision.reason


def test_progress_fails_on_a_target_the_run_does_not_have():
    decision = RunProgress(advance_until_stage="DEV").decide(run("Running", ("A", "Success"), ("B", "Init")))
    assert decision.step is Step.FAIL and "DEV" in decision.reason


def typed_run(status, *stages):
    return PipelineRun(
        id="r",
        project_id=1,
        status=status,
        stages=tuple(Stage(code=c, step=i, type=t, status=st) for i, (c, st, t) in enumerate(stages, 1)),
    )


def test_progress_reports_failure_and_success():
    assert RunProgress().decide(run("Fail", ("A", "Fail"))).step is Step.FAIL
    assert RunProgress().decide(run("Success", ("A", "Success"))).step is Step.SUCCEED


def test_two_reads_are_the_same_state_when_only_the_request_id_differs():
    base = run("Running", ("A", "Success"), ("B", "Init"))
    assert base.same_state(dataclasses.replace(base, request_id="another-read"))
    assert not base.same_state(run("Running", ("A", "Success"), ("B", "Running")))
    assert not base.same_state(dataclasses.replace(base, modify_time_ms=2))
    assert not base.same_state(dataclasses.replace(base, message="checked"))
    changed_detail = dataclasses.replace(
        base, stages=(base.stages[0], dataclasses.replace(base.stages[1], detail={"StartTime": 1}))
    )
    assert not base.same_state(changed_detail)
