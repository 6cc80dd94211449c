"""Run memory that knows DAG-run attempts: retries adopt, clears and re-created DAG runs deploy anew.

Each test counts the object's pipeline runs at the emulator, the stages started
(``ExecPipelineRunStage``), the ``ListPipelineRuns`` calls, and the task's outcome. "store" is
Airflow 3.3's task state store; "tag_only" is every version below (the Description tag alone).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from compat.versions import AIRFLOW_V_3_3_PLUS

from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.reattach import description_attempt, description_tag

from .support import BASIC, FAST_RETRIES, NODE, POLL, TaskInstance, count_calls, run_task, runs_of

MODES = ["sync", "deferrable"]
STORES = pytest.mark.parametrize("with_store", [True, False], ids=["store", "tag_only"])
ABOLISHED = {"Termination", "Cancel"}
#: the task's retries, the same for the operator and its task instance (``max_tries`` follows them)
RETRIES = 2


def make(mode: str = "sync", **kwargs):
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("object_id", NODE)
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    kwargs.setdefault("retries", RETRIES)
    kwargs["deferrable"] = mode == "deferrable"
    return lambda: CreatePipelineRunOperator(**kwargs)


def statuses(emu) -> list[str]:
    return [run["status"] for run in runs_of(emu, NODE)]


@pytest.mark.parametrize("mode", MODES)
@STORES
def test_the_first_try_of_a_fresh_task_instance_never_lists(emu, conn, mode, with_store):
    ti = TaskInstance(with_store=with_store, retries=RETRIES)
    DataWorksHook().create_pipeline_run(NODE, project_id=BASIC, description="someone else's, still going")

    result = run_task(make(mode), ti.context(try_number=1))

    runs = {run["id"]: run["status"] for run in runs_of(emu, NODE)}
    assert len(runs) == 2 and runs[result] == "Success"
    assert count_calls(emu, "ListPipelineRuns") == 0


@pytest.mark.parametrize("mode", MODES)
@STORES
def test_a_clear_of_a_succeeded_deploy_deploys_anew(emu, conn, mode, with_store):
    ti = TaskInstance(with_store=with_store, retries=RETRIES)
    first = run_task(make(mode), ti.context(try_number=1))
    stages_first = count_calls(emu, "ExecPipelineRunStage")
    assert stages_first > 0

    ti.clear(try_number=1)  # the user clears the finished task: dag_run.clear_number grows
    second = run_task(make(mode), ti.context(try_number=2))

    runs = runs_of(emu, NODE)
    assert second != first
    assert [run["status"] for run in runs] == ["Success", "Success"]
    assert count_calls(emu, "ExecPipelineRunStage") == 2 * stages_first  # every stage started again
    assert description_tag(runs[0]["description"]) == description_tag(runs[1]["description"])
    assert description_attempt(runs[0]["description"]) != description_attempt(runs[1]["description"])
    # with the store its record answers; without, only the object's ACTIVE runs are listed (Running, Init)
    assert count_calls(emu, "ListPipelineRuns") == (0 if with_store and AIRFLOW_V_3_3_PLUS else 2)


@STORES
def test_a_retry_after_the_clear_adopts_the_new_attempts_run(emu, conn, with_store):
    ti = TaskInstance(with_store=with_store, retries=RETRIES)
    run_task(make(), ti.context(try_number=1))
    ti.clear(try_number=1)
    second = make(wait_for_completion=False)().execute(ti.context(try_number=2))

    third = run_task(make(), ti.context(try_number=3))  # a retry within the new attempt

    assert third == second
    assert statuses(emu) == ["Success", "Success"]


@STORES
def test_a_clear_of_a_running_deploy_that_was_killed_deploys_anew(emu, conn, with_store):
    emu.set_stage_seconds(30)
    ti = TaskInstance(with_store=with_store, retries=RETRIES)
    running = make(wait_for_completion=False)()
    first = running.execute(ti.context(try_number=1))
    running.on_kill()  # clearing a running task kills it; cancel_on_kill abolishes its run

    ti.clear(try_number=1, dag_run_finished=False)
    emu.set_stage_seconds(0.01)
    second = run_task(make(), ti.context(try_number=2))

    runs = {run["id"]: run["status"] for run in runs_of(emu, NODE)}
    assert second != first
    assert runs[first] in ABOLISHED and runs[second] == "Success"
    assert count_calls(emu, "CreatePipelineRun") == 2


@pytest.mark.parametrize("mode", MODES)
@STORES
def test_a_clear_of_a_running_deploy_adopts_the_run_still_going(emu, conn, mode, with_store):
    emu.set_stage_seconds(1.0)  # still going when the cleared task starts again
    ti = TaskInstance(with_store=with_store, retries=RETRIES)
    running = make(mode, wait_for_completion=False, cancel_on_kill=False)()
    first = running.execute(ti.context(try_number=1))
    running.on_kill()  # cancel_on_kill=False: the run goes on

    ti.clear(try_number=1, dag_run_finished=False)
    emu.set_stage_seconds(0.01)
    second = run_task(make(mode), ti.context(try_number=2))

    assert second == first  # never two deployments of one object at once by one task
    assert statuses(emu) == ["Success"]
    assert count_calls(emu, "CreatePipelineRun") == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("store", ["store_survived", "no_store"])
def test_a_recreated_dag_run_with_the_same_run_id_deploys_anew(emu, conn, mode, store):
    ti = TaskInstance(with_store=store == "store_survived", retries=RETRIES)
    first = run_task(make(mode), ti.context(try_number=1))

    again = ti.recreate()  # DAG run deleted, triggered again with the same run_id
    if store == "store_survived":
        again.state.store = ti.state.store  # the worst case: the old record is still there
    second = run_task(make(mode), again.context(try_number=1))

    assert second != first
    assert statuses(emu) == ["Success", "Success"]
    assert count_calls(emu, "ListPipelineRuns") == 0


def test_a_lost_create_after_a_clear_is_reconciled_to_the_new_run(emu, conn):
    ti = TaskInstance(with_store=False, retries=RETRIES)
    first = run_task(make(), ti.context(try_number=1))
    ti.clear(try_number=1)
    emu.inject_fault(action="CreatePipelineRun", kind="commit_then_drop", count=1)

    second = run_task(make(), ti.context(try_number=2))

    assert second != first
    assert statuses(emu) == ["Success", "Success"]
    assert count_calls(emu, "CreatePipelineRun") == 1 + 1  # the lost one was found, not resubmitted


def test_a_retry_stops_paging_at_runs_older_than_the_attempt(emu, conn):
    hook = DataWorksHook()
    for _ in range(250):  # the object's history before this DAG run: three pages
        hook.create_pipeline_run(NODE, project_id=BASIC, description="an older deployment")
    # this DAG run started after them (by more than the allowed clock skew)
    ti = TaskInstance(with_store=False, retries=RETRIES, dag_run_start=datetime.now(UTC) + timedelta(minutes=11))
    first = make(wait_for_completion=False)().execute(ti.context(try_number=1))

    second = run_task(make(), ti.context(try_number=2))

    assert second == first
    assert len(runs_of(emu, NODE)) == 251
    assert count_calls(emu, "ListPipelineRuns") == 1  # page 1 holds the attempt; older pages are not read


def test_a_retry_reads_every_page_while_runs_are_newer_than_the_attempt(emu, conn):
    ti = TaskInstance(with_store=False, retries=RETRIES)
    first = make(wait_for_completion=False)().execute(ti.context(try_number=1))
    hook = DataWorksHook()
    for _ in range(105):  # pushed onto page 2 by newer runs of the same object
        hook.create_pipeline_run(NODE, project_id=BASIC, description="someone else")

    assert run_task(make(), ti.context(try_number=2)) == first
    assert count_calls(emu, "ListPipelineRuns") == 2


# ---------------------------------------------------------------------------- the blocking path is ResumableJobMixin


@pytest.fixture
def mixin_decisions(monkeypatch):
    """The ``resumable_job.*`` counters ResumableJobMixin emits (Airflow's own metrics), in order."""
    from unittest import mock

    from airflow.sdk.bases import resumablejobmixin

    seen: list[str] = []
    incr = mock.create_autospec(resumablejobmixin.stats.incr, side_effect=lambda name, **kw: seen.append(name))
    monkeypatch.setattr(resumablejobmixin.stats, "incr", incr)
    return seen


@pytest.mark.min_airflow("3.3")  # Airflow 3.3's own ResumableJobMixin and its metrics
def test_the_blocking_path_is_resumable_job_mixin(emu, conn, mixin_decisions):
    from airflow.sdk import ResumableJobMixin

    assert issubclass(CreatePipelineRunOperator, ResumableJobMixin)
    ti = TaskInstance(retries=RETRIES)
    first = make()().execute(ti.context(try_number=1))
    again = make()().execute(ti.context(try_number=2))  # a retry after success
    ti.clear(try_number=2)
    third = make()().execute(ti.context(try_number=3))  # a clear: the stored success is an earlier attempt's

    assert again == first != third
    assert statuses(emu) == ["Success", "Success"]
    assert mixin_decisions == [
        "resumable_job.fresh_submit",
        "resumable_job.reconnect_attempt",
        "resumable_job.already_succeeded",
        "resumable_job.reconnect_attempt",
        "resumable_job.terminal_resubmit",
    ]


@pytest.mark.min_airflow("3.3")  # Airflow 3.3's own ResumableJobMixin and its metrics
def test_the_mixin_reconnects_to_an_active_run_and_returns_its_id(emu, conn, mixin_decisions):
    ti = TaskInstance(retries=RETRIES)
    first = make(wait_for_completion=False)().execute(ti.context(try_number=1))

    assert make()().execute(ti.context(try_number=2)) == first
    assert statuses(emu) == ["Success"]
    assert "resumable_job.reconnect_success" in mixin_decisions
    assert ti.state.xcom["pipeline_run_id"] == first


@pytest.mark.min_airflow("3.3")  # Airflow 3.3's own ResumableJobMixin and its metrics
def test_durable_false_leaves_the_store_out_and_the_tag_still_adopts(emu, conn, mixin_decisions):
    ti = TaskInstance(retries=RETRIES)
    first = make(durable=False)().execute(ti.context(try_number=1))
    reads = [call for call in ti.state.store_calls if call[0] == "get"]

    assert make(durable=False)().execute(ti.context(try_number=2)) == first
    assert [call for call in ti.state.store_calls if call[0] == "get"] == reads == []
    assert statuses(emu) == ["Success"]
    assert count_calls(emu, "ListPipelineRuns") == 1  # the retry found its run by the tag
    assert mixin_decisions == []  # durable=False: the mixin submits; our submit_job adopts


@pytest.mark.parametrize("mode", MODES)
@STORES
def test_a_retry_after_another_tasks_clear_adopts_its_own_succeeded_run(emu, conn, mode, with_store):
    # Found by the production e2e: clearing ANOTHER task of the DAG run bumps the DAG run's
    # clear_number and restarts it (a new start_date); this task instance was not cleared, so its
    # retry (its worker died after the run succeeded) is the same attempt and must not redeploy.
    ti = TaskInstance(with_store=with_store, retries=RETRIES)
    first = run_task(make(mode), ti.context(try_number=1))
    ti.clear_number += 1  # a neighbour's clear: this task instance's max_tries stays as it was
    ti.dag_run_start = datetime.now(UTC) + timedelta(seconds=1)

    second = run_task(make(mode), ti.context(try_number=2))

    assert second == first
    assert statuses(emu) == ["Success"]
    assert count_calls(emu, "CreatePipelineRun") == 1
