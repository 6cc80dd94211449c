"""API economy: DataWorks calls per deployment, by kind, for the flows of the example DAGs.

Each flow runs the real operator and sensor the way Airflow runs them, without a scheduler:
``execute(context)``; on ``TaskDeferred`` the trigger is serialised and rebuilt (as the triggerer
does), run until its first event, and the task resumes through ``resume_execution`` with the
event. The emulator (in-process, stages take ``stage_seconds``) logs every HTTP call; a spy on
:class:`DataWorksHook` records every logical call with the function that made it, so reads are
attributed to a wait, a reattach lookup or a user task. Transient failures the hook retried
(429/5xx) are counted separately from the calls the flow needs.

Targets per wait: reads ≤ ⌈duration / poll_interval⌉ + 1 (duration: first to last read of the
wait); one ``ExecPipelineRunStage`` per stage executed; at most one reattach lookup per attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import itertools
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import OUT, PYTHON, clean_env, clear_proxies, emit, run_child

KINDS = {
    "CreatePipelineRun": "create",
    "ListPipelineRuns": "list",
    "GetPipelineRun": "get",
    "ExecPipelineRunStage": "exec",
    "AbolishPipelineRun": "abolish",
}
#: functions whose GetPipelineRun (anywhere up the call chain) is part of waiting for a run
WAIT_CALLERS = {
    "_defer",
    "poke",
    "run",
    "wait_for_pipeline_run",
    "advance_pipeline_run",
    "advance_pipeline_run_async",
}
#: the function that looks for an earlier try's run
REATTACH_CALLER = "_reattach"
SPIED = (
    "create_pipeline_run",
    "get_pipeline_run",
    "list_pipeline_runs",
    "exec_pipeline_run_stage",
    "abolish_pipeline_run",
)


def run(smoke: bool = False) -> dict[str, Any]:
    """Run every flow in a fresh process; return the per-flow counts."""
    stage_seconds, poll = (0.1, 0.05) if smoke else (0.6, 0.2)
    cmd = [PYTHON, "-m", "benchmarks.economy", "--stage-seconds", str(stage_seconds), "--poll", str(poll)]
    env = clean_env(AIRFLOW_HOME=str(OUT / "airflow-home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    return run_child(cmd, name="economy", timeout=300, env=env)


# --- the spy -----------------------------------------------------------------------------------


@dataclass
class Call:
    at: float
    method: str
    callers: tuple[str, ...]
    args: tuple[Any, ...]
    task: str


@dataclass
class Spy:
    task: str = ""
    calls: list[Call] = field(default_factory=list)

    def record(self, method: str, args: tuple[Any, ...]) -> None:
        frame = sys._getframe(2)
        callers = []
        while frame is not None and len(callers) < 5:
            callers.append(frame.f_code.co_name)
            frame = frame.f_back
        self.calls.append(Call(time.time(), method, tuple(callers), args, self.task))


SPY = Spy()


def install_spy() -> None:
    """Wrap the hook's public API methods (sync and ``_async``) to record who calls them."""
    from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

    for name in SPIED:
        for method_name in (name, name + "_async"):
            original = getattr(DataWorksHook, method_name)
            if inspect.iscoroutinefunction(original):

                @functools.wraps(original)
                async def async_wrapper(self: Any, *args: Any, _o: Any = original, _n: str = name, **kw: Any) -> Any:
                    SPY.record(_n, args)
                    return await _o(self, *args, **kw)

                setattr(DataWorksHook, method_name, async_wrapper)
            else:

                @functools.wraps(original)
                def wrapper(self: Any, *args: Any, _o: Any = original, _n: str = name, **kw: Any) -> Any:
                    SPY.record(_n, args)
                    return _o(self, *args, **kw)

                setattr(DataWorksHook, method_name, wrapper)


# --- running tasks as Airflow would ------------------------------------------------------------


class FakeTI:
    """The parts of a task instance the operator and sensor use."""

    def __init__(self, task_id: str, try_number: int = 1, map_index: int = -1) -> None:
        self.dag_id = "bench_economy"
        self.task_id = task_id
        self.run_id = "manual__bench"
        self.map_index = map_index
        self.try_number = try_number
        # what ResumableJobMixin (the operator's blocking path) reads for its metric tags
        self.stats_tags = {"dag_id": self.dag_id, "task_id": task_id}
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


class StateStore:
    """Airflow 3.3's task state store, as a dict."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise RuntimeError("the trigger ended without an event")


def _rebuilt(trigger: Any) -> Any:
    from airflow.sdk.module_loading import import_string

    path, kwargs = trigger.serialize()
    return import_string(path)(**kwargs)


def run_task(op: Any, ti: FakeTI, store: StateStore | None, *, crash_on_defer: bool = False) -> Any:
    """Execute ``op`` like a worker plus a triggerer would; return its result.

    :param crash_on_defer: stop at the first deferral, as when the worker dies right then.
    """
    from airflow.sdk.exceptions import TaskDeferred

    SPY.task = f"{ti.task_id}#{ti.try_number}"
    context: dict[str, Any] = {"ti": ti, "task_instance": ti, "run_id": ti.run_id, "params": {}}
    if store is not None:
        context["task_state_store"] = store
    try:
        return op.execute(context)
    except TaskDeferred as deferred:
        pending = deferred
    if crash_on_defer:
        return None
    while True:
        payload = asyncio.run(_first_event(_rebuilt(pending.trigger)))
        try:
            return op.resume_execution(pending.method_name, {**(pending.kwargs or {}), "event": payload}, context)
        except TaskDeferred as again:
            pending = again


# --- flows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    name: str
    example: str
    description: str
    #: the calls the flow cannot do without: create, exec, list, abolish, and reads (state changes to observe)
    minimum: dict[str, int]
    body: Callable[[Any, float], None]
    expect_error: type[BaseException] | None = None


def _operator(**kwargs: Any) -> Any:
    from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

    return CreatePipelineRunOperator(**{"dataworks_conn_id": "dataworks_default", "deferrable": True, **kwargs})


def _sensor(**kwargs: Any) -> Any:
    from airflow_provider_dataworks.sensors.pipeline_run import PipelineRunSensor

    return PipelineRunSensor(**{"dataworks_conn_id": "dataworks_default", "deferrable": True, **kwargs})


def flow_deploy_basic(emu: Any, poll: float) -> None:
    op = _operator(task_id="deploy_workflow", object_id="8600000000000000001", poll_interval=poll)
    run_task(op, FakeTI("deploy_workflow"), StateStore())


def flow_deploy_blocking(emu: Any, poll: float) -> None:
    op = _operator(task_id="deploy_blocking", object_id="8600000000000000001", poll_interval=poll, deferrable=False)
    run_task(op, FakeTI("deploy_blocking"), StateStore())


def flow_standard_dev_then_prod(emu: Any, poll: float) -> None:
    from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

    op = _operator(
        task_id="deploy_to_dev",
        project_id=20000,
        object_id="8600000000000000021",
        advance_until_stage="DEV",
        poll_interval=poll,
    )
    run_id = run_task(op, FakeTI("deploy_to_dev"), StateStore())
    SPY.task = "smoke_check_dev#1"
    DataWorksHook(dataworks_conn_id="dataworks_default").get_pipeline_run(run_id, project_id=20000)
    sensor = _sensor(
        task_id="promote_to_prod", project_id=20000, pipeline_run_id=run_id, advance_stages=True, poke_interval=poll
    )
    run_task(sensor, FakeTI("promote_to_prod"), StateStore())


def flow_undeploy(emu: Any, poll: float) -> None:
    op = _operator(task_id="undeploy_node", object_id="8600000000000000004", type="Offline", poll_interval=poll)
    run_task(op, FakeTI("undeploy_node"), StateStore())


def flow_create_then_sensor(emu: Any, poll: float) -> None:
    op = _operator(task_id="create_run", object_id="8600000000000000003", wait_for_completion=False)
    run_id = run_task(op, FakeTI("create_run"), StateStore())
    sensor = _sensor(task_id="wait_for_run", pipeline_run_id=run_id, advance_stages=True, poke_interval=poll)
    run_task(sensor, FakeTI("wait_for_run"), StateStore())


def _retry_flow(store: StateStore | None, poll: float) -> None:
    first = _operator(task_id="deploy_retried", object_id="8600000000000000002", poll_interval=poll)
    run_task(first, FakeTI("deploy_retried"), store, crash_on_defer=True)
    second = _operator(task_id="deploy_retried", object_id="8600000000000000002", poll_interval=poll)
    run_task(second, FakeTI("deploy_retried", try_number=2), store)


def flow_retry_with_store(emu: Any, poll: float) -> None:
    _retry_flow(StateStore(), poll)


def flow_retry_without_store(emu: Any, poll: float) -> None:
    _retry_flow(None, poll)


def flow_transient_faults(emu: Any, poll: float) -> None:
    emu.inject_fault("GetPipelineRun", "http_error", count=2, status=429)
    emu.inject_fault("ExecPipelineRunStage", "http_error", count=1, status=503)
    op = _operator(
        task_id="deploy_faults",
        object_id="8600000000000000001",
        poll_interval=poll,
        retry_policy={"max_attempts": 5, "base_delay": 0.05, "max_delay": 0.2},
    )
    run_task(op, FakeTI("deploy_faults"), StateStore())


def flow_timeout_abolish(emu: Any, poll: float) -> None:
    # finance_close needs a console approval of PROD_CHECK: the run waits until the timeout
    op = _operator(task_id="deploy_unapproved", object_id="8600000000000000005", poll_interval=poll, timeout=poll * 6)
    run_task(op, FakeTI("deploy_unapproved"), StateStore())


def flows() -> list[Flow]:
    from airflow_provider_dataworks.exceptions import PipelineRunTimeoutError

    basic = {"create": 1, "exec": 2, "list": 0, "abolish": 0, "reads": 3}
    return [
        Flow(
            "deploy basic (deferrable)",
            "release_window, deploy_after_quality_check, deploy_mapped (per object)",
            "create, drive PROD_CHECK and PROD on the triggerer",
            basic,
            flow_deploy_basic,
        ),
        Flow(
            "deploy basic (blocking)",
            "release_window with deferrable=False",
            "create, drive the stages in the worker (hook.wait_for_pipeline_run)",
            basic,
            flow_deploy_blocking,
        ),
        Flow(
            "deploy standard until DEV, then promote",
            "standard_dev_then_prod",
            "operator drives DEV_CHECK, DEV (advance_until_stage='DEV'); a user task reads once; "
            "the sensor drives PROD_CHECK, PROD",
            {"create": 1, "exec": 4, "list": 0, "abolish": 0, "reads": 7},
            flow_standard_dev_then_prod,
        ),
        Flow(
            "undeploy",
            "undeploy",
            "Offline run: OfflineCheck runs by itself; drive PROD_CHECK and PROD",
            basic,
            flow_undeploy,
        ),
        Flow(
            "create + sensor",
            "create_then_sensor",
            "operator creates without waiting; the sensor drives and waits",
            basic,
            flow_create_then_sensor,
        ),
        Flow(
            "retry after worker loss (state store)",
            "release_window, try 2",
            "try 1 creates and dies at deferral; try 2 finds the run in the task state store",
            {**basic, "reads": 4},
            flow_retry_with_store,
        ),
        Flow(
            "retry after worker loss (no state store)",
            "release_window on Airflow < 3.3, try 2",
            "as above, the run found by its tag with ListPipelineRuns",
            {**basic, "list": 2, "reads": 3},
            flow_retry_without_store,
        ),
        Flow(
            "deploy basic with transient faults",
            "release_window",
            "2 × 429 on GetPipelineRun, 1 × 503 on ExecPipelineRunStage, retried by the hook",
            basic,
            flow_transient_faults,
        ),
        Flow(
            "timeout, run abolished",
            "release_window with an unapproved stage",
            "PROD_CHECK waits for a console approval (held Running); the trigger times out; the run is abolished",
            {"create": 1, "exec": 1, "list": 0, "abolish": 1, "reads": 2},
            flow_timeout_abolish,
            PipelineRunTimeoutError,
        ),
    ]


# --- accounting ------------------------------------------------------------------------------


def _role(call: Call) -> str:
    """``lookup`` (reattach), ``wait`` (a read of a wait) or ``other`` (e.g. a user task's read)."""
    if REATTACH_CALLER in call.callers:
        return "lookup"
    if WAIT_CALLERS.intersection(call.callers):
        return "wait"
    return "other"


def _account(flow: Flow, poll: float, http: list[dict[str, Any]], calls: list[Call], seconds: float) -> dict[str, Any]:
    counts = dict.fromkeys(("create", "list", "get", "exec", "abolish", "other"), 0)
    retried = refused = 0
    for call in http:
        status = int(call.get("status") or 0)
        if status == 429 or status >= 500 or status == 0:
            retried += 1
            continue
        if status != 200:
            refused += 1
        counts[KINDS.get(call["action"], "other")] += 1

    tasks: dict[str, list[Call]] = {}
    for call in calls:
        tasks.setdefault(call.task, []).append(call)
    waits = []
    lookups_per_attempt = []
    executed: list[str] = []
    for task, task_calls in tasks.items():
        reads = [c for c in task_calls if c.method == "get_pipeline_run" and _role(c) == "wait"]
        lookups = [
            c for c in task_calls if c.method in ("get_pipeline_run", "list_pipeline_runs") and _role(c) == "lookup"
        ]
        if any(c.method == "create_pipeline_run" for c in task_calls) or lookups:
            lookups_per_attempt.append(len(lookups))
        executed += [f"{c.args[0]}:{c.args[1]}" for c in task_calls if c.method == "exec_pipeline_run_stage"]
        if reads:
            duration = reads[-1].at - reads[0].at
            bound = math.ceil(round(duration / poll, 6)) + 1
            # reads less than half an interval after the previous one: back-to-back repeats
            quick = sum(1 for a, b in itertools.pairwise(reads) if b.at - a.at < poll / 2)
            waits.append(
                {
                    "task": task,
                    "reads": len(reads),
                    "duration_s": round(duration, 2),
                    "bound": bound,
                    "ok": len(reads) <= bound,
                    "back_to_back": quick,
                    "readers": sorted({next((f for f in c.callers if f in WAIT_CALLERS), "?") for c in reads}),
                }
            )
    other_reads = sum(1 for c in calls if c.method == "get_pipeline_run" and _role(c) == "other")
    duplicate_execs = len(executed) - len(set(executed))
    return {
        "flow": flow.name,
        "example": flow.example,
        "description": flow.description,
        "seconds": round(seconds, 2),
        "counts": counts,
        "retried": retried,
        "refused": refused,
        "minimum": flow.minimum,
        "waits": waits,
        "reads_ok": all(w["ok"] for w in waits),
        "execs": executed,
        "exec_ok": duplicate_execs == 0,
        "reattach_lookups": lookups_per_attempt,
        "reattach_ok": all(n <= 1 for n in lookups_per_attempt),
        "user_reads": other_reads,
    }


def child(args: argparse.Namespace) -> None:
    clear_proxies()
    logging.getLogger("airflow_provider_dataworks").setLevel(logging.WARNING)
    import os

    from airflow_provider_dataworks.testing import DataWorksEmulator

    install_spy()
    results = []
    with DataWorksEmulator(stage_seconds=args.stage_seconds) as emu:
        os.environ["AIRFLOW_CONN_DATAWORKS_DEFAULT"] = emu.connection_uri(project_id=10000)
        for flow in flows():
            emu.reset()
            SPY.calls.clear()
            started = time.time()
            try:
                flow.body(emu, args.poll)
            except Exception as err:
                if flow.expect_error is None or not isinstance(err, flow.expect_error):
                    raise
            seconds = time.time() - started
            results.append(_account(flow, args.poll, emu.calls(), list(SPY.calls), seconds))
    emit({"stage_seconds": args.stage_seconds, "poll_s": args.poll, "flows": results})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stage-seconds", type=float, default=0.6)
    parser.add_argument("--poll", type=float, default=0.2)
    child(parser.parse_args(argv))


if __name__ == "__main__":
    main()
