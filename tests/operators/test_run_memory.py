"""Run memory that knows DAG-run attempts: retries adopt, clears and re-created DAG runs deploy anew.

Each test counts the object's pipeline runs at the emulator, the stages started
(``ExecPipelineRunStage``), the ``ListPipelineRuns`` calls, and the task's outcome. "store" is
Airflow 3.3's task state store; "tag_only" is every version below (the Description tag alone).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.reattach import description_attempt, description_tag

from .support import BASIC, FAST_RETRIES, NODE, POLL, TaskInstance, count_calls, run_task, runs_of

MODES = ["sync", "deferrable"]
STORES = pytest.mark.parametrize("with_store", [True, False], ids=["store", "tag_only"])
ABOLISHED = {"Termination", "Cancel"}


def make(mode: str = "sync", **kwargs):
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("object_id", NODE)
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    kwargs["deferrable"] = mode == "deferrable"
    return lambda: CreatePipelineRunOperator(**kwargs)


def statuses(emu) -> list[str]:
    return [run["status"] for run in runs_of(emu, NODE)]


@pytest.mark.parametrize("mode", MODES)
@STORES
def test_the_first_try_of_a_fresh_task_instance_never_lists(emu, conn, mode, with_store):
    ti = TaskInstance(with_store=with_store, retries=3)
    DataWorksHook().create_pipeline_run(NODE, project_id=BASIC, description="someone else's, still going")

    result = run_task(make(mode), ti.context(try_number=1))

    runs = {run["id"]: run["status"] for run in runs_of(emu, NODE)}
    assert len(runs) == 2 and runs[result] == "Success"
    assert count_calls(emu, "ListPipelineRuns") == 0


@pytest.mark.parametrize("mode", MODES)
@STORES
def test_a_clear_of_a_succeeded_deploy_deploys_anew(emu, conn, mode, with_store):
    ti = TaskInstance(with_store=with_store, retries=2)
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
    assert count_calls(emu, "ListPipelineRuns") == (0 if with_store else 2)


@STORES
def test_a_retry_after_the_clear_adopts_the_new_attempts_run(emu, conn, with_store):
    ti = TaskInstance(with_store=with_store, retries=2)
    run_task(make(), ti.context(try_number=1))
    ti.clear(try_number=1)
    second = make(wait_for_completion=False)().execute(ti.context(try_number=2))

    third = run_task(make(), ti.context(try_number=3))  # a retry within the new attempt

    assert third == second
    assert statuses(emu) == ["Success", "Success"]


@STORES
def test_a_clear_of_a_running_deploy_that_was_killed_deploys_anew(emu, conn, with_store):
    emu.set_stage_seconds(30)
    ti = TaskInstance(with_store=with_store, retries=1)
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
    ti = TaskInstance(with_store=with_store, retries=1)
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
    ti = TaskInstance(with_store=store == "store_survived")
    first = run_task(make(mode), ti.context(try_number=1))

    again = ti.recreate()  # DAG run deleted, triggered again with the same run_id
    if store == "store_survived":
        again.state.store = ti.state.store  # the worst case: the old record is still there
    second = run_task(make(mode), again.context(try_number=1))

    assert second != first
    assert statuses(emu) == ["Success", "Success"]
    assert count_calls(emu, "ListPipelineRuns") == 0


def test_a_lost_create_after_a_clear_is_reconciled_to_the_new_run(emu, conn):
    ti = TaskInstance(with_store=False, retries=1)
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
    ti = TaskInstance(with_store=False, dag_run_start=datetime.now(UTC) + timedelta(minutes=11))
    first = make(wait_for_completion=False)().execute(ti.context(try_number=1))

    second = run_task(make(), ti.context(try_number=2))

    assert second == first
    assert len(runs_of(emu, NODE)) == 251
    assert count_calls(emu, "ListPipelineRuns") == 1  # page 1 holds the attempt; older pages are not read


def test_a_retry_reads_every_page_while_runs_are_newer_than_the_attempt(emu, conn):
    ti = TaskInstance(with_store=False)
    first = make(wait_for_completion=False)().execute(ti.context(try_number=1))
    hook = DataWorksHook()
    for _ in range(105):  # pushed onto page 2 by newer runs of the same object
        hook.create_pipeline_run(NODE, project_id=BASIC, description="someone else")

    assert run_task(make(), ti.context(try_number=2)) == first
    assert count_calls(emu, "ListPipelineRuns") == 2
