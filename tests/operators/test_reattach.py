"""Exactly one deployment per task instance: the reattach / reconcile fault matrix.

Every test counts the object's pipeline runs in the emulator and checks the task's outcome.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from compat.versions import AIRFLOW_V_3_3_PLUS

from airflow_provider_dataworks.exceptions import (
    PipelineRunAmbiguousCreateError,
    PipelineRunFailedError,
    PipelineRunTimeoutError,
)
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.reattach import STATE_KEY, description_tag, task_tag

from .support import (
    ACTIVE,
    BASIC,
    FAST_RETRIES,
    NODE,
    NODE_3,
    POLL,
    STORES_OF_THE_MATRIX,
    TaskInstance,
    count_calls,
    only_run,
    run_task,
    runs_of,
)

FLAKY_NODE = "8600000000000000077"
MODES = ["sync", "deferrable"]


def make(mode: str = "sync", **kwargs):
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("object_id", NODE)
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    kwargs["deferrable"] = mode == "deferrable"
    return lambda: CreatePipelineRunOperator(**kwargs)


def statuses(emu, object_id: str = NODE) -> list[str]:
    return [run["status"] for run in runs_of(emu, object_id)]


# ---------------------------------------------------------------------------- (1) worker dies after create

WORKER = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {tests_dir!r})
    from operators.support import TaskInstance
    from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

    spec = json.loads(sys.argv[1])
    ti = TaskInstance(dag_id=spec["dag_id"], task_id="deploy", run_id=spec["run_id"], with_store=spec["store"])
    context = ti.context(try_number=1)
    if "task_state_store" in context:
        # persist every store write, as Airflow's metadata database would
        store = context["task_state_store"]
        original = store.set.side_effect
        def persist(key, value, *, retention=None):
            original(key, value, retention=retention)
            # written whole, then renamed: the test may kill this worker the moment the file exists
            with open(spec["store_file"] + ".tmp", "w") as fh:
                json.dump(ti.state.store, fh)
            os.replace(spec["store_file"] + ".tmp", spec["store_file"])
        store.set.side_effect = persist
    CreatePipelineRunOperator(
        task_id="deploy", object_id=spec["object_id"], poll_interval=0.05, deferrable=spec["deferrable"],
        dataworks_retry_policy={{"max_attempts": 4, "base_delay": 0.01, "max_delay": 0.05}},
    ).execute(context)
    print("FINISHED")
    """
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("with_store", STORES_OF_THE_MATRIX)
def test_worker_killed_after_create_then_retry_adopts_the_run(emu, conn, tmp_path, mode, with_store):
    tests_dir = str(Path(__file__).resolve().parents[1])
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests_dir=tests_dir))
    ti = TaskInstance(with_store=with_store)
    remembered = with_store and AIRFLOW_V_3_3_PLUS  # below 3.3 no worker has a task_state_store
    store_file = tmp_path / "store.json"
    spec = {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "store": with_store,
        "store_file": str(store_file),
        "object_id": NODE,
        "deferrable": mode == "deferrable",
    }
    # the first status check after the create hangs, so the worker is killed mid-wait
    emu.inject_fault(action="GetPipelineRun", kind="delay", seconds=60, count=1)
    worker = subprocess.Popen(
        [sys.executable, str(script), json.dumps(spec)],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not (runs_of(emu, NODE) and (store_file.exists() or not remembered)):
            assert worker.poll() is None, worker.stdout.read().decode() if worker.stdout else ""
            assert time.monotonic() < deadline, "the worker never created the run"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == -signal.SIGKILL
    first = only_run(emu, NODE)
    assert first["status"] in ACTIVE
    if remembered:
        ti.state.store.update(json.loads(store_file.read_text()))
    lists_before = count_calls(emu, "ListPipelineRuns")

    result = run_task(make(mode), ti.context(try_number=2))

    run = only_run(emu, NODE)
    assert result == run["id"] == first["id"]
    assert run["status"] == "Success"
    assert ti.state.xcom["pipeline_run_id"] == run["id"]  # pushed again: XCom is cleared per try
    # the store answered, so no list scan; without a store (or below Airflow 3.3, which has none) exactly one
    assert count_calls(emu, "ListPipelineRuns") - lists_before == (0 if remembered else 1)


# ---------------------------------------------------------------------------- (2) commit, then the answer is lost


@pytest.mark.version_matrix
@pytest.mark.parametrize("mode", MODES)
def test_create_committed_but_answer_lost_is_reconciled(emu, conn, task_instance, mode):
    emu.inject_fault(action="CreatePipelineRun", kind="commit_then_drop", count=1)

    result = run_task(make(mode), task_instance.context())

    run = only_run(emu, NODE)
    assert result == run["id"] and run["status"] == "Success"
    assert count_calls(emu, "CreatePipelineRun") == 1
    if AIRFLOW_V_3_3_PLUS:  # below 3.3 there is no store: the run's Description tag alone remembers it
        assert task_instance.state.store[STATE_KEY]["pipeline_run_id"] == run["id"]
    ti = task_instance
    assert description_tag(run["description"]) == task_tag(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)


@pytest.mark.version_matrix
@pytest.mark.parametrize("mode", MODES)
def test_a_lost_create_the_try_could_not_reconcile_is_adopted_by_the_retry(emu, conn, task_instance, mode):
    # the create reached DataWorks but its answer was lost, and every lookup of this try fails too
    emu.inject_fault(action="CreatePipelineRun", kind="commit_then_drop", count=1)
    emu.inject_fault(action="ListPipelineRuns", kind="http_error", status=503, count=0)
    with pytest.raises(PipelineRunAmbiguousCreateError, match="nothing was resubmitted"):
        run_task(make(mode), task_instance.context(try_number=1))
    lost = only_run(emu, NODE)
    emu.clear_faults()

    result = run_task(make(mode), task_instance.context(try_number=2))

    run = only_run(emu, NODE)
    assert result == run["id"] == lost["id"]
    assert run["status"] == "Success"
    assert count_calls(emu, "CreatePipelineRun") == 1
    assert task_instance.state.xcom["pipeline_run_id"] == run["id"]


# ---------------------------------------------------------------------------- (3) read timeout on create


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout_on_create_is_reconciled(emu, monkeypatch, task_instance, mode):
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=BASIC, read_timeout=0.5))
    emu.inject_fault(action="CreatePipelineRun", kind="delay", seconds=1.0, count=1)
    policy = {"max_attempts": 4, "base_delay": 0.25, "max_delay": 2.0}  # reconcile waits 0.25, 0.5, 1, 2, 2 s

    result = run_task(make(mode, dataworks_retry_policy=policy), task_instance.context())

    run = only_run(emu, NODE)
    assert result == run["id"] and run["status"] == "Success"


@pytest.mark.version_matrix
def test_ambiguous_create_that_did_not_happen_is_resubmitted_once_in_the_same_try(emu, conn, task_instance):
    emu.inject_fault(action="CreatePipelineRun", kind="drop", count=1)  # not applied, no answer

    make()().execute(task_instance.context())

    assert statuses(emu) == ["Success"]
    assert [c["status"] for c in emu.calls("CreatePipelineRun")] == [0, 200]  # dropped, then sent once more


def test_two_ambiguous_creates_that_did_not_happen_fail_the_try_then_the_retry_creates_one(emu, conn, task_instance):
    emu.inject_fault(action="CreatePipelineRun", kind="drop", count=2)

    with pytest.raises(PipelineRunAmbiguousCreateError, match="nothing was resubmitted after the last"):
        make()().execute(task_instance.context())
    assert runs_of(emu, NODE) == []
    assert [c["status"] for c in emu.calls("CreatePipelineRun")] == [0, 0]

    make()().execute(task_instance.context(try_number=2))
    assert statuses(emu) == ["Success"]


@pytest.mark.version_matrix
def test_a_throttled_create_is_retried_because_it_certainly_did_not_happen(emu, conn, task_instance):
    emu.inject_fault(action="CreatePipelineRun", kind="http_error", status=429, count=2)

    make()().execute(task_instance.context())

    assert statuses(emu) == ["Success"]
    assert len(emu.calls("CreatePipelineRun")) == 3


def test_reattach_false_with_an_ambiguous_create_does_not_guess(emu, conn, task_instance):
    emu.inject_fault(action="CreatePipelineRun", kind="commit_then_drop", count=1)
    with pytest.raises(PipelineRunAmbiguousCreateError):
        make(reattach=False)().execute(task_instance.context())
    assert len(runs_of(emu, NODE)) == 1  # it was created, and not created again


# ---------------------------------------------------------------------------- (4) throttling and 5xx storms


@pytest.mark.version_matrix
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "http_error", "status": 429, "count": 5},
        {"kind": "http_error", "status": 429, "count": 5, "retry_after_ms": 20},
        {"kind": "http_error", "status": 500, "count": 5},
        {"kind": "http_error", "status": 503, "count": 5},
    ],
    ids=["429", "429-retry-after", "500", "503"],
)
def test_storms_on_get_during_the_wait_do_not_fail_the_deployment(emu, conn, task_instance, mode, fault):
    emu.set_stage_seconds(0.05)
    budget = {**FAST_RETRIES, "max_attempts": 7}
    emu.inject_fault(action="GetPipelineRun", **fault)

    result = run_task(make(mode, dataworks_retry_policy=budget), task_instance.context())

    assert result == only_run(emu, NODE)["id"]
    assert statuses(emu) == ["Success"]
    assert len([c for c in emu.calls("GetPipelineRun") if c["fault"]]) == 5


def test_a_storm_beyond_the_budget_is_ridden_out_and_the_deployment_finishes(emu, conn, task_instance):
    """An outage longer than the per-call budget does not end the wait while its deadline is ahead."""
    emu.set_stage_seconds(0.2)
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=503, count=0, for_seconds=2.0)

    result = make()().execute(task_instance.context())

    assert result == only_run(emu, NODE)["id"]
    assert statuses(emu) == ["Success"]
    assert count_calls(emu, "AbolishPipelineRun") == 0
    failed = [c for c in emu.calls("GetPipelineRun") if c["fault"]]
    assert len(failed) > FAST_RETRIES["max_attempts"]  # more than one call's budget was spent


def test_an_outage_past_the_deadline_is_a_timeout_that_names_it_and_claims_no_abolish(emu, conn, task_instance):
    emu.set_stage_seconds(30)
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=503, count=0)

    with pytest.raises(PipelineRunTimeoutError) as caught:
        make(timeout=1.0)().execute(task_instance.context())

    message = str(caught.value)
    assert "DataWorks had not answered" in message
    assert "could not be read back" in message and "was abolished" not in message
    emu.clear_faults()
    assert statuses(emu) in (["Termination"], ["Cancel"])  # the abolish itself went through


# ---------------------------------------------------------------------------- (7) retry after a failed run


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("with_store", STORES_OF_THE_MATRIX)
def test_retry_after_a_failed_run_creates_exactly_one_new_run(emu, conn, mode, with_store):
    emu.add_object(BASIC, FLAKY_NODE, fail_at_stage="PROD_CHECK", fail_message="flaky checker")
    ti = TaskInstance(with_store=with_store)
    with pytest.raises(PipelineRunFailedError, match="flaky checker"):
        run_task(make(mode, object_id=FLAKY_NODE), ti.context(try_number=1))

    emu.add_object(BASIC, FLAKY_NODE)  # fixed
    result = run_task(make(mode, object_id=FLAKY_NODE), ti.context(try_number=2))

    runs = runs_of(emu, FLAKY_NODE)
    assert [run["status"] for run in runs] == ["Fail", "Success"]
    assert result == runs[1]["id"]
    assert description_tag(runs[0]["description"]) == description_tag(runs[1]["description"])


@pytest.mark.parametrize("mode", MODES)
def test_a_timed_out_and_abolished_run_is_replaced_on_retry(emu, conn, task_instance, mode):
    """The task's own abolish is recorded: the retry deploys again (a person's stop would not be)."""
    with pytest.raises(Exception, match="did not finish"):
        run_task(make(mode, advance_stages=False, timeout=0.2), task_instance.context())
    run_task(make(mode), task_instance.context(try_number=2))
    assert statuses(emu)[0] in {"Termination", "Cancel"} and statuses(emu)[1:] == ["Success"]


# ---------------------------------------------------------------------------- adopt active / successful runs


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("with_store", [True, False], ids=["task_state_store", "tag_only"])
def test_retry_after_success_does_not_deploy_again(emu, conn, mode, with_store):
    ti = TaskInstance(with_store=with_store)
    first = run_task(make(mode), ti.context(try_number=1))
    execs = count_calls(emu, "ExecPipelineRunStage")

    second = run_task(make(mode), ti.context(try_number=2))

    assert second == first
    assert statuses(emu) == ["Success"]
    assert count_calls(emu, "ExecPipelineRunStage") == execs
    assert ti.state.xcom["pipeline_run_id"] == first  # pushed again after the XCom clear
    assert ti.state.xcom["pipeline_run_url"].endswith("defaultProjectId=10000")


@pytest.mark.parametrize("mode", MODES)
def test_retry_adopts_an_active_run_and_drives_it(emu, conn, mode):
    ti = TaskInstance(with_store=False)
    first = make(mode, wait_for_completion=False)().execute(ti.context(try_number=1))
    assert statuses(emu) in (["Init"], ["Running"])

    second = run_task(make(mode), ti.context(try_number=2))

    assert second == first
    assert statuses(emu) == ["Success"]


@pytest.mark.min_airflow("3.3")  # the task state store
def test_a_store_error_falls_back_to_the_tag(emu, conn, task_instance):
    first = make(wait_for_completion=False)().execute(task_instance.context())
    context = task_instance.context(try_number=2)
    context["task_state_store"].get.side_effect = RuntimeError("state store unavailable")
    context["task_state_store"].set.side_effect = RuntimeError("state store unavailable")

    assert make()().execute(context) == first
    assert statuses(emu) == ["Success"]


def test_one_list_scan_per_attempt_reading_every_page(emu, conn, task_instance):
    first = make(wait_for_completion=False)().execute(task_instance.context())
    hook = DataWorksHook()
    for _ in range(105):  # push this task's run onto the second page (newest first, 100 per page)
        hook.create_pipeline_run(NODE, project_id=BASIC, description="someone else")
    task_instance.with_store = False

    assert make()().execute(task_instance.context(try_number=2)) == first

    assert len(runs_of(emu, NODE)) == 106
    lists = emu.calls("ListPipelineRuns")
    assert len(lists) == 2  # one scan, two pages


# ---------------------------------------------------------------------------- (8) never adopt someone else's run


def test_two_tasks_deploying_the_same_object_never_adopt_each_others_run(emu, conn):
    emu.set_stage_seconds(30)
    a = TaskInstance(task_id="deploy_a", with_store=False)
    b = TaskInstance(task_id="deploy_b", run_id=a.run_id, with_store=False)
    run_a = make(task_id="deploy_a", wait_for_completion=False)().execute(a.context(try_number=2))
    run_b = make(task_id="deploy_b", wait_for_completion=False)().execute(b.context(try_number=2))

    assert run_a != run_b
    runs = runs_of(emu, NODE)
    assert len(runs) == 2
    assert {description_tag(r["description"]) for r in runs} == {
        task_tag(a.dag_id, "deploy_a", a.run_id, -1),
        task_tag(b.dag_id, "deploy_b", b.run_id, -1),
    }


def test_an_untagged_run_from_the_console_is_never_adopted(emu, conn, task_instance):
    emu.set_stage_seconds(30)
    DataWorksHook().create_pipeline_run(NODE, project_id=BASIC, description="deployed by hand")

    make(wait_for_completion=False)().execute(task_instance.context(try_number=2))

    assert len(runs_of(emu, NODE)) == 2


def test_mapped_task_instances_have_their_own_runs(emu, conn):
    emu.set_stage_seconds(30)
    ti0 = TaskInstance(map_index=0, with_store=False)
    ti1 = TaskInstance(run_id=ti0.run_id, map_index=1, with_store=False)
    make(object_id=NODE, wait_for_completion=False)().execute(ti0.context(try_number=2))
    make(object_id=NODE, wait_for_completion=False)().execute(ti1.context(try_number=2))

    assert len(runs_of(emu, NODE)) == 2


def test_a_different_dag_run_gets_a_new_deployment(emu, conn):
    first = TaskInstance(with_store=False)
    second = TaskInstance(with_store=False)  # same dag and task, next DAG run
    make()().execute(first.context(try_number=1))
    make()().execute(second.context(try_number=1))
    assert statuses(emu) == ["Success", "Success"]


def test_reattach_false_creates_a_fresh_run_each_try(emu, conn, task_instance):
    make(reattach=False)().execute(task_instance.context())
    make(reattach=False)().execute(task_instance.context(try_number=2))

    assert statuses(emu) == ["Success", "Success"]
    assert count_calls(emu, "ListPipelineRuns") == 0


def test_a_stored_record_for_another_object_is_ignored(emu, conn, task_instance):
    make(object_id=NODE_3)().execute(task_instance.context())
    make(object_id=NODE)().execute(task_instance.context(try_number=2))  # the template changed

    assert statuses(emu, NODE_3) == ["Success"]
    assert statuses(emu, NODE) == ["Success"]


@pytest.mark.parametrize("mode", MODES)
def test_a_listing_that_says_nothing_is_not_read_as_no_run_and_the_retry_creates_none(emu, conn, mode):
    """The fuzzer's schedule: a listing answered 200 ``{"Success": false}`` once read as "no runs".

    Then the retry created a second run beside the first, still active one. Now the listing is
    asked again, and the retry adopts and finishes the one run.
    """
    ti = TaskInstance(with_store=False)
    first = make(mode, wait_for_completion=False)().execute(ti.context(try_number=1))
    emu.inject_fault(action="ListPipelineRuns", kind="not_started", count=2)

    second = run_task(make(mode), ti.context(try_number=2))

    assert second == first
    assert statuses(emu) == ["Success"]
