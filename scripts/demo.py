"""``make demo``: deploy a DataWorks workflow from Airflow, end to end, with no cloud account.

1. Start the DataWorks emulator in a subprocess (every stage takes ``--stage-seconds``, 1 s by
   default, so the stage timeline is visible).
2. Create a throw-away ``AIRFLOW_HOME`` and run ``airflow db migrate`` in it.
3. Point ``AIRFLOW_CONN_DATAWORKS_DEFAULT`` at the emulator and run Airflow's own
   ``airflow dags test dataworks_release_window`` with ``example_dags/`` as the DAGs folder;
   the deferrable task's trigger runs inline. Stage transitions are printed as they happen.
4. Print the pipeline run (ID from the emulator, checked against the task's XCom), its stage
   timeline and the final states.

Airflow's own output goes to ``.airflow-demo/airflow.log`` (its tail is printed on failure).
The emulator and the temporary directory are always cleaned up. Exit code 0 only when the DAG
run, the task and the pipeline run all succeeded and the XCom names the emulator's run.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = REPO / "example_dags"
LOG_DIR = REPO / ".airflow-demo"  # git-ignored; kept after the demo so the log can be read
DAG_ID = "dataworks_release_window"
TASK_ID = "deploy_workflow"
OBJECT_ID = "8600000000000000001"
WORKSPACE_ID = 10000
PROXY_ENV_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
EMULATOR_BANNER = "DataWorks emulator listening on "


def say(message: str = "") -> None:
    print(message, flush=True)


def child_environment() -> dict[str, str]:
    """This process's environment without proxies (the SDK proxies even loopback) or Airflow config."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in PROXY_ENV_VARS and not name.startswith("AIRFLOW")
    }


# ------------------------------------------------------------------------------ the emulator


@contextmanager
def emulator_process(stage_seconds: float, env: Mapping[str, str]) -> Iterator[str]:
    """Run the emulator CLI; yield its URL; always stop it (SIGTERM, then SIGKILL)."""
    command = [
        sys.executable,
        "-m",
        "airflow_provider_dataworks.testing.emulator",
        "--port",
        "0",
        "--stage-seconds",
        str(stage_seconds),
    ]
    process = subprocess.Popen(
        command, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    try:
        yield _read_banner(process, timeout=30.0)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _read_banner(process: subprocess.Popen[str], timeout: float) -> str:
    """Return the URL from the emulator's first line; keep draining its output afterwards."""
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump(stream: IO[str]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, args=(process.stdout,), daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        if line.startswith(EMULATOR_BANNER):
            return line[len(EMULATOR_BANNER) :].split()[0]
        seen.append(line)
    raise RuntimeError("the DataWorks emulator did not start:\n" + "".join(seen[-20:]))


# ------------------------------------------------------------------------------ Airflow


def run_airflow(args: list[str], env: Mapping[str, str], log: IO[str], *, watch: Any = None) -> int:
    """Run ``airflow ARGS`` with its output appended to ``log``; call ``watch()`` while it runs."""
    log.write(f"\n$ airflow {' '.join(args)}\n")
    log.flush()
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", *args], env=dict(env), stdout=log, stderr=subprocess.STDOUT, cwd=REPO
    )
    try:
        while process.poll() is None:
            if watch is not None:
                watch()
            time.sleep(0.25)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if watch is not None:
        watch()
    return process.returncode


def read_airflow_result(database: Path) -> dict[str, Any]:
    """The DAG run's state, the task's state and its ``pipeline_run_id`` XCom, from the metadata DB."""
    result: dict[str, Any] = {"dag_run": None, "task": None, "xcom_run_id": None, "xcom_run_url": None}
    with suppress(sqlite3.Error), sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)
        ).fetchone()
        if row is None:
            return result
        run_id, result["dag_run"] = row
        row = db.execute(
            "SELECT state FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?",
            (DAG_ID, run_id, TASK_ID),
        ).fetchone()
        result["task"] = row[0] if row else None
        for key, field in (("pipeline_run_id", "xcom_run_id"), ("pipeline_run_url", "xcom_run_url")):
            row = db.execute(
                "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
                (DAG_ID, run_id, TASK_ID, key),
            ).fetchone()
            if row is not None:
                value = json.loads(row[0]) if isinstance(row[0], str) else row[0]
                result[field] = value if isinstance(value, str) else json.dumps(value)
    return result


# ------------------------------------------------------------------------------ output


class StageWatcher:
    """Print each stage transition of the demo object's pipeline run as the emulator reports it."""

    def __init__(self, emulator: Any, started: float) -> None:
        self.emulator = emulator
        self.started = started
        self.seen: dict[tuple[str, str], str] = {}
        self.run_announced = False

    def __call__(self) -> None:
        try:
            runs = self.emulator.runs(object_id=OBJECT_ID)
        except Exception:  # the emulator is shutting down or busy; the final report has the truth
            return
        for run in runs:
            if not self.run_announced:
                say(f"  {self._clock()}  pipeline run {run['id']} created ({run['type']})")
                self.run_announced = True
            for stage in sorted(run["stages"], key=lambda s: s["step"]):
                key = (run["id"], stage["code"])
                if stage["status"] != "Init" and self.seen.get(key) != stage["status"]:
                    self.seen[key] = stage["status"]
                    say(f"  {self._clock()}  step {stage['step']} {stage['code']:<13} {stage['status']}")

    def _clock(self) -> str:
        return f"+{time.monotonic() - self.started:5.1f}s"


def _time(ms: Any) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S.%f")[:-3]


def print_report(run: Mapping[str, Any] | None, airflow: Mapping[str, Any], deferred: bool) -> None:
    say()
    say("Pipeline run")
    if run is None:
        say("  (none created)")
    else:
        say(f"  id          {run['id']}")
        say(f"  object      {run['object_id']} ({run['object']['name']}, {run['object']['type']})")
        say(f"  workspace   {run['project_id']}    type {run['type']}    status {run['status']}")
        say()
        say("Stage timeline")
        header = f"  {'step':<5}{'code':<15}{'type':<8}{'status':<9}{'started':<14}{'finished':<14}{'took':>6}"
        say(header)
        for stage in sorted(run["stages"], key=lambda s: s["step"]):
            start, finish = stage.get("start_time"), stage.get("finish_time")
            took = f"{(finish - start) / 1000:.1f}s" if start and finish else "-"
            say(
                f"  {stage['step']:<5}{stage['code']:<15}{stage['type']:<8}{stage['status']:<9}"
                f"{_time(start):<14}{_time(finish):<14}{took:>6}"
            )
    say()
    say("Airflow")
    say(f"  DAG run {DAG_ID}: {airflow['dag_run']}")
    say(f"  task {TASK_ID}: {airflow['task']}" + (" (deferred; its trigger ran inline)" if deferred else ""))
    say(f"  XCom pipeline_run_id: {airflow['xcom_run_id']}")
    if airflow["xcom_run_url"]:
        say(f"  XCom pipeline_run_url (the task's console link on real DataWorks): {airflow['xcom_run_url']}")


def tail(path: Path, lines: int = 40) -> str:
    with suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


# ------------------------------------------------------------------------------ main


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stage-seconds", type=float, default=1.0, help="duration of each stage (default 1)")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between status reads")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM both end up in the clean-up below (a shell may start us with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)

    from airflow_provider_dataworks.testing import DataWorksEmulator

    started = time.monotonic()
    LOG_DIR.mkdir(exist_ok=True)
    log_path = LOG_DIR / "airflow.log"
    workdir = Path(tempfile.mkdtemp(prefix="dataworks-demo-"))
    env = child_environment()
    for name in PROXY_ENV_VARS:
        os.environ.pop(name, None)  # this process talks to the emulator's control API too
    outcome = "The demo failed."
    try:
        with emulator_process(args.stage_seconds, env) as url, log_path.open("w") as log:
            emulator = DataWorksEmulator.attach(url)
            say(f"[1/3] DataWorks emulator at {url} (each stage takes {args.stage_seconds:g} s)")

            airflow_env = {
                **env,
                "AIRFLOW_HOME": str(workdir / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW_CONN_DATAWORKS_DEFAULT": emulator.connection_uri(project_id=WORKSPACE_ID),
                "DATAWORKS_EXAMPLE_POLL_INTERVAL": str(args.poll_interval),
            }
            say(f"[2/3] airflow db migrate (AIRFLOW_HOME={airflow_env['AIRFLOW_HOME']}, temporary)")
            if run_airflow(["db", "migrate"], airflow_env, log) != 0:
                say(f"airflow db migrate failed; last lines of {log_path}:\n{tail(log_path)}")
                return 1

            say(f"[3/3] airflow dags test {DAG_ID}   (Airflow's output: {log_path})")
            watcher = StageWatcher(emulator, time.monotonic())
            returncode = run_airflow(["dags", "test", DAG_ID], airflow_env, log, watch=watcher)

            runs = emulator.runs(object_id=OBJECT_ID)
            airflow = read_airflow_result(workdir / "airflow" / "airflow.db")
            # `airflow dags test` runs a deferred task's trigger in-process and says so in its log
            deferred = "running trigger in line" in log_path.read_text(errors="replace")
            print_report(runs[-1] if runs else None, airflow, deferred)

            problems = []
            if returncode != 0:
                problems.append(f"airflow dags test exited with {returncode}")
            if airflow["dag_run"] != "success" or airflow["task"] != "success":
                problems.append("the DAG run or the task did not succeed")
            if len(runs) != 1 or runs[0]["status"] != "Success":
                problems.append(f"expected one successful pipeline run, found {[r['status'] for r in runs]}")
            elif airflow["xcom_run_id"] != runs[0]["id"]:
                problems.append("the task's pipeline_run_id XCom is not the emulator's run")
            if problems:
                say(f"\nFAILED: {'; '.join(problems)}. Last lines of {log_path}:\n{tail(log_path)}")
                return 1
            outcome = "SUCCESS: the workflow is deployed."
            return 0
    except KeyboardInterrupt:
        outcome = "Interrupted."
        return 130
    except Exception as err:
        say(f"\nFAILED: {err}")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        say(f"\n{outcome} ({time.monotonic() - started:.0f} s; emulator stopped, temporary files removed)")


if __name__ == "__main__":
    sys.exit(main())
