"""The hook's cost per ``GetPipelineRun`` over HTTPS, closed loop (perf anchors §3).

Paths compared, each with the real hook class (see :mod:`benchmarks.transports`):

* ``sync``         — ``DataWorksHook.get_pipeline_run`` in one thread (what a worker does);
* ``hook_async``   — ``DataWorksHook.get_pipeline_run_async`` with its default transport (the
  SDK's ``*_async`` over one shared aiohttp session);
* ``hook_threads`` — the same with its fallback transport (the sync SDK on the hook's pool);
* ``native``      — the SDK's own ``get_pipeline_run_async`` on the loop (``native_small_ca``: the
  same, trusting only the emulator's one-certificate CA instead of the production-size store);
* ``raw``         — signed requests over one shared ``aiohttp`` session (the floor).

A scenario process (in a private network namespace, pinned to the server core) starts the
emulator over HTTPS and creates one run; each (path, concurrency, repeat) is then a fresh
client process pinned to the other core that runs ``concurrency`` workers back to back for a
warm-up and a measured window, reporting calls, CPU (all threads), ``ActiveOpens`` and latency.
Repeats are interleaved across paths.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
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
    parse_result,
    pinned,
    run_child,
    spread,
    trust_bundle,
)

PROJECT_ID = 30000
OBJECT_ID = "8700000000000000001"
FULL = [
    ("sync", 1),
    ("hook_async", 1),
    ("hook_async", 10),
    ("hook_threads", 1),
    ("native", 1),
    ("native_small_ca", 1),
    ("raw", 1),
]


def run(smoke: bool = False) -> dict[str, Any]:
    """Measure every path; return per-path min/median/max over the repeats."""
    reps, window, warmup = (1, 0.3, 0.2) if smoke else (3, 1.5, 0.5)
    cmd = [PYTHON, "-m", "benchmarks.call_cost", "scenario", "--reps", str(reps)]
    cmd += ["--window", str(window), "--warmup", str(warmup)]
    if smoke:
        cmd.append("--one-process")
    raw = run_child(in_netns(pinned(cmd, SERVER_CPU)), name="call-cost", timeout=600)
    rows = []
    for mode, conc in FULL:
        samples = [r for r in raw["samples"] if r["mode"] == mode and r["conc"] == conc]
        rows.append(
            {
                "mode": mode,
                "conc": conc,
                "calls_per_s": spread(r["calls_per_s"] for r in samples),
                "cpu_us_per_call": spread(r["cpu_us_per_call"] for r in samples),
                "cpu_util": spread(r["cpu_util"] for r in samples),
                "opens_per_call": spread(r["opens_per_call"] for r in samples),
                "p50_ms": spread(r["latency_ms"]["p50"] for r in samples),
                "p99_ms": spread(r["latency_ms"]["p99"] for r in samples),
                "errors": sum(r["errors"] for r in samples),
            }
        )
    return {"rows": rows, "reps": reps, "window_s": window, "samples": raw["samples"]}


# --- scenario ----------------------------------------------------------------------------------


async def _create_run(emu: EmulatorProcess, key: tuple[str, str]) -> str:
    import aiohttp

    from benchmarks.common import client_ssl_context
    from benchmarks.rawclient import RawClient

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl_context(emu.ca_path))) as session:
        return await RawClient(session, emu.protocol, emu.endpoint, *key).create_pipeline_run(PROJECT_ID, OBJECT_ID)


def scenario_main(args: argparse.Namespace) -> None:
    clear_proxies()
    samples = []
    with EmulatorProcess.start(tls=True, stage_seconds=0.0) as emu:
        control = emu.controller()
        control.add_object(PROJECT_ID, OBJECT_ID, name="bench_node")
        run_id = asyncio.run(_create_run(emu, (control.access_key_id, control.access_key_secret)))
        env = clean_env(
            AIRFLOW_CONN_DATAWORKS_DEFAULT=control.connection_uri(
                project_id=PROJECT_ID, ca=trust_bundle(emu.ca_path or "", "call-cost")
            ),
            # the emulator's one-certificate CA alone: what the SDK's per-call SSL context costs then
            AIRFLOW_CONN_DATAWORKS_SMALL_CA=control.connection_uri(project_id=PROJECT_ID),
            AIRFLOW_HOME=str(OUT / "airflow-home"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
        )
        if args.one_process:
            clients = [",".join(f"{mode}:{conc}" for mode, conc in FULL)] * args.reps
        else:  # one fresh process per path and repeat, repeats interleaved across paths
            clients = [f"{mode}:{conc}" for _ in range(args.reps) for mode, conc in FULL]
        for configs in clients:
            cmd = [PYTHON, "-m", "benchmarks.call_cost", "client", "--configs", configs, "--run-id", run_id]
            cmd += ["--window", str(args.window), "--warmup", str(args.warmup)]
            done = subprocess.run(
                pinned(cmd, CLIENT_CPU), capture_output=True, text=True, env=env, timeout=300, check=False
            )
            try:
                samples.extend(parse_result(done.stdout))
            except (BenchmarkError, ValueError) as err:
                raise BenchmarkError(f"call-cost client {configs}: {err}\n{done.stderr[-3000:]}") from None
    emit({"samples": samples})


# --- client ------------------------------------------------------------------------------------


class _Loop:
    """Counters of one closed-loop measurement."""

    def __init__(self) -> None:
        self.measuring = False
        self.stop = False
        self.calls = 0
        self.errors = 0
        self.latencies: list[float] = []

    def record(self, started: float, ok: bool) -> None:
        if self.measuring:
            self.calls += 1
            self.errors += not ok
            self.latencies.append(time.perf_counter() - started)


def _measure(mode: str, conc: int, run_id: str, window: float, warmup: float) -> dict[str, Any]:
    from benchmarks.transports import HOOKS, select_transport, transport_used

    state = _Loop()
    kind = {"sync": "hook", "hook_async": "hook", "native_small_ca": "native"}.get(mode, mode)
    conn_id = "dataworks_small_ca" if mode == "native_small_ca" else "dataworks_default"
    select_transport(kind)
    hook: Any = HOOKS[kind](conn_id)

    def edges() -> tuple[float, float, float, float]:
        return time.perf_counter(), time.process_time(), float(active_opens()), core_busy_seconds(CLIENT_CPU)

    if mode == "sync":

        def worker() -> None:
            while not state.stop:
                started = time.perf_counter()
                try:
                    hook.get_pipeline_run(run_id, PROJECT_ID)
                    ok = True
                except Exception:
                    ok = False
                state.record(started, ok)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(conc)]
        for thread in threads:
            thread.start()
        time.sleep(warmup)
        before = edges()
        state.measuring = True
        time.sleep(window)
        state.measuring = False
        after = edges()
        state.stop = True
        for thread in threads:
            thread.join(timeout=30)
    else:

        async def main() -> tuple[tuple[float, float, float, float], tuple[float, float, float, float]]:
            async def worker() -> None:
                while not state.stop:
                    started = time.perf_counter()
                    try:
                        await hook.get_pipeline_run_async(run_id, PROJECT_ID)
                        ok = True
                    except Exception:
                        ok = False
                    state.record(started, ok)

            tasks = [asyncio.create_task(worker()) for _ in range(conc)]
            await asyncio.sleep(warmup)
            first = edges()
            state.measuring = True
            await asyncio.sleep(window)
            state.measuring = False
            last = edges()
            state.stop = True
            await asyncio.wait(tasks, timeout=30)
            return first, last

        before, after = asyncio.run(main())
    wall, cpu, opens, core = (a - b for a, b in zip(after, before, strict=True))
    calls = max(state.calls, 1)
    return {
        "mode": mode,
        "conc": conc,
        "calls": state.calls,
        "errors": state.errors,
        "calls_per_s": round(state.calls / wall, 1),
        "cpu_us_per_call": round(cpu / calls * 1e6, 1),
        "cpu_util": round(cpu / wall, 2),
        "opens_per_call": round(opens / calls, 4),
        "latency_ms": distribution(state.latencies, 1000),
        "other_load_on_client_core_pct": round((core - cpu) / wall * 100, 1),
        "transport": transport_used() if mode != "sync" else None,
    }


def client_main(args: argparse.Namespace) -> None:
    clear_proxies()
    logging.getLogger("airflow_provider_dataworks").setLevel(logging.WARNING)
    import alibabacloud_dataworks_public20240518.client  # noqa: F401

    results = []
    for spec in args.configs.split(","):
        mode, conc = spec.split(":")
        results.append(_measure(mode, int(conc), args.run_id, args.window, args.warmup))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    emit(results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="role", required=True)
    scenario = sub.add_parser("scenario")
    scenario.add_argument("--reps", type=int, default=3)
    scenario.add_argument("--one-process", action="store_true", help="every path in one client process (smoke)")
    client = sub.add_parser("client")
    client.add_argument("--configs", required=True, help="mode:concurrency,...")
    client.add_argument("--run-id", required=True)
    for p in (scenario, client):
        p.add_argument("--window", type=float, default=3.0)
        p.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.role == "scenario":
        scenario_main(args)
    else:
        client_main(args)


if __name__ == "__main__":
    main()
