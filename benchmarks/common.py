"""Plumbing shared by the benchmarks: clean child processes, CPU pinning, a private network
namespace, the emulator as a separate process, and statistics.

Method (see ``README.md``): every measurement runs in a fresh process with proxy variables
removed; the emulator (server) and the measured client are pinned to different cores with
``taskset``; TCP connections are counted from ``/proc/net/snmp`` (``Tcp: ActiveOpens``) inside a
private network namespace (``unshare -n``) so the other processes on this shared machine do not
add to the count.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
LOGS = OUT / "logs"
PYTHON = sys.executable
#: The Alibaba SDK (requests and aiohttp) honours these even for loopback addresses.
PROXY_ENV_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY")
#: A child prints its result as one line starting with this marker (last one wins).
RESULT_MARKER = "BENCH_RESULT "
SERVER_CPU = "0"
CLIENT_CPU = "1"
_EMULATOR_LINE = re.compile(r"listening on (https?)://(\S+?)(?: \(ca=(.+)\))?$")


class BenchmarkError(RuntimeError):
    """A benchmark could not run (a child failed, the emulator did not start...)."""


# --- processes ----------------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """Return this process's environment without proxy variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_ENV_VARS}
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    # Children import ``benchmarks`` from the repository, whatever the caller's directory.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def clear_proxies() -> None:
    """Remove proxy variables from this process's environment."""
    for name in PROXY_ENV_VARS:
        os.environ.pop(name, None)


_TWO_CORES: bool | None = None


def two_cores() -> bool:
    """Whether server and client can be pinned to different cores (cores 0 and 1 exist and are allowed).

    Checked with ``taskset`` itself, not with this process's affinity: a process already pinned
    to one core may still pin its children to another.
    """
    global _TWO_CORES
    if _TWO_CORES is None:
        _TWO_CORES = (
            (os.cpu_count() or 1) >= 2
            and shutil.which("taskset") is not None
            and subprocess.run(["taskset", "-c", "0,1", "true"], capture_output=True, check=False).returncode == 0
        )
    return _TWO_CORES


def pinned(cmd: Sequence[str], cpu: str) -> list[str]:
    """Return ``cmd`` run under ``taskset -c cpu`` (unchanged when pinning is not possible)."""
    return ["taskset", "-c", cpu, *cmd] if two_cores() else list(cmd)


_NETNS: bool | None = None


def netns_available() -> bool:
    """Whether ``unshare -n`` can give children a private loopback-only network namespace."""
    global _NETNS
    if _NETNS is None:
        if shutil.which("unshare") is None or shutil.which("ip") is None:
            _NETNS = False
        else:
            probe = subprocess.run(
                ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30, check=False
            )
            _NETNS = probe.returncode == 0
    return _NETNS


def in_netns(cmd: Sequence[str]) -> list[str]:
    """Return ``cmd`` run in a fresh network namespace with only loopback up (if possible)."""
    if not netns_available():
        return list(cmd)
    return ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]


def emit(result: Any) -> None:
    """Print a child's result for :func:`run_child`."""
    sys.stdout.write(RESULT_MARKER + json.dumps(result, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def parse_result(stdout: str) -> Any:
    """Return the last result line a child printed."""
    found = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            found = line[len(RESULT_MARKER) :]
    if found is None:
        raise BenchmarkError("the child printed no result")
    return json.loads(found)


def log_path(name: str) -> Path:
    LOGS.mkdir(parents=True, exist_ok=True)
    return LOGS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.log"


def run_child(cmd: Sequence[str], *, name: str, timeout: float, env: dict[str, str] | None = None) -> Any:
    """Run ``cmd`` to completion and return its result; stderr goes to ``out/logs/<name>.log``."""
    path = log_path(name)
    with path.open("w") as log:
        try:
            done = subprocess.run(
                list(cmd),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env or clean_env(),
                timeout=timeout,
                cwd=ROOT,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise BenchmarkError(f"{name}: no result after {timeout:.0f} s (log: {path})") from err
    try:
        result = parse_result(done.stdout)
    except (BenchmarkError, ValueError) as err:
        tail = path.read_text(errors="replace")[-3000:]
        raise BenchmarkError(f"{name}: exit {done.returncode}, {err}; log {path}:\n{tail}") from None
    return result


# --- the emulator in its own process -----------------------------------------------------------


@dataclass
class EmulatorProcess:
    """A DataWorks emulator started as ``python -m airflow_provider_dataworks.testing.emulator``."""

    process: subprocess.Popen[str]
    url: str
    endpoint: str
    protocol: str
    ca_path: str | None

    @classmethod
    def start(
        cls,
        *,
        tls: bool,
        stage_seconds: float = 0.0,
        cpu: str | None = SERVER_CPU,
        cert_dir: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> EmulatorProcess:
        cmd = [PYTHON, "-m", "airflow_provider_dataworks.testing.emulator", "--port", "0"]
        cmd += ["--stage-seconds", str(stage_seconds), *extra_args]
        if tls:
            cmd.append("--tls")
            if cert_dir is not None:
                cert_dir.mkdir(parents=True, exist_ok=True)
                cmd += ["--cert-dir", str(cert_dir)]
        if cpu is not None:
            cmd = pinned(cmd, cpu)
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=clean_env(), cwd=ROOT)
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = _EMULATOR_LINE.search(line)
        if match is None:
            process.kill()
            raise BenchmarkError(f"the emulator did not start (it printed {line!r})")
        protocol, endpoint, ca_path = match.group(1), match.group(2), match.group(3)
        return cls(process, f"{protocol}://{endpoint}", endpoint, protocol, ca_path)

    def controller(self) -> Any:
        """Return ``DataWorksEmulator.attach(...)`` on this emulator."""
        from airflow_provider_dataworks.testing import DataWorksEmulator

        return DataWorksEmulator.attach(self.url, ca_path=self.ca_path)

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def trust_bundle(ca_path: str, name: str) -> str:
    """Write certifi's bundle plus the emulator's CA to ``out/certs/<name>.pem``; return its path.

    Given as the connection's ``ca``, it makes every client build the same trust store as in
    production (the public CAs), so per-connection and per-call SSL-context costs are the
    production ones rather than those of a one-certificate store (perf anchors §1).
    """
    import certifi

    directory = OUT / "certs"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.pem"
    path.write_text(Path(certifi.where()).read_text() + "\n" + Path(ca_path).read_text())
    return str(path)


def client_ssl_context(ca_path: str | None) -> ssl.SSLContext | bool:
    """A client context trusting the emulator's CA (``False``: plain HTTP)."""
    return ssl.create_default_context(cafile=ca_path) if ca_path else False


# --- measurements -------------------------------------------------------------------------------


def active_opens() -> int:
    """``Tcp: ActiveOpens`` of this network namespace: TCP connections it initiated so far."""
    with open("/proc/net/snmp") as snmp:
        lines = [line.split() for line in snmp if line.startswith("Tcp:")]
    header, values = lines[0], lines[1]
    return int(values[header.index("ActiveOpens")])


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Current resident set size of this process, in MB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def steal_seconds() -> float:
    """Hypervisor steal time of the whole machine so far (``/proc/stat``), in seconds."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def core_busy_seconds(cpu: str) -> float:
    """Seconds core ``cpu`` spent busy (any process, incl. steal) so far, from ``/proc/stat``."""
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{cpu} "):
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + (values[4] if len(values) > 4 else 0)
                return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return 0.0


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0–100) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def distribution(values: Iterable[float], scale: float = 1.0) -> dict[str, float | int | None]:
    """p50 / p99 / max (and count) of ``values`` multiplied by ``scale``."""
    ordered = sorted(v * scale for v in values)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else None,
    }


def spread(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """min / median / max over repeats (``None`` values are left out)."""
    present = [v for v in values if v is not None]
    if not present:
        return {"n": 0, "min": None, "median": None, "max": None}
    return {"n": len(present), "min": min(present), "median": statistics.median(present), "max": max(present)}


# --- the machine --------------------------------------------------------------------------------


def _package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=ROOT, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def code_version() -> dict[str, str]:
    """The commit, and the git tree of ``airflow_provider_dataworks/`` measured (read-only git).

    ``provider_tree`` gets ``+modified`` when the provider's files differ from the commit: other
    engineers commit to the same tree, and only a change of the provider's code matters.
    """
    tree = _git("rev-parse", "HEAD:airflow_provider_dataworks")[:10]
    dirty = _git("status", "--porcelain", "--", "airflow_provider_dataworks")
    return {"commit": _git("rev-parse", "--short", "HEAD"), "provider_tree": tree + ("+modified" if dirty else "")}


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as meminfo:
            mem_gib = int(meminfo.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        mem_gib = 0.0
    code = code_version()
    packages = [
        "apache-airflow",
        "alibabacloud-dataworks-public20240518",
        "alibabacloud-tea-openapi",
        "darabonba-core",
        "aiohttp",
        "requests",
        "uvloop",
    ]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "packages": {name: _package_version(name) for name in packages},
        "commit": code["commit"],
        "provider_tree": code["provider_tree"],
        "pinning": two_cores(),
        "netns": netns_available(),
        "load_average": os.getloadavg(),
    }
