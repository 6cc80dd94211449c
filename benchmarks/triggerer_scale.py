"""Triggerer scale: N real ``PipelineRunTrigger`` instances in one asyncio loop, polling the
emulator over HTTPS, with runs finishing at staggered times.

Three processes per configuration, all in one private network namespace (so ``ActiveOpens``
counts only them):

* the **scenario** process (this module, ``scenario``; pinned to the server core) starts the
  emulator (``--tls --stage-seconds 0``, same core), creates the runs, starts the client, and at
  staggered times executes ``PROD_CHECK`` and ``PROD`` of the runs that should finish (the
  triggers run with ``advance_stages=False``, so the run finishes exactly then);
* the **client** (``client``; pinned to the other core) is the simulated triggerer: one default
  asyncio loop running ``async for event in trigger.run()`` for each trigger, Airflow's 0.2 s
  block watchdog, and a monitor *thread* that snapshots CPU, RSS and ``ActiveOpens`` at the
  window's edges and ends the process at the window's end whatever state the loop is in (so an
  overloaded configuration stops on time);
* the emulator.

Triggers start spread over the first poll interval (as deferrals arrive); when one yields its
event a new trigger starts on a spare run, so N stay active. The measured window starts one
poll interval after ``t0``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import (
    CLIENT_CPU,
    OUT,
    PYTHON,
    SERVER_CPU,
    BenchmarkError,
    EmulatorProcess,
    active_opens,
    clean_env,
    clear_proxies,
    core_busy_seconds,
    distribution,
    emit,
    in_netns,
    log_path,
    netns_available,
    parse_result,
    peak_rss_mb,
    pinned,
    rss_mb,
    run_child,
    trust_bundle,
)

PROJECT_ID = 30000
OBJECT_ID = "8700000000000000001"
#: ``[triggerer] blocked_main_thread_warning_threshold`` default
WATCHDOG_THRESHOLD = 0.2


@dataclass(frozen=True)
class Config:
    mode: str
    n: int
    poll: float
    window: float
    finishing: int
    rep: int = 1
    seed: int = 1
    #: a what-if: ``gc.freeze()`` in the client after its imports (Airflow's triggerer does not)
    gc_freeze: bool = False

    @property
    def name(self) -> str:
        return f"{self.mode}{'-gcfreeze' if self.gc_freeze else ''}-n{self.n}-rep{self.rep}"


def configs(smoke: bool) -> list[Config]:
    """The configurations of a run, in the order they run (repeats interleaved).

    The N = 1,000 target configurations of the hook and the raw floor run three times; the
    others once (the full run must stay under 15 minutes on the 2-core machine). The hook's
    thread-pool fallback runs at N = 1,000 and 5,000, the native path at 100 and 1,000.
    """
    if smoke:
        return [Config(mode, 20, 0.5, 2.5, 5) for mode in ("hook", "hook_threads", "raw", "native")]

    def one(mode: str, n: int, window: float, rep: int = 1) -> Config:
        return Config(mode, n, 10.0, window, max(10, n // 5), rep=rep, seed=rep)

    return [
        one("hook", 100, 15),
        one("raw", 100, 15),
        one("native", 100, 15),
        one("hook", 1000, 30, 1),
        one("raw", 1000, 30, 1),
        one("hook_threads", 1000, 30),
        # the native path collapses at 1,000 (perf anchors §4): one capped window
        one("native", 1000, 20),
        one("hook", 1000, 30, 2),
        one("raw", 1000, 30, 2),
        one("hook", 5000, 20),
        one("raw", 5000, 20),
        one("hook_threads", 5000, 20),
        one("hook", 1000, 30, 3),
        one("raw", 1000, 30, 3),
        # what-if: the same as the hook at 1,000, with the import-time heap frozen out of the GC
        Config("hook", 1000, 10.0, 30, 200, rep=1, seed=4, gc_freeze=True),
    ]


def run(smoke: bool = False) -> dict[str, Any]:
    """Run every configuration, each in a fresh network namespace; return results and medians."""
    results = []
    for config in configs(smoke):
        cmd = [PYTHON, "-m", "benchmarks.triggerer_scale", "scenario"]
        cmd += ["--mode", config.mode, "--n", str(config.n), "--poll", str(config.poll)]
        cmd += ["--window", str(config.window), "--finishing", str(config.finishing), "--seed", str(config.seed)]
        cmd += ["--gc-freeze"] if config.gc_freeze else []
        timeout = config.poll + config.window + 180
        result = run_child(in_netns(pinned(cmd, SERVER_CPU)), name=f"triggerer-{config.name}", timeout=timeout)
        result["rep"] = config.rep
        result["variant"] = "gc.freeze()" if config.gc_freeze else ""
        results.append(result)
        print(f"  triggerer {config.name}: {_one_line(result)}", file=sys.stderr, flush=True)
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault((result["mode"], result["n"], result["variant"]), []).append(result)
    aggregated = [{**median_of(runs), "reps": len(runs), "per_rep": _per_rep(runs)} for runs in groups.values()]
    return {"configs": aggregated, "runs": results, "netns": netns_available()}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Field-by-field median of several results (nested dicts too); other values from the first."""
    first = runs[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        values = [run.get(key) for run in runs]
        if isinstance(value, dict) and all(isinstance(v, dict) for v in values):
            out[key] = median_of(values)  # type: ignore[arg-type]
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[key] = statistics.median(values)  # type: ignore[type-var]
        else:
            out[key] = value
    return out


def _per_rep(runs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The figures the report shows for every repeat."""
    return {
        "achieved_ratio": [r["achieved_ratio"] for r in runs],
        "cpu_pct": [r["cpu_pct"] for r in runs],
        "cpu_ms_per_poll": [r["cpu_ms_per_poll"] for r in runs],
        "lateness_p99_ms": [r["done_late_ms"]["p99"] for r in runs],
        "watchdog_count": [r["watchdog"]["count"] for r in runs],
        "watchdog_max_s": [r["watchdog"]["max_s"] for r in runs],
        "other_load_pct": [r.get("other_load_on_client_core_pct") for r in runs],
        "gc_max_pause_ms": [r["gc"]["max_pause_ms"] for r in runs],
    }


def _one_line(r: dict[str, Any]) -> str:
    return (
        f"{r['achieved_per_s']:.1f}/{r['ideal_per_s']:.1f} polls/s, cpu {r['cpu_pct']:.0f}%, "
        f"{r['cpu_ms_per_poll'] if r['cpu_ms_per_poll'] is not None else '-'} ms/poll, "
        f"watchdog {r['watchdog']['count']} (max {r['watchdog']['max_s']:.2f} s)"
    )


# --- scenario: emulator, runs, client, staggered finishes -------------------------------------


async def _create_runs(emu: EmulatorProcess, key: tuple[str, str], count: int) -> list[str]:
    import aiohttp

    from benchmarks.common import client_ssl_context
    from benchmarks.rawclient import RawClient

    connector = aiohttp.TCPConnector(limit=32, ssl=client_ssl_context(emu.ca_path))
    async with aiohttp.ClientSession(connector=connector) as session:
        client = RawClient(session, emu.protocol, emu.endpoint, *key)
        ids: list[str] = []
        for start in range(0, count, 256):
            batch = [client.create_pipeline_run(PROJECT_ID, OBJECT_ID) for _ in range(min(256, count - start))]
            ids.extend(await asyncio.gather(*batch))
        return ids


async def _finish_runs(
    emu: EmulatorProcess, key: tuple[str, str], schedule: list[tuple[float, str]], edges: tuple[float, float]
) -> dict[str, Any]:
    """Execute PROD_CHECK then PROD of each run at its time; sample server CPU at the window edges."""
    import aiohttp

    from benchmarks.common import client_ssl_context
    from benchmarks.rawclient import RawClient

    cpu: dict[str, float] = {}

    async def sample(name: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.time()))
        cpu[name] = emu.cpu_seconds()
        cpu[name + "_wall"] = time.time()

    samplers = [asyncio.create_task(sample("w0", edges[0])), asyncio.create_task(sample("w1", edges[1]))]
    late: list[float] = []
    connector = aiohttp.TCPConnector(limit=8, ssl=client_ssl_context(emu.ca_path))
    async with aiohttp.ClientSession(connector=connector) as session:
        client = RawClient(session, emu.protocol, emu.endpoint, *key)

        async def finish(at: float, run_id: str) -> None:
            await asyncio.sleep(max(0.0, at - time.time()))
            late.append(time.time() - at)
            await client.exec_stage(PROJECT_ID, run_id, "PROD_CHECK")
            await client.exec_stage(PROJECT_ID, run_id, "PROD")

        # One task per run: a slow answer must not delay the runs scheduled after it (one after
        # the other, 2,000 finishing runs were up to 23 s late).
        await asyncio.gather(*(finish(at, run_id) for at, run_id in schedule))
    await asyncio.gather(*samplers)
    span = cpu["w1_wall"] - cpu["w0_wall"]
    return {
        "server_cpu_pct": round((cpu["w1"] - cpu["w0"]) / span * 100, 1) if span > 0 else None,
        "driver_late_ms": distribution(late, 1000),
    }


def scenario_main(args: argparse.Namespace) -> None:
    clear_proxies()
    config = Config(args.mode, args.n, args.poll, args.window, args.finishing, seed=args.seed, gc_freeze=args.gc_freeze)
    with EmulatorProcess.start(tls=True, stage_seconds=0.0) as emu:
        control = emu.controller()
        control.add_object(PROJECT_ID, OBJECT_ID, name="bench_node")
        key = (control.access_key_id, control.access_key_secret)
        env = clean_env(
            AIRFLOW_CONN_DATAWORKS_DEFAULT=control.connection_uri(
                project_id=PROJECT_ID, ca=trust_bundle(emu.ca_path or "", f"triggerer-{config.name}")
            ),
            AIRFLOW_HOME=str(OUT / "airflow-home"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            # this section compares transports per poll: every trigger reads its own run
            AIRFLOW_PROVIDER_DATAWORKS_STATUS_READS="per-run",
        )
        env.pop("BENCH_GC_FREEZE", None)
        if config.gc_freeze:
            env["BENCH_GC_FREEZE"] = "1"
        cmd = [PYTHON, "-m", "benchmarks.triggerer_scale", "client", "--mode", config.mode]
        cmd += ["--n", str(config.n), "--poll", str(config.poll), "--window", str(config.window)]
        with log_path(f"triggerer-{config.name}-client").open("w") as client_log:
            client = subprocess.Popen(
                pinned(cmd, CLIENT_CPU),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=client_log,
                text=True,
                env=env,
            )
            try:
                result = _drive(config, emu, key, client)
            finally:
                if client.poll() is None:
                    client.kill()
        result["emulator_calls"] = control.call_counts()
    emit(result)


def _drive(config: Config, emu: EmulatorProcess, key: tuple[str, str], client: subprocess.Popen[str]) -> dict[str, Any]:
    assert client.stdin is not None
    assert client.stdout is not None
    started = time.time()
    run_ids = asyncio.run(_create_runs(emu, key, config.n + config.finishing))
    create_seconds = time.time() - started
    initial, spare = run_ids[: config.n], run_ids[config.n :]
    line = client.stdout.readline()
    if line.strip() != "READY":
        raise BenchmarkError(f"the client did not start (it printed {line!r})")
    # finish early enough that the event is due (one poll interval later) inside the window
    window = run_window(
        client,
        emu,
        key,
        name=config.name,
        initial=initial,
        spare=spare,
        lead=config.poll,
        length=config.window,
        finishing=config.finishing,
        seed=config.seed,
        last_margin=config.poll + 1.0,
        grace=60,
    )
    result, schedule, w1 = window.result, window.schedule, window.w1
    seen = {event["run_id"] for event in result["events"]}
    due = [run_id for at, run_id in schedule if at <= w1 - config.poll - 0.5]
    result.update(window.driver)
    result["finishing"] = config.finishing
    result["missed_events"] = sum(1 for run_id in due if run_id not in seen)
    result["create_seconds"] = round(create_seconds, 1)
    result.pop("events")
    return result


@dataclass
class Window:
    """What :func:`run_window` measured: the client's result, the finishing schedule, the window's edges."""

    result: dict[str, Any]
    schedule: list[tuple[float, str]]
    driver: dict[str, Any]
    w0: float
    w1: float


def run_window(
    client: subprocess.Popen[str],
    emu: EmulatorProcess,
    key: tuple[str, str],
    *,
    name: str,
    initial: list[str],
    spare: list[str],
    lead: float,
    length: float,
    finishing: int,
    seed: int,
    last_margin: float,
    grace: float,
) -> Window:
    """Start a READY client on its plan, finish runs inside the window, and collect what it printed.

    The window opens ``lead`` seconds after the client's t0 and lasts ``length``; ``finishing``
    of the initial runs finish at seeded random times between its start and ``last_margin``
    before its end. Shared by this benchmark and :mod:`benchmarks.coalesced`.
    """
    assert client.stdin is not None
    assert client.stdout is not None
    t0 = time.time() + 0.5
    client.stdin.write(json.dumps({"t0": t0, "initial": initial, "spare": spare}) + "\n")
    client.stdin.flush()
    w0 = t0 + lead
    w1 = w0 + length
    rng = random.Random(seed)
    last = max(w0 + 0.5, w1 - last_margin)
    schedule = sorted((rng.uniform(w0 + 0.5, last), run_id) for run_id in rng.sample(initial, finishing))
    # Drain the client's stdout as it goes: trigger logs go there, and a full pipe would block its loop.
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(client.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    driver = asyncio.run(_finish_runs(emu, key, schedule, (w0, w1)))
    try:
        client.wait(timeout=max(0.0, w1 - time.time()) + grace)
    except subprocess.TimeoutExpired:
        client.kill()
        raise BenchmarkError(f"{name}: the client did not stop after its window") from None
    reader.join(timeout=30)
    return Window(parse_result("".join(lines)), schedule, driver, w0, w1)


# --- client: the simulated triggerer ----------------------------------------------------------


@dataclass
class Instance:
    run_id: str
    started: float
    ended: float | None = None
    event: dict[str, Any] | None = None


@dataclass
class ClientState:
    poll: float
    instances: list[Instance] = field(default_factory=list)
    watchdog: list[tuple[float, float]] = field(default_factory=list)
    last_tick: float = 0.0
    errors: list[str] = field(default_factory=list)
    pool: Any = None
    #: CPU seconds the loop's thread used during each watchdog stall, by the stall's start
    stall_cpu: dict[float, float] = field(default_factory=dict)
    #: garbage-collector pauses: (start, seconds, generation)
    gc_pauses: list[tuple[float, float, int]] = field(default_factory=list)

    def watch_gc(self) -> None:
        started: list[float] = [0.0]

        def callback(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[0] = time.monotonic()
            else:
                self.gc_pauses.append((started[0], time.monotonic() - started[0], info["generation"]))

        gc.callbacks.append(callback)


async def _watchdog(state: ClientState) -> None:
    """A copy of ``TriggerRunner.block_watchdog`` (Airflow 3.3) that records every sample."""
    while True:
        last_run, cpu = time.monotonic(), time.thread_time()
        state.last_tick = last_run
        await asyncio.sleep(0.1)
        elapsed = time.monotonic() - last_run
        state.watchdog.append((last_run, elapsed))
        if elapsed > WATCHDOG_THRESHOLD:
            # how much of the stall the loop's own thread spent on a CPU: little means the OS
            # ran other processes (a loaded machine), much means the loop itself was blocked
            state.stall_cpu[last_run] = time.thread_time() - cpu


def _finish_ms(payload: dict[str, Any]) -> float | None:
    stages = (payload.get("run") or {}).get("Stages") or []
    times = [int(s["Detail"]["FinishTime"]) for s in stages if (s.get("Detail") or {}).get("FinishTime")]
    return max(times) if times else None


async def _client_loop(args: argparse.Namespace, plan: dict[str, Any], state: ClientState) -> None:
    from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

    loop = asyncio.get_running_loop()
    spare: list[str] = list(plan["spare"])
    tasks: set[asyncio.Task[None]] = set()

    async def drive(run_id: str) -> None:
        instance = Instance(run_id, time.monotonic())
        state.instances.append(instance)
        trigger = PipelineRunTrigger(
            pipeline_run_id=run_id, project_id=PROJECT_ID, poll_interval=args.poll, advance_stages=False
        )
        try:
            async for event in trigger.run():
                instance.ended = time.monotonic()
                payload = dict(event.payload)
                instance.event = {
                    "run_id": run_id,
                    "status": payload.get("status"),
                    "wall": time.time(),
                    "finish_ms": _finish_ms(payload),
                }
                break
        except Exception as err:  # recorded and reported, never silently dropped
            state.errors.append(repr(err))
            instance.ended = time.monotonic()
        if spare:
            start(spare.pop())

    def start(run_id: str) -> None:
        task = loop.create_task(drive(run_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    watchdog = loop.create_task(_watchdog(state))
    mono_t0 = time.monotonic() + (plan["t0"] - time.time())
    initial = plan["initial"]
    for index, run_id in enumerate(initial):
        loop.call_at(mono_t0 + index * args.poll / len(initial), start, run_id)
    await asyncio.Event().wait()  # the monitor thread ends the process
    watchdog.cancel()


def _monitor(args: argparse.Namespace, plan: dict[str, Any], state: ClientState) -> None:
    """Snapshot the window's edges from a thread, report, and end the process on time."""
    from benchmarks.transports import RECORDER, check_used, transport_used

    def sleep_until(wall: float) -> None:
        time.sleep(max(0.0, wall - time.time()))

    w0_wall = plan["t0"] + args.poll
    sleep_until(w0_wall)
    w0, cpu0, opens0, core0 = time.monotonic(), time.process_time(), active_opens(), core_busy_seconds(CLIENT_CPU)
    sleep_until(w0_wall + args.window)
    w1, cpu1, opens1, core1 = time.monotonic(), time.process_time(), active_opens(), core_busy_seconds(CLIENT_CPU)
    try:
        check_used(args.mode)
        result = _summarize(args, state, RECORDER, (w0, w1), (cpu0, cpu1), (opens0, opens1))
        result["transport"] = transport_used()
        # what else ran on the client's core during the window (other processes on this shared machine)
        result["other_load_on_client_core_pct"] = round(((core1 - core0) - (cpu1 - cpu0)) / (w1 - w0) * 100, 1)
        emit(result)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _summarize(
    args: argparse.Namespace,
    state: ClientState,
    recorder: Any,
    window: tuple[float, float],
    cpu: tuple[float, float],
    opens: tuple[int, int],
) -> dict[str, Any]:
    w0, w1 = window
    span = w1 - w0
    poll = args.poll
    instances = list(state.instances)
    logs = {run_id: list(log.calls) for run_id, log in list(recorder.runs.items())}

    polls = ok = in_flight = 0
    latencies: list[float] = []
    start_late: list[float] = []
    done_late: list[float] = []
    periods: list[float] = []
    ideal = 0
    overdue = 0
    for instance in instances:
        calls = sorted(logs.get(instance.run_id, []), key=lambda call: call[0])
        end = instance.ended if instance.ended is not None else math.inf
        # the ideal fixed-rate schedule of this trigger: its start, then every poll interval
        k = max(0, math.ceil((w0 - instance.started) / poll))
        while instance.started + k * poll < min(w1, end):
            ideal += 1
            k += 1
        expected = instance.started
        previous_start = None
        for call_start, call_end, call_ok in calls:
            if previous_start is not None and previous_start >= w0 and call_start < w1:
                periods.append(call_start - previous_start)
            previous_start = call_start
            finished = call_end is not None and call_end <= w1
            if w0 <= call_start < w1:
                polls += 1
                ok += bool(finished and call_ok)
                in_flight += not finished
                latencies.append((call_end if finished else w1) - call_start)
            if w0 <= expected < w1:
                start_late.append(call_start - expected)
                done_late.append((call_end if finished else w1) - expected)
            if not finished:
                expected = math.inf
                break
            expected = call_end + poll
        if instance.ended is None and w0 <= expected < w1 - 1.0:
            overdue += 1  # a poll due more than a second before the window's end never started
            start_late.append(w1 - expected)
            done_late.append(w1 - expected)

    samples = [(at, elapsed) for at, elapsed in list(state.watchdog) if w0 <= at < w1]
    blocks = [elapsed for _, elapsed in samples if elapsed > WATCHDOG_THRESHOLD]
    warmup = [elapsed for at, elapsed in list(state.watchdog) if at < w0 and elapsed > WATCHDOG_THRESHOLD]
    ongoing = time.monotonic() - state.last_tick - 0.1
    if ongoing > WATCHDOG_THRESHOLD:
        blocks.append(ongoing)  # the loop is blocked right now: Airflow would warn about it too
    events = []
    latency_events: list[float] = []
    statuses: dict[str, int] = {}
    for instance in instances:
        if instance.event is None or instance.ended is None or not (w0 <= instance.ended < w1):
            continue
        event = instance.event
        events.append(event)
        statuses[str(event["status"])] = statuses.get(str(event["status"]), 0) + 1
        if event["finish_ms"] is not None:
            latency_events.append(event["wall"] - event["finish_ms"] / 1000)
    cpu_s = cpu[1] - cpu[0]
    gc_window = [p for p in list(state.gc_pauses) if w0 <= p[0] < w1]
    pool: dict[str, Any] | None = None
    if state.pool is not None:
        tasks = [r for r in list(state.pool.records) if w0 <= r[1] < w1]
        pool = {
            "threads": state.pool._max_workers,
            "tasks": len(tasks),
            "queue_wait_ms": distribution((r[1] - r[0] for r in tasks), 1000),
            "run_ms": distribution((r[2] - r[1] for r in tasks), 1000),
            "thread_cpu_ms_per_task": round(sum(r[3] for r in tasks) / len(tasks) * 1000, 3) if tasks else None,
        }
    return {
        "mode": args.mode,
        "n": args.n,
        "poll_s": poll,
        "window_s": round(span, 2),
        "polls": polls,
        "ok": ok,
        "errors": polls - ok - in_flight,
        "in_flight": in_flight,
        "achieved_per_s": round(ok / span, 2),
        "ideal_per_s": round(ideal / span, 2),
        "achieved_ratio": round(ok / ideal, 4) if ideal else None,
        "cpu_s": round(cpu_s, 3),
        "cpu_pct": round(cpu_s / span * 100, 1),
        "cpu_ms_per_poll": round(cpu_s / ok * 1000, 3) if ok else None,
        "opens": opens[1] - opens[0],
        "opens_per_poll": round((opens[1] - opens[0]) / polls, 4) if polls else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_mb": round(rss_mb(), 1),
        "threads": threading.active_count(),
        "start_late_ms": distribution(start_late, 1000),
        "done_late_ms": distribution(done_late, 1000),
        "overdue_polls": overdue,
        "period_ms": distribution(periods, 1000),
        "call_ms": distribution(latencies, 1000),
        "event_latency_s": distribution(latency_events),
        "event_statuses": statuses,
        "events": events,
        "watchdog": {
            "count": len(blocks),
            "max_s": round(max([e for _, e in samples] + blocks, default=0.0), 3),
            "warmup_count": len(warmup),
            "warmup_max_s": round(max(warmup, default=0.0), 3),
        },
        "sdk_pool": pool,
        "gc": {
            "collections": len(gc_window),
            "gen2": sum(1 for _, _, gen in gc_window if gen == 2),
            "max_pause_ms": round(max((p for _, p, _ in gc_window), default=0.0) * 1000, 1),
            "total_ms": round(sum(p for _, p, _ in gc_window) * 1000, 1),
        },
        "triggers_started": len(instances),
        "trigger_errors": state.errors[:5],
        "trigger_error_count": len(state.errors),
    }


def _stack_sampler(state: ClientState) -> None:
    """Debugging aid (``BENCH_STACKS=1``): print the loop thread's stack while the loop is blocked."""
    import traceback

    main_id = threading.main_thread().ident
    while True:
        time.sleep(0.05)
        if state.last_tick and time.monotonic() - state.last_tick > float(os.environ["BENCH_STACKS"]):
            frame = sys._current_frames().get(main_id)
            print("--- loop blocked:\n" + "".join(traceback.format_stack(frame)), file=sys.stderr, flush=True)


def client_main(args: argparse.Namespace) -> None:
    clear_proxies()
    # Logging stays as Airflow configures it (INFO): a trigger logs its run's stages when it
    # starts and finishes; steady-state polls log nothing.
    from benchmarks import transports

    transports.use_in_trigger(args.mode)
    if os.environ.get("BENCH_SDK_THREADS"):  # what-if experiments only
        from airflow_provider_dataworks.hooks import dataworks as hook_module

        hook_module.SDK_THREADS = int(os.environ["BENCH_SDK_THREADS"])
    pool = transports.instrument_sdk_pool() if args.mode == "hook_threads" else None
    # The SDK is imported once per triggerer process, on the first trigger; do it before t0.
    import alibabacloud_dataworks_public20240518.client  # noqa: F401
    from alibabacloud_dataworks_public20240518 import models  # noqa: F401

    import airflow_provider_dataworks.triggers.pipeline_run  # noqa: F401

    if os.environ.get("BENCH_GC_FREEZE"):  # what-if: move the imported heap out of the collector's reach
        gc.freeze()
    print("READY", flush=True)
    plan = json.loads(sys.stdin.readline())
    state = ClientState(poll=args.poll, pool=pool)
    state.watch_gc()
    threading.Thread(target=_monitor, args=(args, plan, state), daemon=True, name="bench-monitor").start()
    if os.environ.get("BENCH_STACKS"):
        threading.Thread(target=_stack_sampler, args=(state,), daemon=True).start()
    asyncio.run(_client_loop(args, plan, state))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="role", required=True)
    for role in ("scenario", "client"):
        p = sub.add_parser(role)
        p.add_argument("--mode", choices=("hook", "hook_threads", "native", "raw"), required=True)
        p.add_argument("--n", type=int, required=True)
        p.add_argument("--poll", type=float, default=10.0)
        p.add_argument("--window", type=float, default=30.0)
        if role == "scenario":
            p.add_argument("--finishing", type=int, default=10)
            p.add_argument("--seed", type=int, default=1)
            p.add_argument("--gc-freeze", action="store_true", help="what-if: gc.freeze() in the client")
    args = parser.parse_args(argv)
    if args.role == "scenario":
        scenario_main(args)
    else:
        client_main(args)


if __name__ == "__main__":
    main()
