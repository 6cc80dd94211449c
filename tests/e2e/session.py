"""What one end-to-end step started, how it is all stopped, and what it reports at the end.

Both real-Airflow steps (``tests/e2e`` on SQLite, ``tests/e2e_prod`` on PostgreSQL and Celery) run
the same way: a session-scoped temporary folder comes first, then fixtures start processes and
register how each is stopped. Every stop runs in its fixture's finalizer, also when a test or the
setup fails; SIGTERM (CI cancelling the job) becomes ``KeyboardInterrupt`` so pytest still runs
the finalizers, and an ``atexit`` hook stops whatever is left. When anything failed, the tail of
every component log is printed once, at the end of the session.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from .processes import ManagedProcess, clean_environment, tail, wait_until

#: what the emulator CLI prints once it listens (``… (ca=PATH)`` follows with ``--tls``)
EMULATOR_BANNER = "DataWorks emulator listening on "


def _on_sigterm(signum: int, frame: object) -> None:
    # CI cancelling the job sends SIGTERM: turn it into KeyboardInterrupt so pytest runs the finalizers.
    raise KeyboardInterrupt(f"received signal {signum}")


class StepSession:
    """The stop callbacks, the summary and the failure logs of one e2e step.

    :param name: the step's name in the terminal summary's headings (``e2e``, ``e2e-prod``).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        #: stop callbacks of whatever is running, the latest last
        self.cleanups: list[Callable[[], None]] = []
        #: lines printed at the end of the session
        self.summary: list[str] = []
        #: component log tails, printed at the end when something failed
        self.failure_logs: list[str] = []

    def stop_everything(self) -> None:
        """Run every stop callback still registered, the latest first."""
        while self.cleanups:
            self.cleanups.pop()()

    def write_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the summary lines, then the failure logs if any (``pytest_terminal_summary``)."""
        if self.summary:
            terminalreporter.write_sep("-", f"{self.name} summary")
            for line in self.summary:
                terminalreporter.write_line(line)
        if self.failure_logs:
            terminalreporter.write_sep("=", f"{self.name} component logs (something failed)")
            for text in self.failure_logs:
                terminalreporter.write_line(text)

    @contextmanager
    def temporary_directory(self, prefix: str) -> Iterator[Path]:
        """Yield the step's folder; at the end stop everything and remove it (kept with ``E2E_KEEP_TMP=1``).

        Also installs the SIGTERM handler and the ``atexit`` safety net for the whole step.
        """
        previous_handler = signal.signal(signal.SIGTERM, _on_sigterm)
        atexit.register(self.stop_everything)
        path = Path(tempfile.mkdtemp(prefix=prefix))
        keep = os.environ.get("E2E_KEEP_TMP") == "1"

        def remove() -> None:
            if keep:
                self.summary.append(f"E2E_KEEP_TMP=1: kept {path}")
            else:
                shutil.rmtree(path, ignore_errors=True)

        self.cleanups.append(remove)
        try:
            yield path
        finally:
            self.stop_everything()
            signal.signal(signal.SIGTERM, previous_handler)
        assert keep or not path.exists(), f"{path} was not removed"

    @contextmanager
    def stopped_at_end(
        self,
        stop: Callable[[], Iterable[str] | None],
        *,
        request: pytest.FixtureRequest | None = None,
        failure_log: Callable[[], str] | None = None,
    ) -> Iterator[None]:
        """Run the body with ``stop`` registered; then call it once and fail on what it left running.

        :param stop: stops a component; returns descriptions of processes that survived it (or ``None``).
        :param request: the fixture's request, to see whether any test failed.
        :param failure_log: the component's log tail, kept for the end of the session when a test failed.
        """
        leftovers: list[str] = []

        def stop_once() -> None:
            leftovers.extend(stop() or ())

        self.cleanups.append(stop_once)
        try:
            yield
        finally:
            # Already run if the atexit safety net or the step's own teardown got there first.
            if stop_once in self.cleanups:
                self.cleanups.remove(stop_once)
                stop_once()
            if failure_log is not None and request is not None and request.session.testsfailed:
                self.failure_logs.append(failure_log())
        assert not leftovers, "processes that survived SIGTERM and SIGKILL:\n" + "\n".join(leftovers)

    @contextmanager
    def emulator_process(
        self, log_path: Path, options: Sequence[str], *, request: pytest.FixtureRequest, log_lines: int
    ) -> Iterator[tuple[str, str | None]]:
        """Run the emulator CLI on a free port until the end of the body; yield its URL and CA path.

        :param options: CLI options after ``--port 0`` (``--stage-seconds``, ``--tls`` …).
        :param log_lines: how much of its log to keep for the end of the session when a test failed.
        :return: the URL and, with ``--tls``, the CA bundle to trust (else ``None``).
        """
        argv = [sys.executable, "-m", "airflow_provider_dataworks.testing.emulator", "--port", "0", *options]
        proc = ManagedProcess(name="emulator", argv=argv, env=clean_environment(), log_path=log_path)
        log = lambda: f"===== {log_path.name} (last {log_lines} lines) =====\n{tail(log_path, log_lines)}"  # noqa: E731
        with self.stopped_at_end(proc.stop, request=request, failure_log=log):
            proc.start()
            yield wait_until(lambda: _emulator_address(proc), timeout=30, interval=0.2, what="the emulator to listen")


def _emulator_address(proc: ManagedProcess) -> tuple[str, str | None] | None:
    """The URL and CA path the emulator printed, ``None`` before it listens; ``RuntimeError`` if it exited."""
    if not proc.alive():
        raise RuntimeError(f"the emulator exited:\n{tail(proc.log_path)}")
    for line in proc.log_path.read_text(errors="replace").splitlines():
        if line.startswith(EMULATOR_BANNER):
            address = line.removeprefix(EMULATOR_BANNER)
            url, _, ca = address.partition(" (ca=")
            return url.split()[0], ca.removesuffix(")") or None
    return None
