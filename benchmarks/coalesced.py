"""Coalesced status reads vs per-run reads, side by side, and the request budget against an enforced quota.

Same three processes as :mod:`benchmarks.triggerer_scale` (scenario + emulator on the server
core, the simulated triggerer on the client core, one private network namespace, HTTPS with a
production-size trust store), but the client runs the provider exactly as shipped — the real
``PipelineRunTrigger`` on the real ``DataWorksHook`` — and the only difference between the
paths is ``AIRFLOW_PROVIDER_DATAWORKS_STATUS_READS``:

* ``coalesced``: the default (``auto``): one shared poller lists ``Status=Running`` (100 a page)
  each interval, absent runs get one ``GetPipelineRun``;
* ``per-run``: ``per-run``: each trigger reads its own run every interval (the behaviour before).

Triggers start spread over a ramp (one interval; 100 s at N = 10,000) with ``next_poll_at`` one
interval later (as a deferring operator sets it); the window opens one interval after the ramp.
A trigger that yields its event is replaced by one on a spare run. During the window the
scenario finishes runs at uniformly random times (one task each).

Read calls are counted by the **emulator** per second of its clock (``quota_counts``), inside
the window. The budget run starts the emulator with ``--read-qps 5`` and gives the connection
``read_qps = 5``: it reports the 429s after the first interval, the busiest second, and the
status latency added against the same configuration without a quota.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import subprocess
import sys
import threading
import time
import types
from collections import Counter
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    CLIENT_CPU,
    OUT,
    PYTHON,
    SERVER_CPU,
    BenchmarkError,
    EmulatorProcess,
    clean_env,
    clear_proxies,
    core_busy_seconds,
    distribution,
    emit,
    in_netns,
    log_path,
    peak_rss_mb,
    pinned,
    run_child,
    trust_bundle,
)
from benchmarks.triggerer_scale import (
    OBJECT_ID,
    PROJECT_ID,
    WATCHDOG_THRESHOLD,
    ClientState,
    Instance,
    _create_runs,
    _finish_ms,
    _stack_sampler,
    _watchdog,
    run_window,
)

PATHS = {"coalesced": "auto", "per-run": "per-run"}
#: the finishing runs (in a 30 s window) of the configurations the targets are judged on
TARGET_FINISHING = {1000: 200, 10000: 30}


@dataclass(frozen=True)
class Config:
    path: str
    n: int
    poll: float
    window: float
    finishing: int
    read_qps: float | None = None  # the budget run: the emulator enforces it, the connection uses it
    seed: int = 1
    #: seconds over which the triggers start (their first reads follow one interval later)
    ramp: float = 10.0

    @property
    def name(self) -> str:
        return f"{self.path}-n{self.n}" + (f"-quota{self.read_qps:g}" if self.read_qps else "")


def configs(smoke: bool) -> list[Config]:
    if smoke:
        return [Config("coalesced", 30, 0.5, 2.5, 6, ramp=0.5), Config("per-run", 30, 0.5, 2.5, 6, ramp=0.5)]
    return [
        Config("coalesced", 1000, 10.0, 30, 200),
        Config("per-run", 1000, 10.0, 30, 200),
        # the budget run: fewer finishing runs (each costs a GetPipelineRun) so 5 QPS can carry them
        Config("coalesced", 1000, 10.0, 30, 50),
        Config("coalesced", 1000, 10.0, 30, 50, read_qps=5.0),
        # 10,000 triggers start over 100 s (100 a second, as at N = 1,000): a trigger's first
        # read looks its connection up and builds its SDK client, and 1,000 of those a second
        # (all 10,000 in one interval) keep the per-run loop busy for minutes before any poll.
        # One run finishing a second, the rate the "≤ 12 reads/s at N = 10,000" assumes.
        Config("coalesced", 10000, 10.0, 30, TARGET_FINISHING[10000], ramp=100.0),
        Config("per-run", 10000, 10.0, 30, TARGET_FINISHING[10000], ramp=100.0),
        # churn: a fifth of the waits finish in the window, each replaced by a new trigger (a
        # new hook, connection lookup and SDK client each); reported, no target
        Config("coalesced", 10000, 10.0, 30, 2000, ramp=100.0),
    ]


def run(smoke: bool = False) -> dict[str, Any]:
    results = []
    skip = {int(n) for n in os.environ.get("BENCH_COALESCED_SKIP_N", "").split(",") if n}  # debugging knob
    for config in configs(smoke):
        if config.n in skip:
            continue
        cmd = [PYTHON, "-m", "benchmarks.coalesced", "scenario", "--path", config.path, "--n", str(config.n)]
        cmd += ["--poll", str(config.poll), "--window", str(config.window), "--finishing", str(config.finishing)]
        cmd += ["--seed", str(config.seed), "--ramp", str(config.ramp)]
        cmd += ["--read-qps", str(config.read_qps)] if config.read_qps else []
        timeout = config.ramp + config.poll + config.window + 300
        result = run_child(in_netns(pinned(cmd, SERVER_CPU)), name=f"coalesced-{config.name}", timeout=timeout)
        results.append(result)
        print(f"  coalesced {config.name}: {_one_line(result)}", file=sys.stderr, flush=True)
    return {"configs": results}


def _one_line(r: dict[str, Any]) -> str:
    return (
        f"{r['reads_per_s']} reads/s (bound {r['reads_bound_per_s']}), cpu {r['cpu_pct']}%, "
        f"finish->event p99 {_s(r['event_latency_s']['p99'])} s, watchdog {r['watchdog']['count']}, "
        f"429s {r['throttled_after_first_interval']}"
    )


# --- scenario ----------------------------------------------------------------------------------


def scenario_main(args: argparse.Namespace) -> None:
    clear_proxies()
    config = Config(args.path, args.n, args.poll, args.window, args.finishing, args.read_qps, args.seed, args.ramp)
    extra = ["--read-qps", str(config.read_qps)] if config.read_qps else []
    with EmulatorProcess.start(tls=True, stage_seconds=0.0, extra_args=extra) as emu:
        control = emu.controller()
        control.add_object(PROJECT_ID, OBJECT_ID, name="bench_node")
        key = (control.access_key_id, control.access_key_secret)
        budget = {"read_qps": config.read_qps} if config.read_qps else {}
        env = clean_env(
            AIRFLOW_CONN_DATAWORKS_DEFAULT=control.connection_uri(
                project_id=PROJECT_ID, ca=trust_bundle(emu.ca_path or "", f"coalesced-{config.name}"), **budget
            ),
            AIRFLOW_HOME=str(OUT / "airflow-home"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW_PROVIDER_DATAWORKS_STATUS_READS=PATHS[config.path],
        )
        cmd = [PYTHON, "-m", "benchmarks.coalesced", "client", "--path", config.path, "--n", str(config.n)]
        cmd += ["--poll", str(config.poll), "--window", str(config.window), "--ramp", str(config.ramp)]
        with log_path(f"coalesced-{config.name}-client").open("w") as client_log:
            client = subprocess.Popen(
                pinned(cmd, CLIENT_CPU),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=client_log,
                text=True,
                env=env,
            )
            try:
                result = _drive(config, emu, key, client, control)
            finally:
                if client.poll() is None:
                    client.kill()
    emit(result)


def _drive(
    config: Config, emu: EmulatorProcess, key: tuple[str, str], client: subprocess.Popen[str], control: Any
) -> dict[str, Any]:
    assert client.stdin is not None
    assert client.stdout is not None
    run_ids = asyncio.run(_create_runs(emu, key, config.n + config.finishing))
    initial, spare = run_ids[: config.n], run_ids[config.n :]
    if client.stdout.readline().strip() != "READY":
        raise BenchmarkError(f"{config.name}: the client did not start")
    # the window starts once every trigger has made its first read (start + interval, starts spread over the ramp)
    measured = run_window(
        client,
        emu,
        key,
        name=config.name,
        initial=initial,
        spare=spare,
        lead=config.ramp + config.poll,
        length=config.window,
        finishing=config.finishing,
        seed=config.seed,
        last_margin=1.5 * config.poll + 1.0,
        grace=120,
    )
    result, schedule, driver = measured.result, measured.schedule, measured.driver
    w0, w1 = measured.w0, measured.w1
    seconds = control.quota_counts()
    window = [s for s in seconds if w0 <= s["second"] < math.floor(w1)]
    span = max(1, len(range(math.ceil(w0), math.floor(w1))))
    reads = sum(s["reads"] for s in window if s["second"] >= math.ceil(w0))
    finishing_per_s = config.finishing / config.window
    seen = {e["run_id"] for e in result["events"]}
    due = [run_id for at, run_id in schedule if at <= w1 - 1.5 * config.poll]
    result.pop("events")
    result.update(
        driver,
        path=config.path,
        n=config.n,
        poll_s=config.poll,
        read_qps=config.read_qps,
        finishing=config.finishing,
        reads_per_s=round(reads / span, 2),
        reads_bound_per_s=round(math.ceil(config.n / 100) / config.poll + finishing_per_s + 1, 2),
        max_reads_in_a_second=max((s["reads"] for s in window), default=0),
        # the first reads are [t0 + poll, t0 + ramp + poll): every trigger's first read
        throttled_after_first_interval=sum(s["throttled"] for s in seconds if s["second"] >= w0),
        throttled_total=sum(s["throttled"] for s in seconds),
        missed_events=sum(1 for run_id in due if run_id not in seen),
        emulator_calls=control.call_counts(),
    )
    return result


# --- client: the simulated triggerer, the provider as shipped -------------------------------------


async def _client_loop(args: argparse.Namespace, plan: dict[str, Any], state: ClientState) -> None:
    from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

    loop = asyncio.get_running_loop()
    spare: list[str] = list(plan["spare"])
    tasks: set[asyncio.Task[None]] = set()

    async def drive(run_id: str) -> None:
        instance = Instance(run_id, time.monotonic())
        state.instances.append(instance)
        trigger = PipelineRunTrigger(
            pipeline_run_id=run_id,
            project_id=PROJECT_ID,
            poll_interval=args.poll,
            advance_stages=False,
            next_poll_at=time.time() + args.poll,
        )
        try:
            async for event in trigger.run():
                instance.ended = time.monotonic()
                payload = dict(event.payload)
                instance.event = {"run_id": run_id, "status": payload.get("status"), "wall": time.time()}
                instance.event["finish_ms"] = _finish_ms(payload)
                # no break: like Airflow's trigger runner, iterate until the trigger's generator ends
        except Exception as err:
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
    for index, run_id in enumerate(plan["initial"]):
        loop.call_at(mono_t0 + index * args.ramp / len(plan["initial"]), start, run_id)
    await asyncio.Event().wait()  # the monitor thread ends the process
    watchdog.cancel()


def _monitor(args: argparse.Namespace, plan: dict[str, Any], state: ClientState) -> None:
    w0_wall = plan["t0"] + args.ramp + args.poll
    time.sleep(max(0.0, w0_wall - time.time()))
    w0, cpu0, core0 = time.monotonic(), time.process_time(), core_busy_seconds(CLIENT_CPU)
    time.sleep(max(0.0, w0_wall + args.window - time.time()))
    w1, cpu1, core1 = time.monotonic(), time.process_time(), core_busy_seconds(CLIENT_CPU)
    try:
        # A stall counts when it overlaps the window: one that began before it and is still
        # going at its end is the longest stall of all (the per-run path at 10,000 had one).
        samples = [(at, elapsed) for at, elapsed in list(state.watchdog) if at < w1 and at + elapsed > w0]
        ongoing = w1 - max(state.last_tick, w0) - 0.1
        if ongoing > WATCHDOG_THRESHOLD:
            samples.append((max(state.last_tick, w0), ongoing))
        blocks = [(at, elapsed) for at, elapsed in samples if elapsed > WATCHDOG_THRESHOLD]
        gc_window = [pause for pause in list(state.gc_pauses) if w0 <= pause[0] < w1]
        # a stall still going at the end has no CPU figure: counted as the loop's own
        busy = [at for at, elapsed in blocks if state.stall_cpu.get(at, elapsed) > WATCHDOG_THRESHOLD]
        events, latency = [], []
        for instance in list(state.instances):
            if instance.event is None or instance.ended is None or not (w0 <= instance.ended < w1):
                continue
            events.append(instance.event)
            if instance.event["finish_ms"] is not None:
                latency.append(instance.event["wall"] - instance.event["finish_ms"] / 1000)
        cpu_s = cpu1 - cpu0
        active = sum(1 for i in state.instances if i.ended is None)
        emit(
            {
                "window_s": round(w1 - w0, 2),
                "cpu_pct": round(cpu_s / (w1 - w0) * 100, 1),
                # what else ran on the client's core (other processes on this shared machine)
                "other_load_on_client_core_pct": round(((core1 - core0) - cpu_s) / (w1 - w0) * 100, 1),
                "cpu_ms_per_wait_per_interval": round(cpu_s / (w1 - w0) * args.poll / max(active, 1) * 1000, 3),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                # objects the garbage collector tracks at the window's end (what a full collection walks)
                "gc_tracked_objects": len(gc.get_objects()),
                # debugging knob: which types those objects are
                "gc_tracked_types": (
                    Counter(
                        type(o).__qualname__ + (f" {o.__qualname__}" if isinstance(o, types.FunctionType) else "")
                        for o in gc.get_objects()
                    ).most_common(60)
                    if os.environ.get("BENCH_GC_TYPES")
                    else None
                ),
                "event_latency_s": distribution(latency),
                "event_statuses": {
                    s: sum(1 for e in events if e["status"] == s) for s in {e["status"] for e in events}
                },
                "events": events,
                "active_waits": active,
                "watchdog": {
                    "count": len(blocks),
                    "max_s": round(max([e for _, e in samples], default=0.0), 3),
                    # of those, the stalls in which the loop's own thread ran > 0.2 s (not the OS's doing)
                    "loop_busy": len(busy),
                    "max_loop_cpu_s": round(max((state.stall_cpu.get(at, 0.0) for at, _ in blocks), default=0.0), 3),
                    # the garbage collector's pauses in the window: what a busy loop's stalls usually are
                    "gc_pauses": len(gc_window),
                    "gc_max_s": round(max((seconds for _, seconds, _ in gc_window), default=0.0), 3),
                    "gc_full": sum(1 for *_, generation in gc_window if generation == 2),
                    "gc_full_max_s": round(max((s for _, s, g in gc_window if g == 2), default=0.0), 3),
                },
                "trigger_errors": state.errors[:5],
                "trigger_error_count": len(state.errors),
            }
        )
    finally:
        sys.stdout.flush()
        os._exit(0)


def client_main(args: argparse.Namespace) -> None:
    clear_proxies()
    import alibabacloud_dataworks_public20240518.client  # noqa: F401  (imported before t0, as a warm triggerer)

    import airflow_provider_dataworks.triggers.pipeline_run  # noqa: F401

    print("READY", flush=True)
    plan = json.loads(sys.stdin.readline())
    state = ClientState(poll=args.poll)
    state.watch_gc()
    threading.Thread(target=_monitor, args=(args, plan, state), daemon=True).start()
    if os.environ.get("BENCH_STACKS"):  # debugging knob, as in triggerer_scale
        threading.Thread(target=_stack_sampler, args=(state,), daemon=True).start()
    asyncio.run(_client_loop(args, plan, state))


# --- report ------------------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def find(results: dict[str, Any], path: str, n: int, quota: bool = False, finishing: int | None = None) -> Any:
    for config in (results or {}).get("configs", []):
        same = config["path"] == path and config["n"] == n and bool(config.get("read_qps")) == quota
        if same and (finishing is None or config["finishing"] == finishing):
            return config
    return None


def verdicts(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    out: list[tuple[str, str, bool | None]] = []
    for n in (1000, 10000):
        c = find(results, "coalesced", n, finishing=TARGET_FINISHING[n])
        p = find(results, "per-run", n, finishing=TARGET_FINISHING[n])
        if c is None:
            continue
        per_run = f" (per-run reads: {p['reads_per_s']}/s)" if p else ""
        out.append(
            (
                f"Coalesced N = {n:,}: reads/s ≤ ⌈N/100⌉/interval + finishing/s + 1",
                f"{c['reads_per_s']} ≤ {c['reads_bound_per_s']}{per_run}",
                c["reads_per_s"] <= c["reads_bound_per_s"],
            )
        )
        p99 = c["event_latency_s"]["p99"]
        out.append(
            (
                f"Coalesced N = {n:,}: p99 finish → event ≤ 1.5 × interval",
                f"{_s(p99)} s",
                p99 is not None and p99 <= 1.5 * c["poll_s"],
            )
        )
        out.append(
            (f"Coalesced N = {n:,}: no watchdog warning", str(c["watchdog"]["count"]), c["watchdog"]["count"] == 0)
        )
        if n == 10000:
            out.append((f"Coalesced N = {n:,}: ≤ 25 % of a core", f"{c['cpu_pct']} %", c["cpu_pct"] <= 25))
    b = find(results, "coalesced", 1000, quota=True)
    if b is not None:
        out.append(
            (
                "Budget read_qps = 5 vs 5 QPS enforced: zero 429s after the first interval",
                str(b["throttled_after_first_interval"]),
                b["throttled_after_first_interval"] == 0,
            )
        )
        out.append(
            (
                "Budget: no second with more than 5 reads",
                str(b["max_reads_in_a_second"]),
                b["max_reads_in_a_second"] <= 5,
            )
        )
    return out


def section(results: dict[str, Any]) -> str:
    header = [
        "path",
        "N",
        "read QPS enforced",
        "read calls/s (server-counted) / bound",
        "busiest second",
        "finish → event p50 / p99 / max s",
        "events / missed",
        "client CPU % of a core",
        "others' load on the client core %",
        "CPU ms per wait per interval",
        "watchdog > 0.2 s (longest s)",
        "of which the loop ran > 0.2 s of CPU (most CPU s)",
        "GC pauses (longest s)",
        "peak RSS MB",
        "429s after 1st interval",
    ]
    rows = []
    for c in (results or {}).get("configs", []):
        lat = c["event_latency_s"]
        rows.append(
            [
                c["path"],
                f"{c['n']:,}",
                str(c.get("read_qps") or "–"),
                f"{c['reads_per_s']} / {c['reads_bound_per_s']}",
                str(c["max_reads_in_a_second"]),
                f"{_s(lat['p50'])} / {_s(lat['p99'])} / {_s(lat['max'])}",
                f"{sum(c['event_statuses'].values())} / {c['missed_events']}",
                str(c["cpu_pct"]),
                str(c.get("other_load_on_client_core_pct", "–")),
                str(c["cpu_ms_per_wait_per_interval"]),
                f"{c['watchdog']['count']} ({c['watchdog']['max_s']})",
                f"{c['watchdog'].get('loop_busy', '–')} ({c['watchdog'].get('max_loop_cpu_s', '–')})",
                f"{c['watchdog'].get('gc_pauses', '–')} ({c['watchdog'].get('gc_max_s', '–')})",
                str(c["peak_rss_mb"]),
                str(c["throttled_after_first_interval"]),
            ]
        )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    b, base = find(results, "coalesced", 1000, quota=True), find(results, "coalesced", 1000, finishing=50)
    if b and base and b["event_latency_s"]["p50"] is not None and base["event_latency_s"]["p50"] is not None:
        lines += [
            "",
            f"Budget run: status latency added by read_qps = 5 against the same run without a quota: p50 "
            f"{b['event_latency_s']['p50'] - base['event_latency_s']['p50']:+.2f} s, p99 "
            f"{b['event_latency_s']['p99'] - base['event_latency_s']['p99']:+.2f} s.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="role", required=True)
    for role in ("scenario", "client"):
        p = sub.add_parser(role)
        p.add_argument("--path", choices=tuple(PATHS), required=True)
        p.add_argument("--n", type=int, required=True)
        p.add_argument("--poll", type=float, default=10.0)
        p.add_argument("--window", type=float, default=30.0)
        p.add_argument("--ramp", type=float, default=10.0)
        if role == "scenario":
            p.add_argument("--finishing", type=int, default=10)
            p.add_argument("--seed", type=int, default=1)
            p.add_argument("--read-qps", type=float)
    args = parser.parse_args(argv)
    if args.role == "scenario":
        scenario_main(args)
    else:
        client_main(args)


if __name__ == "__main__":
    main()
