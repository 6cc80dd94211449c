"""Capacity of the DataWorks emulator: signed ``GetPipelineRun`` requests per second.

The emulator runs as its own process (the ``dataworks-emulator`` command line, on uvloop), the
load generator in this one: a raw ``aiohttp`` client with one shared keep-alive session and
``concurrency`` workers, each request ACS3-signed with a fresh nonce, so the server does the
full signature, timestamp and nonce work of a real SDK request. Measured over HTTP and HTTPS.

Run ``python -m benchmarks.emulator_capacity --seconds 5 --concurrency 32``; the benchmark
runner calls :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import ssl
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp

from airflow_provider_dataworks.testing import PROXY_ENV_VARS
from airflow_provider_dataworks.testing.signature import sign_acs3_headers

ACCESS_KEY_ID = "bench-ak"
ACCESS_KEY_SECRET = "bench-secret"
PROJECT_ID = "10000"
OBJECT_ID = "8600000000000000002"
_LINE = re.compile(r"listening on (https?)://(\S+)(?: \(ca=(.+)\))?")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_emulator(tls: bool) -> tuple[subprocess.Popen[str], str, str, str | None]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_ENV_VARS}
    args = [sys.executable, "-m", "airflow_provider_dataworks.testing.emulator", "--port", "0"]
    args += ["--access-key-id", ACCESS_KEY_ID, "--access-key-secret", ACCESS_KEY_SECRET, "--stage-seconds", "0"]
    if tls:
        args.append("--tls")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    match = _LINE.search(process.stdout.readline())
    if match is None:
        process.kill()
        raise RuntimeError("the emulator did not start")
    return process, match.group(1), match.group(2), match.group(3)


def _signed(method: str, endpoint: str, action: str, query: dict[str, str], body: bytes = b"") -> dict[str, str]:
    return sign_acs3_headers(
        method=method,
        host=endpoint,
        action=action,
        query=query,
        body=body,
        access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET,
        content_type="application/x-www-form-urlencoded" if body else None,
    )


async def _load(
    protocol: str, endpoint: str, ca_path: str | None, seconds: float, concurrency: int, warmup: float
) -> dict[str, Any]:
    base = f"{protocol}://{endpoint}/"
    ssl_context: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_path) if ca_path else False
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=ssl_context)
    async with aiohttp.ClientSession(connector=connector) as session:
        body = f"ObjectIds=%5B%22{OBJECT_ID}%22%5D&ProjectId={PROJECT_ID}&Type=Online".encode()
        headers = _signed("POST", endpoint, "CreatePipelineRun", {}, body)
        async with session.post(base, data=body, headers=headers) as response:
            run_id = (await response.json())["Id"]
        query = {"Id": run_id, "ProjectId": PROJECT_ID}

        latencies: list[float] = []
        counts = {"ok": 0, "errors": 0}
        measuring = False
        stop_at = time.monotonic() + warmup + seconds

        async def worker() -> None:
            while time.monotonic() < stop_at:
                headers = _signed("GET", endpoint, "GetPipelineRun", query)
                started = time.perf_counter()
                async with session.get(base, params=query, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
                if measuring:
                    latencies.append(time.perf_counter() - started)
                    counts["ok" if ok else "errors"] += 1

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(warmup)
        measuring = True
        window_start = time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - window_start
    latencies.sort()
    total = counts["ok"] + counts["errors"]
    return {
        "requests": total,
        "errors": counts["errors"],
        "seconds": round(elapsed, 3),
        "req_per_s": round(total / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2) if latencies else None,
    }


def _measure(tls: bool, seconds: float, concurrency: int) -> dict[str, Any]:
    process, protocol, endpoint, ca_path = _start_emulator(tls)
    try:
        cpu_before, wall_before = _cpu_seconds(process.pid), time.monotonic()
        result = asyncio.run(_load(protocol, endpoint, ca_path, seconds, concurrency, warmup=min(1.0, seconds / 4)))
        cpu, wall = _cpu_seconds(process.pid) - cpu_before, time.monotonic() - wall_before
        result["server_cpu_util"] = round(cpu / wall, 2)
        result["server_cpu_us_per_req"] = round(cpu / max(result["requests"], 1) * 1e6, 1)
    finally:
        process.terminate()
        process.wait(timeout=10)
    result["clean_exit"] = process.returncode == 0
    return result


def run(seconds: float = 5.0, concurrency: int = 32) -> dict[str, Any]:
    """Measure signed ``GetPipelineRun`` throughput of the emulator over HTTP and over HTTPS.

    :param seconds: length of each measured window (after a short warm-up).
    :param concurrency: number of concurrent client workers.
    :return: ``{"http": {...}, "https": {...}, "concurrency": N}`` with ``req_per_s``, latencies
        and the server's CPU use per request.
    """
    return {
        "concurrency": concurrency,
        "http": _measure(False, seconds, concurrency),
        "https": _measure(True, seconds, concurrency),
    }


def main() -> None:
    """Command line entry point: print the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.concurrency), indent=2))


if __name__ == "__main__":
    main()
