"""One DAG run of 100 mapped deferrable deploys under the real triggerer: the status reads are coalesced.

Its own step (``make e2e-load``, marker ``e2e_load``, left out of ``make e2e``) on a stack of its
own: the e2e step's components (SQLite, LocalExecutor, one triggerer) with task slots for many
deploys and only this step's DAG in the DAG folder. The emulator (the e2e step's, in its own
process) gets 100 objects in a workspace of their own whose production deploy stage needs a
manual approval, so every deployment waits there, deferred, until the test approves it. The test
holds the approvals back until Airflow reports all 100 deferred and then for
:data:`HOLD_INTERVALS` more poll intervals: the window in which 100 triggers wait together does
not depend on how fast a loaded machine starts the task slices.

Afterwards the emulator's call log over the window with at least :data:`WINDOW_THRESHOLD` task
instances deferred is cut into poll intervals and each is checked against the coalesced rule (see
``load_counts.py``); the table is printed and written to ``build/e2e-load/counts.json``. The
outcome is checked too: the DAG run and every task instance succeeded, with exactly one pipeline
run per object, each ``Success``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import pytest

from .airflow_stack import TERMINAL_RUN_STATES, AirflowStack
from .load_counts import CREATE, GET, LIST, Sample, bins, over_bounds, run_finished_at, table, window, write_report

pytestmark = [pytest.mark.e2e, pytest.mark.e2e_load, pytest.mark.timeout(600, method="signal")]

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = Path(__file__).resolve().parent / "dags" / "e2e_load_mapped_deploys.py"
DAG_ID = "e2e_load_mapped_deploys"
REPORT_PATH = REPO_ROOT / "build" / "e2e-load" / "counts.json"

DEPLOYMENTS = int(os.environ.get("E2E_LOAD_DEPLOYMENTS", "100"))
#: a workspace of its own: its Running list holds only these deployments (one page of 100)
PROJECT_ID = 30000
POLL_INTERVAL = 2.0
#: each of a run's three stages (build, production check, production deploy)
STAGE_SECONDS = 2.0
#: the stage that waits for the console's approval
APPROVAL_STAGE = "PROD"
#: poll intervals the test keeps all deployments waiting before it approves them
HOLD_INTERVALS = 6
#: task processes at once: each deploy is two short slices (create and defer, resume)
PARALLELISM = int(os.environ.get("E2E_LOAD_PARALLELISM", "16"))
#: the window under test: at least this many task instances deferred
WINDOW_THRESHOLD = math.ceil(0.9 * DEPLOYMENTS)
STARTUP_TIMEOUT = 180.0
#: seconds from the trigger until all deployments must have deferred, and then until the run ends
DEFER_TIMEOUT = 240.0
FINISH_TIMEOUT = 150.0
#: Airflow 3.3's [scheduler] mp_start_method / mp_forkserver_preload: the LocalExecutor's workers are
#: forked from a forkserver that imported the task runner, the operator and the DataWorks SDK once, and
#: every task process forked from a worker inherits them. Without it each deploy's first slice imports
#: the SDK itself (1.35 CPU seconds); measured with 20 deploys, the scheduler's process tree used 36
#: CPU seconds without the preload and 16 with it, on a machine of 2 shared cores.
PRELOAD = {
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": ",".join(
        [
            "airflow",
            "airflow.executors.local_executor",
            "airflow.sdk.execution_time.task_runner",
            "airflow_provider_dataworks.operators.pipeline_run",
            "airflow_provider_dataworks.hooks.dataworks",
            "alibabacloud_dataworks_public20240518.client",
        ]
    ),
}


def object_ids() -> list[str]:
    return [str(8710000000000000000 + i) for i in range(DEPLOYMENTS)]


@pytest.fixture(scope="module")
def load_stack(e2e_tmp: Path, emulator: Any, request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """Airflow with this step's DAG only, and task slots for many deploys at once."""
    dags = e2e_tmp / "load-dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    plan = {"project_id": PROJECT_ID, "object_ids": object_ids(), "poll_interval": POLL_INTERVAL}
    stack = AirflowStack(
        home=e2e_tmp / "load-airflow-home",
        dags_folder=dags,
        extra_env={
            "AIRFLOW_CONN_DATAWORKS_DEFAULT": emulator.connection_uri(project_id=PROJECT_ID),
            "DATAWORKS_E2E_LOAD_PLAN": json.dumps(plan),
            "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(DEPLOYMENTS),
            # The scheduler queues at most this many task instances per loop (default 16).
            "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": str(DEPLOYMENTS),
            # A loaded 2-core machine can stall the scheduler's heartbeat; past this threshold (default 30 s)
            # it takes itself for dead and resets its own running task instances.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "120",
            # Airflow's default again (the e2e stack sets 1 s against a trigger that fires before the
            # scheduler saw its worker exit; here no trigger fires before the approval, long after).
            # Each heartbeat is a call to the API server: at 1 s, most of its CPU in this step.
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "5",
            **PRELOAD,
        },
    )
    leftovers: list[str] = []
    started = time.monotonic()
    try:
        stack.start(timeout=STARTUP_TIMEOUT, expected_dag_ids=[DAG_ID])
        print(f"\nAirflow (load stack) up in {time.monotonic() - started:.1f}s")
        yield stack
    finally:
        if request.session.testsfailed:
            print(stack.log_tails())
        stopping = time.monotonic()
        leftovers.extend(stack.stop())
        print(f"Airflow (load stack) stopped in {time.monotonic() - stopping:.1f}s")
    assert not leftovers, "processes that survived SIGTERM and SIGKILL:\n" + "\n".join(leftovers)


def cpu_seconds(stack: AirflowStack) -> dict[str, float]:
    """CPU seconds (user + system) each component's process tree used so far, finished children included.

    The scheduler's own process is counted apart from its tree (the executor's workers and the task
    processes they fork): ``scheduler`` and ``scheduler's tasks``.
    """
    result = {}
    for name, proc in stack.processes.items():
        own = tree = 0.0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(proc.pid)
            t = root.cpu_times()
            own = t.user + t.system
            tree = t.children_user + t.children_system
            for member in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    t = member.cpu_times()
                    tree += t.user + t.system + t.children_user + t.children_system
        if name == "scheduler":
            result[name], result["scheduler's tasks"] = own, tree
        else:
            result[name] = own + tree
    return result


def _deferred(stack: AirflowStack, run_id: str) -> int:
    assert stack.client is not None
    path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    return int(stack.client.get(path, state="deferred", limit=1)["total_entries"])


def test_mapped_deferrable_deploys_share_coalesced_status_reads(
    load_stack: AirflowStack, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client = load_stack.client
    assert client is not None
    ids = object_ids()
    for object_id in ids:
        emulator.add_object(
            PROJECT_ID,
            object_id,
            name=f"e2e_load_{object_id[-3:]}",
            stage_seconds=STAGE_SECONDS,
            approval_stages=[APPROVAL_STAGE],
        )
    client.unpause(DAG_ID)
    cpu_before = cpu_seconds(load_stack)
    since = time.time()
    run_id = client.trigger(DAG_ID, logical_date=datetime.now(UTC).isoformat())
    samples: list[Sample] = []
    state = all_deferred_at = approved_at = None
    deadline = since + DEFER_TIMEOUT
    while time.time() < deadline:
        load_stack.check_alive()
        samples.append(Sample(time.time(), _deferred(load_stack, run_id)))
        if all_deferred_at is None and samples[-1].deferred == DEPLOYMENTS:
            all_deferred_at = samples[-1].time
        if approved_at is None and all_deferred_at and time.time() >= all_deferred_at + HOLD_INTERVALS * POLL_INTERVAL:
            # as a release manager signing off in the console; the stage starts when it is its turn
            for record in emulator.runs(project_id=PROJECT_ID):
                emulator.approve(record["id"], APPROVAL_STAGE)
            approved_at = time.time()
            deadline = approved_at + FINISH_TIMEOUT
        state = client.run_states().get((DAG_ID, run_id))
        if state in TERMINAL_RUN_STATES:
            break
        time.sleep(1.0)
    seconds = time.time() - since
    cpu_after = cpu_seconds(load_stack)
    cpu = {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1) for name in cpu_after}

    runs = emulator.runs(project_id=PROJECT_ID)
    calls = [c for c in emulator.calls() if c["time"] >= since]
    totals = Counter(c["action"] for c in calls)
    tis = client.task_instances(DAG_ID, run_id)
    ti_states = Counter(ti["state"] for ti in tis)
    span = window(samples, WINDOW_THRESHOLD)
    counted = [] if span is None else bins(calls, runs, samples, start=span[0], end=span[1], interval=POLL_INTERVAL)
    per_second = [s for s in emulator.quota_counts() if span and span[0] <= s["second"] < span[1]]
    relative = lambda t: None if t is None else round(t - since, 1)  # noqa: E731
    summary: dict[str, Any] = {
        "deployments": DEPLOYMENTS,
        "poll_interval": POLL_INTERVAL,
        "parallelism": PARALLELISM,
        "dag_run_state": state,
        "dag_run_seconds": round(seconds, 1),
        "all_deferred_at": relative(all_deferred_at),
        "approved_at": relative(approved_at),
        "most_deferred": max((s.deferred for s in samples), default=0),
        "window_threshold": WINDOW_THRESHOLD,
        "window": None if span is None else [relative(span[0]), relative(span[1])],
        "calls_by_action": dict(sorted(totals.items())),
        "window_reads_per_second": [s["reads"] for s in per_second],
        "cpu_seconds_during_run": cpu,
        "deferred_samples": [[relative(s.time), s.deferred] for s in samples],
    }
    write_report(REPORT_PATH, summary, counted, since)
    with capsys.disabled():
        print(f"\n{DEPLOYMENTS} mapped deferrable deploys, poll {POLL_INTERVAL:g}s: DAG run {state} in {seconds:.0f}s")
        print(
            f"all deferred at {summary['all_deferred_at']}s, approved at {summary['approved_at']}s; "
            f"window with >= {WINDOW_THRESHOLD} deferred: {summary['window']}"
        )
        print(f"calls by action: {summary['calls_by_action']}")
        print(f"CPU seconds during the DAG run: {cpu}")
        print("per poll interval in the window (t from the trigger; per-run reads = one per waiting trigger):")
        print("\n".join(table(counted, since)))
        print(f"reads per second in the window: {summary['window_reads_per_second']}")
        print(f"written to {REPORT_PATH}")

    assert state == "success", f"DAG run {run_id}: {state} after {seconds:.0f}s, task states {dict(ti_states)}"
    assert ti_states == {"success": DEPLOYMENTS}, dict(ti_states)
    per_object = Counter(r["object_id"] for r in runs)
    assert per_object == dict.fromkeys(ids, 1), f"runs per object: {per_object}"
    assert Counter(r["status"] for r in runs) == {"Success": DEPLOYMENTS}
    assert all(math.isfinite(run_finished_at(r)) for r in runs)

    # All deployments waited together, for the whole hold.
    assert summary["most_deferred"] == DEPLOYMENTS, f"at most {summary['most_deferred']} deferred at once"
    assert len(counted) >= HOLD_INTERVALS, f"the window spans {len(counted)} poll intervals"
    # The triggerer polled every interval, by listing ...
    assert sum(b.lists for b in counted) >= len(counted) - 1, "\n".join(table(counted, since))
    # ... within the coalesced rule in each interval.
    assert not over_bounds(counted), "\n".join([*over_bounds(counted), *table(counted, since)])
    waits = sum(b.waiting for b in counted)
    reads = sum(b.reads for b in counted)
    assert reads * 4 <= waits, f"{reads} status reads for {waits} waits: not coalesced"
    # Over the whole run: one worker read per create, one poller read per finished run, and a few
    # per-run reads at the start, while one trigger waited alone (then per-run reads cost less).
    assert totals[CREATE] == DEPLOYMENTS, dict(totals)
    assert totals[GET] <= 2 * DEPLOYMENTS + 10, dict(totals)
    assert totals[LIST] >= len(counted), dict(totals)
