"""K processes, one account: does the request budget hold DataWorks' account-wide quota?

K client processes (K = 1, 2, 4, 8) at the default budget (``read_qps`` 3, ``write_qps`` 2)
each run :data:`DEPLOYERS` threads that deploy an object and wait for its run
(``create_pipeline_run`` + ``wait_for_pipeline_run``, stages driven by the hook) again and
again, against one emulator in its own process that enforces 5 QPS for all calls of the account
together (the Basic edition). Two designs:

* ``shared``: ``[dataworks] quota_store`` names a Redis, so the budget is the account's;
* ``shared-all``: the same, with ``[dataworks] account_qps = 5``: one bucket for all calls, the
  shape of the 5-QPS editions' quota, instead of a read and a write bucket;
* ``per-process``: no store, each process has the whole budget and backs off on 429s (AIMD).

Per K and design: calls per second at the emulator (the peak one-second window after the first
:data:`WARMUP_SECONDS`, counting every call that arrived, throttled or not; and the average
admitted), the share of 429s, deployments finished per minute,
and the p99 latency the budget added to a call (the call's time minus its last HTTP attempt's:
the wait for a slot plus retries after 429s). Targets: peak ≤ 5, 429s ≤ 2 %, throughput ≥ 80 %
of 5 QPS' worth of deployments (5 divided by the calls one deployment needs, as counted).

Also the cost per call of each design: the time to take a slot from a bucket that never waits,
local (a lock) and shared (one Redis round trip over loopback).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    OUT,
    PYTHON,
    ROOT,
    BenchmarkError,
    EmulatorProcess,
    clean_env,
    clear_proxies,
    distribution,
    emit,
    log_path,
    parse_result,
)

PROJECT_ID = 10000
#: the account's quota the emulator enforces: all calls together, as on the Basic edition
ACCOUNT_QPS = 5.0
#: deployment loops per process, enough for one process to want more than the quota
DEPLOYERS = 3
STAGE_SECONDS = 1.0
POLL_INTERVAL = 1.0
WARMUP_SECONDS = 10
DESIGNS = ("shared", "shared-all", "per-process")
TARGET_PEAK = 5
TARGET_THROTTLED_SHARE = 0.02
TARGET_THROUGHPUT = 0.8


# --- the client process ------------------------------------------------------------------------


class _CallTimes:
    """Per call: the whole call's time minus its last HTTP attempt's (what the budget added)."""

    def __init__(self) -> None:
        self.added: list[float] = []
        #: calls answered (before the stop time) in the current deployment of each thread
        self.calls = threading.local()
        self.stop_at = float("inf")
        self._local = threading.local()
        self._lock = threading.Lock()

    def install(self) -> None:
        from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

        send, call, times = DataWorksHook._send, DataWorksHook._call, self

        def timed_send(hook: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return send(hook, *args, **kwargs)
            finally:
                times._local.last_send = time.monotonic() - started

        def timed_call(hook: Any, *args: Any, **kwargs: Any) -> Any:
            started, times._local.last_send = time.monotonic(), 0.0
            try:
                answer = call(hook, *args, **kwargs)
                if time.time() <= times.stop_at:  # work done after the stop time is not counted
                    times.calls.count = getattr(times.calls, "count", 0) + 1
                return answer
            finally:
                added = time.monotonic() - started - times._local.last_send
                with times._lock:
                    times.added.append(added)

        DataWorksHook._send = timed_send  # type: ignore[method-assign]
        DataWorksHook._call = timed_call  # type: ignore[method-assign]


def child(args: argparse.Namespace) -> None:
    """One client process: DEPLOYERS threads deploy their own object until the stop time."""
    from airflow_provider_dataworks.exceptions import DataWorksError
    from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

    times = _CallTimes()
    times.install()
    hook = DataWorksHook()
    hook.get_conn()
    Path(args.ready).touch()
    while not Path(args.go).exists():
        time.sleep(0.01)
    start_at = time.time()
    stop_at = times.stop_at = start_at + args.seconds
    finished: list[tuple[float, int]] = []  # (when, calls it took)
    unfinished: list[int] = []  # calls made by the deployments cut off at the stop time
    errors: list[str] = []
    lock = threading.Lock()

    def deployer(object_id: str) -> None:
        while time.time() < stop_at:
            times.calls.count = 0
            try:
                run_id = hook.create_pipeline_run(object_id, project_id=PROJECT_ID)
                hook.wait_for_pipeline_run(run_id, PROJECT_ID, poll_interval=POLL_INTERVAL, deadline=stop_at)
            except DataWorksError as err:
                with lock:
                    if time.time() < stop_at:  # a wait cut off at the stop time is no error
                        errors.append(f"{type(err).__name__}: {err}"[:300])
                    else:
                        unfinished.append(times.calls.count)
                continue
            with lock:
                finished.append((time.time(), times.calls.count))

    threads = [
        threading.Thread(target=deployer, args=(object_id,), daemon=True) for object_id in args.objects.split(",")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.seconds + 60)
    emit(
        {
            "start_at": start_at,
            "finished": finished,
            "unfinished": unfinished,
            "added": times.added,
            "errors": errors[:20],
        }
    )


# --- the run -----------------------------------------------------------------------------------


class _Redis:
    """A throw-away Redis on a free loopback port."""

    def __init__(self) -> None:
        import socket

        executable = shutil.which("redis-server")
        if executable is None:
            raise BenchmarkError("redis-server is not installed (scripts/install_e2e_prod_services.sh)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.folder = tempfile.mkdtemp(prefix="bench-redis-")
        argv = [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [*argv, "--dir", self.folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise BenchmarkError("redis-server did not answer PING") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def _run_config(
    emulator: EmulatorProcess, design: str, k: int, seconds: float, store_url: str | None
) -> dict[str, Any]:
    control = emulator.controller()
    control.reset()
    control.set_quota(qps=ACCOUNT_QPS)
    connection = control.connection_uri(project_id=PROJECT_ID)  # no rates: the default budget
    extra = {
        "AIRFLOW_CONN_DATAWORKS_DEFAULT": connection,
        "AIRFLOW__DATAWORKS__QUOTA_STORE": store_url or "",
        "AIRFLOW__DATAWORKS__ACCOUNT_QPS": f"{ACCOUNT_QPS:g}" if design == "shared-all" else "",
    }
    folder = Path(tempfile.mkdtemp(prefix="bench-quota-"))
    go = folder / "go"
    processes = []
    try:
        for index in range(k):
            objects = [f"87{index:04d}{slot:09d}" for slot in range(DEPLOYERS)]
            for object_id in objects:
                control.add_object(PROJECT_ID, object_id, stage_seconds=STAGE_SECONDS)
            cmd = [PYTHON, "-m", "benchmarks.account_quota", "--child", "--seconds", str(seconds)]
            cmd += ["--objects", ",".join(objects), "--ready", str(folder / f"ready-{index}"), "--go", str(go)]
            log = log_path(f"account_quota-{design}-k{k}-{index}").open("w")
            processes.append(
                (
                    subprocess.Popen(
                        cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=clean_env(**extra), cwd=ROOT
                    ),
                    log,
                )
            )
        deadline = time.monotonic() + 120
        while not all((folder / f"ready-{i}").exists() for i in range(k)):
            if time.monotonic() > deadline or any(p.poll() is not None for p, _ in processes):
                raise BenchmarkError(f"{design} K={k}: a client did not start (logs in benchmarks/out/logs)")
            time.sleep(0.05)
        go.touch()
        results = []
        for process, log in processes:
            stdout, _ = process.communicate(timeout=seconds + 120)
            log.close()
            results.append(parse_result(stdout))
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
        shutil.rmtree(folder, ignore_errors=True)

    counts = control.quota_counts()
    report = control.quota_report(skip_first=WARMUP_SECONDS)
    start = min(r["start_at"] for r in results)
    done = [calls for r in results for when, calls in r["finished"] if when <= start + seconds]
    # finished after the stop time: its calls before it count, as for one cut off by it
    late = [calls for r in results for when, calls in r["finished"] if when > start + seconds]
    calls_per_deployment = statistics.mean(done) if done else None
    # a deployment cut off at the stop time counts for the part of its calls it made
    unfinished = [c for r in results for c in r["unfinished"]] + late
    partial = sum(min(1.0, c / calls_per_deployment) for c in unfinished) if calls_per_deployment else 0.0
    deployments_per_minute = (len(done) + partial) / seconds * 60
    # 5 QPS' worth of work: the deployments a minute 5 calls a second pay for, at the calls one takes
    ideal_per_minute = ACCOUNT_QPS * 60 / calls_per_deployment if calls_per_deployment else None
    window = [s for s in counts if s["second"] < int(start) + seconds]
    added = distribution((a for r in results for a in r["added"]), scale=1000)
    return {
        "design": design,
        "k": k,
        "seconds": seconds,
        "calls": report["calls"],
        "peak_per_second": report["peak_per_second"],
        "peak_admitted_per_second": report["peak_admitted_per_second"],
        "average_per_second": round(sum(s["reads"] + s["writes"] for s in window) / seconds, 2),
        "throttled": report["throttled"],
        "throttled_share": round(report["throttled_share"], 4),
        "deployments": len(done),
        "deployments_per_minute": round(deployments_per_minute, 1),
        "calls_per_deployment": None if calls_per_deployment is None else round(calls_per_deployment, 1),
        "throughput_of_ideal": None if not ideal_per_minute else round(deployments_per_minute / ideal_per_minute, 3),
        "added_latency_ms": added,
        "errors": [e for r in results for e in r["errors"]][:10],
        "reads": sum(s["reads"] for s in counts),
        "writes": sum(s["writes"] for s in counts),
        "per_second": [s["reads"] + s["writes"] for s in counts],
        "throttled_per_second": [s["throttled"] for s in counts],
    }


def meets_targets(row: dict[str, Any]) -> bool:
    """Whether one configuration holds the quota: peak, 429 share and throughput."""
    return (
        row["peak_per_second"] <= TARGET_PEAK
        and row["throttled_share"] <= TARGET_THROTTLED_SHARE
        and (row["throughput_of_ideal"] or 0) >= TARGET_THROUGHPUT
        and not row["errors"]
    )


def slot_cost(store_url: str | None, n: int = 2000) -> dict[str, Any]:
    """Microseconds to take a slot from a bucket that never waits: local, and shared through Redis."""
    from airflow_provider_dataworks.hooks import budget, quota_share

    local = budget.TokenBucket(1e9)
    started = time.perf_counter()
    for _ in range(n):
        local.reserve()
    result: dict[str, Any] = {"local_us": round((time.perf_counter() - started) / n * 1e6, 2)}
    if store_url:
        store = quota_share.QuotaStore(store_url)
        bucket = quota_share.SharedTokenBucket(store, f"{quota_share.KEY_PREFIX}:bench", budget.TokenBucket(1e9))
        bucket.reserve()  # connect, load the script
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            bucket.reserve()
            samples.append((time.perf_counter() - t0) * 1e6)
        samples.sort()
        result.update(
            shared_us_median=round(statistics.median(samples), 1),
            shared_us_p99=round(samples[int(len(samples) * 0.99) - 1], 1),
            store_failures=store.failures,
        )
    return result


def run(smoke: bool = False) -> dict[str, Any]:
    """Run every configuration; ``smoke``: one short shared one, K = 1."""
    ks = [1] if smoke else [1, 2, 4, 8]
    chosen = os.environ.get("BENCH_ACCOUNT_QUOTA_DESIGNS")
    designs = ["shared-all"] if smoke else chosen.split(",") if chosen else list(DESIGNS)
    seconds = 4.0 if smoke else float(os.environ.get("BENCH_ACCOUNT_QUOTA_SECONDS", "45"))
    redis_server = _Redis()
    rows = []
    try:
        cost = slot_cost(redis_server.url, n=200 if smoke else 2000)
        with EmulatorProcess.start(tls=False, stage_seconds=STAGE_SECONDS, cpu=None) as emulator:
            for design in designs:
                for k in ks:
                    store_url = redis_server.url if design.startswith("shared") else None
                    print(f"[bench] account quota: {design} K={k} ...", file=sys.stderr, flush=True)
                    row = _run_config(emulator, design, k, seconds, store_url)
                    row["meets_targets"] = meets_targets(row)
                    rows.append(row)
    finally:
        redis_server.stop()
    return {
        "account_qps": ACCOUNT_QPS,
        "deployers_per_process": DEPLOYERS,
        "stage_seconds": STAGE_SECONDS,
        "poll_interval": POLL_INTERVAL,
        "warmup_seconds": WARMUP_SECONDS,
        "slot_cost": cost,
        "rows": rows,
    }


def section(results: dict[str, Any]) -> str:
    """The RESULTS.md section of this benchmark."""
    if not results.get("rows"):
        return "_not run_\n"
    lines = [
        "| design | K | peak calls/s (after 10 s) | average calls/s | 429 share | deployments/min "
        "| of 5 QPS' worth | added latency p50 / p99 (ms) | targets |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        added = row["added_latency_ms"]
        lines.append(
            f"| {row['design']} | {row['k']} | {row['peak_per_second']} | {row['average_per_second']:.2f} "
            f"| {row['throttled_share'] * 100:.1f} % ({row['throttled']} of {row['calls']}) "
            f"| {row['deployments_per_minute']:.1f} | {(row['throughput_of_ideal'] or 0) * 100:.0f} % "
            f"| {added['p50']:.0f} / {added['p99']:.0f} | {'met' if row['meets_targets'] else 'MISSED'} |"
        )
    cost = results.get("slot_cost") or {}
    lines += [
        "",
        f"Cost of taking a slot (a bucket that never waits): local {cost.get('local_us')} µs; shared through "
        f"Redis on loopback {cost.get('shared_us_median')} µs median, {cost.get('shared_us_p99')} µs p99.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--child", action="store_true", help="(internal) one client process")
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--objects", default="")
    parser.add_argument("--ready", default="")
    parser.add_argument("--go", default="")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--render", metavar="JSON", help="only print the section of a saved run")
    args = parser.parse_args(argv)
    if args.render:
        print(section(json.loads(Path(args.render).read_text())))
        return
    if args.child:
        child(args)
        return
    clear_proxies()
    results = run(smoke=args.smoke)
    out = OUT / f"account_quota{'-smoke' if args.smoke else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(section(results))
    print(f"[bench] saved {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
