"""Exactly one deployment per task, on a production-shaped Airflow, while its parts die.

PostgreSQL, CeleryExecutor on Redis, two triggerers, two Celery workers, the emulator over HTTPS.
One session fixture (``chaos``) runs the chaos DAG (sync and deferrable mapped deployments) and
every example DAG while a triggerer and a worker are SIGKILLed, the scheduler restarts, one
succeeded deployment is cleared and one deferred deployment is marked failed (see ``chaos.py``).
The tests read what it collected; the report is ``build/e2e-prod-report.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e.airflow_stack import format_log, wait_for_triggerer_line

from airflow_provider_dataworks._compat import AIRFLOW_V_3_3_PLUS

from .chaos import (
    ACTIVE_RUN_STATUSES,
    CHAOS_DAG_ID,
    FAILED_RUN_STATUSES,
    REPORT_PATH,
    ChaosResult,
    Deployment,
    task_log_folder,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900, method="signal")]


def _log_files(chaos: ChaosResult, d: Deployment) -> list[Path]:
    """The log files of one chaos task instance: worker attempts and trigger logs (``….trigger.<job id>.log``)."""
    assert chaos.logs_dir is not None
    return sorted(task_log_folder(chaos.logs_dir, chaos.chaos_run_id, d).glob("attempt=*"))


def test_report_is_written_with_the_figures(chaos: ChaosResult) -> None:
    print(f"\ne2e-prod report: {REPORT_PATH}")
    report = json.loads(REPORT_PATH.read_text())
    assert report == json.loads(json.dumps(chaos.report)), "the report on disk is not this session's"
    plan = chaos.plan
    assert report["deployments"] == len(plan.deployments) >= 20
    assert report["succeeded"] == report["deployments"] - 1, chaos.timeline
    assert report["duplicates"] == 0
    assert report["stage_starts_max"] == 1
    assert report["left_running"] == 0
    assert report["triggerer_killed"] is True
    assert report["worker_killed"] is True
    assert report["scheduler_restarted"] is True
    assert report["triggers_moved"] >= 1
    assert report["tasks_retried"] >= len(report["worker_killed_tasks"]) >= 2
    assert report["seconds"] > 0


def test_the_components_kept_to_the_accounts_quota(chaos: ChaosResult) -> None:
    """Two triggerers and two workers share the emulator's 5 QPS through the shared budget: few 429s.

    ``peak_calls_per_second`` (every call that arrived in a second, throttled or not) is recorded only.
    """
    report = chaos.report
    assert report["account_qps"] == 5
    assert report["api_calls"] > 0
    # not zero: a call delayed on its way (TLS, a busy core) can land in the next second's window
    assert report["throttled_share"] <= 0.02, (report["throttled"], report["api_calls"])


def test_the_runs_ended_as_expected(chaos: ChaosResult) -> None:
    # the marked-failed deployment fails the chaos DAG run; every example succeeds
    assert chaos.chaos_state == "failed", chaos.timeline
    assert chaos.example_states == dict.fromkeys(chaos.example_states, "success"), chaos.example_states
    states = {key: ti["state"] for key, ti in chaos.task_instances.items()}
    expected = dict.fromkeys((d.key for d in chaos.plan.deployments), "success")
    expected[chaos.plan.fail_target.key] = "failed"
    assert states == expected


def test_every_deployment_succeeds_except_the_one_marked_failed(chaos: ChaosResult) -> None:
    fail_target = chaos.plan.fail_target
    for d in chaos.plan.deployments:
        runs = chaos.runs_of(d.object_id)
        assert runs, f"{d.key}: no pipeline run of {d.object_id}"
        if d is fail_target:
            continue
        assert [r.status for r in runs] == ["Success"] * len(runs), f"{d.key}: {[r.raw for r in runs]}"


def test_the_marked_failed_deployment_has_its_run_abolished(chaos: ChaosResult) -> None:
    d = chaos.plan.fail_target
    assert chaos.marked_failed_run, chaos.timeline
    (run,) = chaos.runs_of(d.object_id)
    assert run.id == chaos.marked_failed_run
    if AIRFLOW_V_3_3_PLUS:
        # the trigger's on_kill (Airflow 3.3+) abolished it, on the triggerer that held it then
        assert run.status in FAILED_RUN_STATUSES - {"Fail"}, run.raw
        assert chaos.component_logs is not None
        try_number = chaos.task_instances[d.key]["try_number"]
        entries, cancelled = wait_for_triggerer_line(
            chaos.client,
            chaos.component_logs,
            CHAOS_DAG_ID,
            chaos.chaos_run_id,
            d.task_id,
            try_number,
            d.map_index,
            event="Trigger cancelled by user action, invoking on_kill",
        )
        assert cancelled is not None, (
            f"{d.key}: the triggerer did not say it cancelled the trigger:\n{format_log(entries)}"
        )
    else:
        assert run.status in {"Success", *FAILED_RUN_STATUSES}, run.raw


def test_one_pipeline_run_per_object_per_dag_run_attempt(chaos: ChaosResult) -> None:
    # the cleared deployment's second attempt: test_the_cleared_deployment_was_deployed_again
    cleared = chaos.plan.clear_target.object_id
    counts = {d.object_id: len(chaos.runs_of(d.object_id)) for d in chaos.plan.deployments if d.object_id != cleared}
    assert counts == dict.fromkeys(counts, 1)
    assert 1 <= len(chaos.runs_of(cleared)) <= 2
    assert chaos.report["duplicates"] == 0
    # every create the emulator answered made a run: no create was repeated behind a lost answer
    answered = [c for c in chaos.create_calls if c["status"] == 200]
    assert len(answered) == len(chaos.emulator_runs), chaos.create_calls


def test_the_cleared_deployment_was_deployed_again(chaos: ChaosResult) -> None:
    d = chaos.plan.clear_target
    runs = chaos.runs_of(d.object_id)
    assert [r.id for r in runs][:1] == [chaos.cleared_first_run], chaos.timeline
    assert len(runs) == 2, f"clearing succeeded {d.key} did not deploy again: {[r.raw for r in runs]}"
    assert chaos.report["cleared_redeployed"] is True
    second = runs[1]
    assert second.status == "Success", second.raw
    ti = chaos.task_instances[d.key]
    assert ti["try_number"] >= 2, ti
    xcom = chaos.client.xcom(CHAOS_DAG_ID, chaos.chaos_run_id, d.task_id, "pipeline_run_id", d.map_index)
    assert str(xcom) == second.id


def test_every_stage_started_exactly_once(chaos: ChaosResult) -> None:
    for run in chaos.emulator_runs:
        started = [s for s in run.raw["stages"] if s["start_time"] is not None]
        assert all(s["start_requests"] == 1 for s in started), run.raw["stages"]
        assert all(s["start_requests"] == 0 for s in run.raw["stages"] if s["start_time"] is None), run.raw
        if run.status == "Success":
            assert len(started) == len(run.raw["stages"]), run.raw


def test_no_run_is_left_init_or_running(chaos: ChaosResult) -> None:
    assert [r.raw for r in chaos.emulator_runs if r.status in ACTIVE_RUN_STATUSES] == []


def test_xcoms_name_the_right_runs(chaos: ChaosResult) -> None:
    for d in chaos.plan.deployments:
        latest = chaos.runs_of(d.object_id)[-1]
        xcom = chaos.client.xcom(CHAOS_DAG_ID, chaos.chaos_run_id, d.task_id, "pipeline_run_id", d.map_index)
        assert str(xcom) == latest.id, (
            f"{d.key}: XCom {xcom!r}, emulator runs {[r.id for r in chaos.runs_of(d.object_id)]}"
        )
        assert latest.project_id == "10000"


def test_killed_worker_tasks_retried_and_adopted_their_runs(chaos: ChaosResult) -> None:
    assert chaos.killed_worker, chaos.timeline
    by_key = chaos.plan.by_key()
    for key in chaos.killed_worker_tasks:
        ti = chaos.task_instances[key]
        assert ti["state"] == "success" and ti["try_number"] >= 2, ti
        assert len(chaos.runs_of(by_key[key].object_id)) == 1


def test_killed_triggerers_triggers_resumed_on_the_other_one(chaos: ChaosResult) -> None:
    assert chaos.killed_triggerer and chaos.held_triggers, chaos.timeline
    # trigger table: every trigger the dead triggerer held that was still waiting got a new owner
    assert chaos.moved_triggers, f"no trigger of {chaos.killed_triggerer} moved: {chaos.timeline}"
    assert set(chaos.moved_triggers.values()) == {chaos.survivor_job}
    assert chaos.survivor_job != chaos.killed_triggerer_job
    # task logs: the survivor ran the trigger (its own trigger log file) and fired the event
    by_key = chaos.plan.by_key()
    for key in {chaos.held_triggers[t] for t in chaos.moved_triggers}:
        d = by_key[key]
        files = {p.name for p in _log_files(chaos, d)}
        assert any(name.endswith(f".trigger.{chaos.survivor_job}.log") for name in files), (key, files)
        if d is chaos.plan.fail_target:
            continue
        try_number = chaos.task_instances[key]["try_number"]
        assert chaos.component_logs is not None
        entries, fired = wait_for_triggerer_line(
            chaos.client, chaos.component_logs, CHAOS_DAG_ID, chaos.chaos_run_id, d.task_id, try_number, d.map_index
        )
        assert fired is not None, f"{key}: no trigger event in its log nor the triggerers':\n{format_log(entries)}"
