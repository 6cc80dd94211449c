"""Start and stop the long-running processes of the end-to-end step.

Every process is started in a new session (its own process group) with its output in a log
file. Stopping sends SIGTERM to the group and to every descendant recorded while it ran (Airflow's
task supervisor moves each task into a process group of its own, so ``killpg`` alone would miss
them), waits, then SIGKILLs whatever is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

T = TypeVar("T")

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the current environment without proxies (the Alibaba SDK honours them even for loopback)."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 60, *, skip: str | None = None, width: int = 600) -> str:
    """Return the last ``lines`` lines of a log file, each cut to ``width`` characters.

    :param skip: leave out lines containing this text (e.g. the API server's access log).
    """
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"<{path} does not exist>"
    kept = [line for line in text.splitlines() if not skip or skip not in line]
    return "\n".join(line if len(line) <= width else line[:width] + " …" for line in kept[-lines:])


@dataclass
class ManagedProcess:
    """One background process with its own process group and log file."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None
    _seen: dict[int, psutil.Process] = field(default_factory=dict)

    def start(self) -> ManagedProcess:
        """Start the process (new session, stdout and stderr into the log file)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                list(self.argv),
                env=dict(self.env),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.remember_descendants()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def remember_descendants(self) -> None:
        """Record the process tree now, so that stop() also reaches re-grouped children."""
        if not self.alive():
            return
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.pid)
            for proc in [root, *root.children(recursive=True)]:
                self._seen.setdefault(proc.pid, proc)

    def _tracked(self) -> list[psutil.Process]:
        self.remember_descendants()
        alive = []
        for proc in self._seen.values():
            # is_running() compares the creation time, so a recycled pid is never signalled.
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
        return alive

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group and all recorded descendants, then SIGKILL what survives ``grace`` s."""
        if self.popen is None:
            return
        procs = self._tracked()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGTERM)
        for proc in procs:
            # One SIGTERM each: the group got it already; only re-grouped descendants still need it.
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(proc.pid) != self.pid:
                    proc.terminate()
        _, survivors = psutil.wait_procs(procs, timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for proc in [*survivors, *self._tracked()]:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL the group and every recorded descendant at once, as a crash would; wait for the root."""
        if self.popen is None:
            return
        procs = self._tracked()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        psutil.wait_procs(procs, timeout=10)

    def pids(self) -> set[int]:
        """The pids of the process and its live descendants right now."""
        self.remember_descendants()
        return {proc.pid for proc in self._tracked()}

    def leftovers(self, grace: float = 5.0) -> list[str]:
        """Describe recorded processes still running ``grace`` s after stop() (empty after a clean stop)."""
        # A SIGKILLed process whose parent died first is reaped by init a moment later.
        _, alive = psutil.wait_procs(self._tracked(), timeout=grace)
        out = []
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    out.append(f"{proc.pid} ({proc.status()}) {' '.join(proc.cmdline())[:120]}")
        return out

    def tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str,
    on_tick: Callable[[], None] | None = None,
) -> T:
    """Poll ``predicate`` until it returns a truthy value and return that; ``TimeoutError`` naming ``what``.

    Other errors of ``predicate`` count as "not yet", except ``AssertionError`` and ``RuntimeError``,
    which end the wait at once; ``on_tick`` runs before every attempt (e.g. to check processes are alive).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if on_tick is not None:
            on_tick()
        try:
            value = predicate()
        except (AssertionError, RuntimeError):
            raise  # a verdict (a DAG import error, a component that died): waiting longer cannot help
        except Exception as err:  # the component may not be up yet; keep the reason for the message
            last_error = err
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)
