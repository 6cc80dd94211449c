"""The e2e tests find the triggerer's lines in the task log, or in the triggerer's own log (no Airflow stack needed).

The triggerer's own lines are rendered here by Airflow's logging, configured as the triggerer configures
it, in a child process (so this process's logging stays as it is).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from unittest.mock import create_autospec

from .airflow_stack import AirflowClient, in_triggerer_logs, wait_for_triggerer_line

RENDER = textwrap.dedent(
    """
    import structlog
    from airflow.sdk.log import configure_logging

    configure_logging(json_output=False)
    log = structlog.get_logger(logger_name="airflow.jobs.triggerer_job_runner")
    log.info("Trigger fired event", name="release/manual__1/deploy/3/2 (ID 7)", result="{'run_id': 'run-a'}",
             dag_id="release", task_id="deploy")
    log.info("Trigger fired event", name="release/manual__1/deploy/13/2 (ID 8)", result="{'run_id': 'run-b'}")
    log.info("trigger completed", name="release/manual__1/deploy/4/2 (ID 9)")
    log.info("Trigger cancelled by user action, invoking on_kill", name="release/manual__1/deploy/5/1 (ID 10)")
    """
)


def _triggerer_log(folder: Path) -> Path:
    out = subprocess.run([sys.executable, "-c", RENDER], capture_output=True, text=True, check=True, timeout=120)
    path = folder / "triggerer-b.log"
    path.write_text(out.stdout + out.stderr)
    return path


def test_a_triggerers_own_line_is_found_by_its_task_instance_and_event(tmp_path: Path) -> None:
    _triggerer_log(tmp_path)
    (tmp_path / "scheduler.log").write_text("Trigger fired event name='release/manual__1/deploy/4/2 (ID 9)'\n")

    found = in_triggerer_logs(tmp_path, "release", "manual__1", "deploy", try_number=2, map_index=3)
    assert [source for source, _ in found] == ["triggerer-b.log"]
    assert "run-a" in found[0][1] and "run-b" not in found[0][1]
    assert in_triggerer_logs(tmp_path, "release", "manual__1", "deploy", try_number=2, map_index=13)
    # another try, a task instance whose trigger did not fire, and a line of a process that is not a triggerer
    assert not in_triggerer_logs(tmp_path, "release", "manual__1", "deploy", try_number=1, map_index=3)
    assert not in_triggerer_logs(tmp_path, "release", "manual__1", "deploy", try_number=2, map_index=4)

    cancelled = "Trigger cancelled by user action, invoking on_kill"
    assert in_triggerer_logs(tmp_path, "release", "manual__1", "deploy", 1, 5, event=cancelled)
    assert not in_triggerer_logs(tmp_path, "release", "manual__1", "deploy", 1, 5)
    assert not in_triggerer_logs(tmp_path, "release", "manual__1", "deploy", 2, 3, event=cancelled)


def test_the_task_log_is_preferred_and_the_triggerers_log_is_the_fallback(tmp_path: Path) -> None:
    _triggerer_log(tmp_path)
    fired = {"event": "Trigger fired event", "filename": "triggerer_job_runner.py", "result": "{'run_id': 'run-a'}"}
    client = create_autospec(AirflowClient, instance=True)
    client.log_entries.return_value = [{"event": "Pausing task as DEFERRED. "}, fired]

    entries, event = wait_for_triggerer_line(client, tmp_path, "release", "manual__1", "deploy", 2, 3, timeout=0)
    assert event is not None and (event.source, event.index, event.text) == ("task log", 1, fired["result"])
    assert len(entries) == 2

    client.log_entries.return_value = [{"event": "Pausing task as DEFERRED. "}]
    entries, event = wait_for_triggerer_line(client, tmp_path, "release", "manual__1", "deploy", 2, 3, timeout=0)
    assert event is not None and (event.source, event.index) == ("triggerer-b.log", None)
    assert "run-a" in event.text
    client.log_entries.assert_called_with("release", "manual__1", "deploy", 2, 3)

    _, event = wait_for_triggerer_line(client, tmp_path, "release", "manual__1", "deploy", 2, 4, timeout=0)
    assert event is None
