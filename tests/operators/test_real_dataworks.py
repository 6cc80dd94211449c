"""Robust against what the real DataWorks may do, sync and deferrable, against the emulator.

Fail fast on what waiting cannot heal (a permission error), ride out what it can (a 5xx on create,
a long outage of status reads), and trust no shape that only our emulator shows (listing rows
without stages, a server that shortens descriptions, a server page size below the one asked for).
Each test asserts the task's outcome and message, the runs of the object and the stages started.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_dataworks.exceptions import PipelineRunGaveUpError
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.hooks.poller import STATUS_READS_ENV, active_pollers
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.reattach import MAX_DESCRIPTION, description_tag, task_tag
from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

from .support import BASIC, FAST_RETRIES, NODE, POLL, collect_events, only_run, run_task, runs_of

MODES = [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")]
STOPPED = {"Termination", "Cancel"}
#: the length of an outage of status reads, far beyond any per-call retry budget
OUTAGE_SECONDS = 180.0


def make(deferrable: bool, **kwargs):
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    return lambda: CreatePipelineRunOperator(deferrable=deferrable, **kwargs)


def actions(emu) -> list[str]:
    """The API calls in order, consecutive repeats folded (create, list, create...)."""
    folded: list[str] = []
    for call in emu.calls():
        if not folded or folded[-1] != call["action"]:
            folded.append(call["action"])
    return folded


# ------------------------------------------------------------------------------------ permission errors


@pytest.mark.parametrize("deferrable", MODES)
def test_a_permission_error_on_every_exec_fails_within_a_minute_and_closes_the_run(
    emu, conn, task_instance, deferrable
):
    emu.inject_fault("ExecPipelineRunStage", status=403, code="Forbidden.RAM", message="no permission", count=0)
    started = time.monotonic()

    with pytest.raises(PipelineRunGaveUpError) as caught:
        # the defaults otherwise: a 6-hour timeout, five backed-off executions of a refused stage
        run_task(make(deferrable, object_id=NODE, poll_interval=1.0, retries=0), task_instance.context())

    elapsed = time.monotonic() - started
    run = only_run(emu, NODE)
    message = str(caught.value)
    assert elapsed < 60
    assert isinstance(caught.value, AirflowFailException)  # no retry: a retry meets the same refusal
    assert "ExecPipelineRunStage" in message and "Forbidden.RAM" in message
    assert "RequestId" in message and "dataworks:ExecPipelineRunStage" in message
    assert len(emu.calls("ExecPipelineRunStage")) == 1  # never retried
    assert run["status"] in STOPPED and run["abolished_by"] == "api"
    assert f"Pipeline run {run['id']} was abolished" in message
    assert [s["code"] for s in run["stages"] if s["status"] != "Init"] == ["BUILD_PACKAGE"]


# ------------------------------------------------------------------------------------------- create


@pytest.mark.parametrize("deferrable", MODES)
def test_one_500_on_create_is_reconciled_then_resubmitted_once(emu, conn, task_instance, deferrable):
    emu.inject_fault("CreatePipelineRun", status=500, code="InternalError.System")  # nothing was created

    result = run_task(make(deferrable, object_id=NODE, retries=0), task_instance.context())

    run = only_run(emu, NODE)
    assert result == run["id"] and run["status"] == "Success"
    assert actions(emu)[:3] == ["CreatePipelineRun", "ListPipelineRuns", "CreatePipelineRun"]
    assert [call["status"] for call in emu.calls("CreatePipelineRun")] == [500, 200]


@pytest.mark.parametrize("deferrable", MODES)
def test_a_shortened_description_keeps_the_tag_and_a_lost_create_deploys_once(emu, conn, task_instance, deferrable):
    emu.set_description_limit(255)
    emu.inject_fault("CreatePipelineRun", kind="commit_then_drop")  # created, the answer lost
    long_text = "Release 2026.12 of the sales marts; " * 12  # 432 characters

    run_task(make(deferrable, object_id=NODE, description=long_text), task_instance.context())

    run = only_run(emu, NODE)
    assert run["status"] == "Success"
    assert len(run["description"]) <= MAX_DESCRIPTION
    assert description_tag(run["description"]) == task_tag("deploy_dag", "deploy", task_instance.run_id, -1)
    assert run["description"].startswith("[airflow:")
    assert len(emu.calls("CreatePipelineRun")) == 1


@pytest.mark.parametrize("deferrable", MODES)
def test_a_create_answered_after_the_read_timeout_is_adopted_not_resubmitted(
    emu, monkeypatch, task_instance, deferrable
):
    """Found by the fuzzer: the lookups span at least one read timeout, so a late create is not doubled."""
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=BASIC, read_timeout=1.0))
    emu.inject_fault("CreatePipelineRun", kind="delay", seconds=1.1)  # applied after the client gave up
    fast = {"max_attempts": 3, "base_delay": 0.002, "max_delay": 0.01}  # lookups alone would span 31 ms

    result = run_task(make(deferrable, object_id=NODE, dataworks_retry_policy=fast), task_instance.context())

    run = only_run(emu, NODE)
    assert result == run["id"] and run["status"] == "Success"
    assert len(emu.calls("CreatePipelineRun")) == 1


def test_a_server_that_keeps_fewer_characters_still_keeps_the_tag(emu, conn, task_instance):
    emu.set_description_limit(40)
    emu.inject_fault("CreatePipelineRun", kind="commit_then_drop")

    run_task(make(False, object_id=NODE, description="x" * 400), task_instance.context())

    run = only_run(emu, NODE)
    assert len(run["description"]) == 40 and description_tag(run["description"]) is not None
    assert run["status"] == "Success"


# ------------------------------------------------------------------------------------------- outages


@pytest.mark.timeout(OUTAGE_SECONDS + 150)
def test_a_three_minute_outage_of_status_reads_does_not_end_either_wait(emu, conn, monkeypatch):
    """Both modes in one test (they share the outage): each task succeeds, one run each, retries=0."""
    from .support import TaskInstance

    monkeypatch.setenv(STATUS_READS_ENV, "per-run")
    emu.set_stage_seconds(0.5)
    emu.inject_fault(("GetPipelineRun", "ListPipelineRuns"), status=503, count=0, for_seconds=OUTAGE_SECONDS)
    nodes = {False: NODE, True: "8600000000000000003"}
    outcome: dict[bool, object] = {}

    def deploy(deferrable: bool) -> None:
        try:
            outcome[deferrable] = run_task(
                make(deferrable, object_id=nodes[deferrable], poll_interval=5.0, retries=0),
                TaskInstance(task_id=f"deploy_{deferrable}").context(),
                trigger_timeout=OUTAGE_SECONDS + 60,
            )
        except BaseException as err:  # reported below
            outcome[deferrable] = err

    # the sync task in the main thread, as a worker runs it; the deferred one beside it
    deferred = threading.Thread(target=deploy, args=(True,), daemon=True)
    deferred.start()
    deploy(False)
    deferred.join(OUTAGE_SECONDS + 60)

    for deferrable, node in nodes.items():
        run = only_run(emu, node)
        assert outcome[deferrable] == run["id"], outcome[deferrable]
        assert run["status"] == "Success"
    failed_reads = [c for c in emu.calls("GetPipelineRun") if c["status"] == 503]
    assert failed_reads and failed_reads[-1]["time"] - failed_reads[0]["time"] > OUTAGE_SECONDS - 30


# ---------------------------------------------------------------------------------------- server shapes


@pytest.mark.parametrize("shape", ["missing", "empty"])
def test_list_rows_without_stages_are_read_again_and_every_wait_finishes(emu, conn, monkeypatch, shape):
    monkeypatch.setenv(STATUS_READS_ENV, "coalesced")
    emu.set_list_stages(shape)
    emu.set_stage_seconds(0.2)
    hook = DataWorksHook()
    run_ids = [hook.create_pipeline_run(node, project_id=BASIC) for node in (NODE, "8600000000000000003")]

    stageless_rows: list[int] = []

    async def wait_all():
        triggers = [
            PipelineRunTrigger(run_id, BASIC, poll_interval=0.2, advance_stages=True, retry_policy=FAST_RETRIES)
            for run_id in run_ids
        ]
        waits = asyncio.ensure_future(asyncio.gather(*(collect_events(t) for t in triggers)))
        while not waits.done():
            stageless_rows.extend(poller.stats["rows_without_stages"] for poller in active_pollers())
            await asyncio.sleep(0.05)
        assert not active_pollers()
        return await asyncio.wait_for(waits, 60)

    events = asyncio.run(wait_all())

    assert [[event.payload["status"] for event in found] for found in events] == [["success"], ["success"]]
    assert all(emu.run(run_id)["status"] == "Success" for run_id in run_ids)
    assert len(emu.calls("ListPipelineRuns")) >= 1
    assert max(stageless_rows) >= 1  # the rows were listed, and decided nothing: each run was read with a Get
    assert len(emu.calls("GetPipelineRun")) >= 2


def test_a_server_page_size_below_the_one_asked_for_still_finds_the_tasks_run(emu, conn):
    """A retry without a task state store finds its run 26 rows deep while the server serves 10 a page."""
    from .support import TaskInstance

    emu.set_max_page_size(10)
    emu.set_stage_seconds(30)  # the first try's run stays active
    ti = TaskInstance(with_store=False, retries=1)
    first = run_task(make(False, object_id=NODE, wait_for_completion=False, retries=1), ti.context(1))
    hook = DataWorksHook()
    for _ in range(25):  # other deployments of the object, newer than the task's
        hook.create_pipeline_run(NODE, project_id=BASIC, description="someone else")

    second = run_task(make(False, object_id=NODE, wait_for_completion=False, retries=1), ti.context(2))

    assert second == first  # adopted, not created again
    assert len(runs_of(emu, NODE)) == 26
    pages = [call for call in emu.calls("ListPipelineRuns")]
    assert len(pages) >= 3


def test_the_hook_reads_every_page_a_smaller_server_page_size_makes(emu, conn):
    emu.set_max_page_size(7)
    hook = DataWorksHook()
    created = {hook.create_pipeline_run(NODE, project_id=BASIC) for _ in range(20)}

    listed = hook.list_pipeline_runs(BASIC, object_id=NODE)

    assert {run.id for run in listed} == created
    assert len(emu.calls("ListPipelineRuns")) == 3
