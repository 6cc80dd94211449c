"""The release window approved in Airflow, on a real deployment: a person answers through the REST API.

The scheduler runs ``dataworks_release_window_approval``; the triggerer waits for the preparation and
the deployment; the approval waits for a person (``awaiting_input`` on Airflow 3.3), who answers with
``PATCH …/hitlDetails`` as the Required Actions page does. Afterwards the test reads what Airflow
recorded through the REST API (task states, XComs, the asset event) and what the emulator recorded.

Three releases' worth of checks on the one Airflow stack of the step, in file order:

1. a release approved: deployed, its asset event names the run, and ``dataworks_release_consumer``
   (scheduled on the asset) runs after it and reads the run back;
2. the next release's question, shown in the UI by a headless Chromium (a screenshot of it);
3. that release rejected: its run abolished, no stage after ``PROD_CHECK`` started, no asset event.

It runs after ``test_e2e_dags.py`` (file order), whose count of one run per example object it would
otherwise change: its own runs are told apart by the DAG run ID in the run's description.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .airflow_stack import ADMIN_USER, TERMINAL_RUN_STATES, AirflowStack
from .browser import ensure_chromium, launch, login
from .processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300, method="signal")]

DAG_ID = "dataworks_release_window_approval"
CONSUMER_DAG_ID = "dataworks_release_consumer"
OBJECT_ID = "8600000000000000013"
ASSET_URI = "dataworks://cn-hangzhou/10000/8600000000000000013"
#: seconds for the preparation (three polls a second apart) and for the deployment after the answer
STEP_TIMEOUT = 120.0
SUBJECT = "Deploy release_candidate_workflow to production?"
UI_TIMEOUT_MS = 30_000


def pending_question(client: Any, run_id: str) -> dict[str, Any] | None:
    """The run's unanswered question, once its task waits for a person."""
    path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/hitlDetails"
    for detail in client.get(path, response_received=False)["hitl_details"]:
        if detail["task_instance"]["state"] in ("awaiting_input", "deferred"):
            return detail
    return None


def finished_state(client: Any, run_id: str) -> str | None:
    state = client.run_states().get((DAG_ID, run_id))
    return state if state in TERMINAL_RUN_STATES else None


def stage_statuses(run: dict[str, Any]) -> list[tuple[str, str]]:
    return [(stage["code"], stage["status"]) for stage in run["stages"]]


def runs_of(emulator: Any, run_id: str) -> list[dict[str, Any]]:
    """The emulator's pipeline runs that the Airflow run ``run_id`` created (its ID is in their description)."""
    return [run for run in emulator.runs(object_id=OBJECT_ID) if run_id in run["description"]]


@dataclass(frozen=True)
class PendingRelease:
    """A release window run whose approval waits for a person."""

    run_id: str
    question: dict[str, Any]
    #: the emulator's pipeline run as it was when the question was asked
    prepared: dict[str, Any]


def start_release(airflow_stack: AirflowStack, emulator: Any) -> PendingRelease:
    """Trigger the release window and wait until its approval waits for an answer."""
    client = airflow_stack.client
    wait_until(lambda: client.parsed_dags({DAG_ID, CONSUMER_DAG_ID}), timeout=60, what=f"{DAG_ID} to be parsed")
    client.unpause(DAG_ID)
    run_id = client.trigger(DAG_ID, logical_date=datetime.now(UTC).isoformat())

    question = wait_until(
        lambda: pending_question(client, run_id),
        timeout=STEP_TIMEOUT,
        what="the approval question",
        on_tick=airflow_stack.check_alive,
    )
    # Answer only after the scheduler heard that the worker which parked the task has finished. An
    # answer that resumes the task before that event arrives lost the task once in three runs on
    # Airflow 3.3.2 (it ended failed, its resumed slice refused): an Airflow race that a person, who
    # needs more than a second to read the question, does not meet.
    parked = f"task_id='approve_release', run_id='{run_id}', try_number=1"
    wait_until(
        lambda: any(
            "Received executor event with state success" in line and parked in line
            for line in (airflow_stack.log_dir / "scheduler.log").read_text(errors="replace").splitlines()
        ),
        timeout=STEP_TIMEOUT,
        what="the scheduler to hear that the approval task is parked",
        on_tick=airflow_stack.check_alive,
    )
    (prepared,) = runs_of(emulator, run_id)
    return PendingRelease(run_id, question, prepared)


def answer(airflow_stack: AirflowStack, release: PendingRelease, option: str) -> str:
    """Answer the release's question through the REST API; return the DAG run's final state."""
    client = airflow_stack.client
    ti_path = f"/dags/{DAG_ID}/dagRuns/{quote(release.run_id, safe='')}/taskInstances/approve_release/-1/hitlDetails"
    client.request("PATCH", ti_path, json={"chosen_options": [option], "params_input": {}})
    return wait_until(
        lambda: finished_state(client, release.run_id),
        timeout=STEP_TIMEOUT,
        what=f"{DAG_ID} run {release.run_id} to finish",
        on_tick=airflow_stack.check_alive,
    )


def consumer_runs(client: Any) -> list[dict[str, Any]]:
    """The runs of the consumer DAG that asset events started."""
    runs = client.get(f"/dags/{CONSUMER_DAG_ID}/dagRuns", limit=100)["dag_runs"]
    return [run for run in runs if run["run_type"] == "asset_triggered"]


def creates_scheduled_runs(airflow_stack: AirflowStack) -> bool:
    """Whether the stack's scheduler creates runs by schedule and by asset events (``use_job_schedule``)."""
    value = airflow_stack.environment().get("AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "True")
    return value.strip().lower() in ("true", "1")


def finished_consumer_run(client: Any) -> dict[str, Any] | None:
    runs = consumer_runs(client)
    return runs[0] if runs and runs[0]["state"] in TERMINAL_RUN_STATES else None


def test_a_release_approved_through_the_rest_api_is_deployed_and_announced(airflow_stack: AirflowStack, emulator):
    client = airflow_stack.client
    wait_until(lambda: client.parsed_dags({CONSUMER_DAG_ID}), timeout=60, what=f"{CONSUMER_DAG_ID} to be parsed")
    client.unpause(CONSUMER_DAG_ID)  # a paused DAG queues no run for an asset event
    release = start_release(airflow_stack, emulator)
    assert stage_statuses(release.prepared) == [
        ("BUILD_PACKAGE", "Success"),
        ("PROD_CHECK", "Success"),
        ("PROD", "Init"),  # nothing past the checks before the answer
    ]
    assert f"pipeline run: `{release.prepared['id']}`" in release.question["body"]

    state = answer(airflow_stack, release, "Approve")

    assert state == "success"
    run_id = release.run_id
    states = {ti["task_id"]: ti["state"] for ti in client.task_instances(DAG_ID, run_id)}
    assert states == {
        "prepare_release": "success",
        "approve_release": "success",
        "deploy_release": "success",
        "abolish_release": "skipped",
    }
    (run,) = runs_of(emulator, run_id)
    assert run["id"] == release.prepared["id"]
    assert run["status"] == "Success"
    assert client.xcom(DAG_ID, run_id, "prepare_release", "return_value") == run["id"]
    assert client.xcom(DAG_ID, run_id, "deploy_release", "return_value") == run["id"]
    events = client.get("/assets/events", source_dag_id=DAG_ID, source_run_id=run_id)["asset_events"]
    assert [(e["uri"], e["source_task_id"], e["extra"]) for e in events] == [
        (ASSET_URI, "deploy_release", {"type": "Online", "pipeline_run_id": run["id"]})
    ]

    # Airflow queued the event for the DAG scheduled on the asset (the scheduler turns the queue into a run)
    queued = client.get(f"/dags/{CONSUMER_DAG_ID}/assets/queuedEvents")["queued_events"]
    assert [q["asset_id"] for q in queued] == [events[0]["asset_id"]] or consumer_runs(client)
    if not creates_scheduled_runs(airflow_stack):
        # This stack's scheduler creates no scheduled or asset-triggered runs ([scheduler] use_job_schedule
        # is off, so that unpausing the cron examples starts no extra deployments): the queued event is
        # as far as the release gets here. (With it on, unpausing this DAG can also start a scheduled run of
        # the latest window, which takes the max_active_runs=1 slot before the triggered run: seen on 3.3.2.)
        assert consumer_runs(client) == []
        return
    # the DAG scheduled on the asset runs after the release and reads the released run back
    consumer = wait_until(
        lambda: finished_consumer_run(client),
        timeout=STEP_TIMEOUT,
        what=f"{CONSUMER_DAG_ID} to run after the asset event",
        on_tick=airflow_stack.check_alive,
    )
    assert consumer["state"] == "success"
    assert client.xcom(CONSUMER_DAG_ID, consumer["dag_run_id"], "follow_release", "return_value") == [
        {"pipeline_run_id": run["id"], "type": "Online", "status": "Success"}
    ]


@pytest.fixture(scope="module")
def pending_release(airflow_stack: AirflowStack, emulator) -> PendingRelease:
    """The next release, its question unanswered: shown in the UI first, then rejected."""
    return start_release(airflow_stack, emulator)


@pytest.fixture(scope="module")
def page(airflow_stack: AirflowStack, e2e_tmp: Path) -> Iterator[Any]:
    """A signed-in page of a fresh headless Chromium (skips when no browser can be had)."""
    chromium, reason = ensure_chromium(e2e_tmp / "apt-chromium.log")
    if chromium is None:
        pytest.skip(f"no browser for the UI check: {reason}")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        context = launch(playwright, chromium, e2e_tmp / "chromium-profile-approval")
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page = context.new_page()
            login(page, airflow_stack.base_url, ADMIN_USER, airflow_stack.password)
            yield page
        finally:
            context.close()


def test_the_pending_approval_shows_in_the_ui(
    page: Any, airflow_stack: AirflowStack, pending_release: PendingRelease, screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{airflow_stack.base_url}/required_actions?response_received=false")
    expect(page.get_by_text(SUBJECT).first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "04-release-approval-required-actions.png"))

    run_path = f"/dags/{DAG_ID}/runs/{quote(pending_release.run_id, safe='')}/tasks/approve_release/required_actions"
    page.goto(f"{airflow_stack.base_url}{run_path}")
    expect(page.get_by_text(SUBJECT).first).to_be_visible()
    # the question shows the checked run and offers both answers
    expect(page.get_by_text(pending_release.prepared["id"]).first).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    expect(page.get_by_role("button", name="Reject")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "05-release-approval-question.png"), full_page=True)


def test_a_release_rejected_through_the_rest_api_is_abolished_before_prod(
    airflow_stack: AirflowStack, emulator, pending_release: PendingRelease
):
    client = airflow_stack.client
    consumers_before = len(consumer_runs(client))

    state = answer(airflow_stack, pending_release, "Reject")

    assert state == "success"  # a rejection is an answer, not a failure
    run_id = pending_release.run_id
    states = {ti["task_id"]: ti["state"] for ti in client.task_instances(DAG_ID, run_id)}
    assert states == {
        "prepare_release": "success",
        "approve_release": "success",
        "deploy_release": "skipped",
        "abolish_release": "success",
    }
    (run,) = runs_of(emulator, run_id)
    assert run["id"] == pending_release.prepared["id"]
    assert run["status"] in {"Termination", "Cancel"}
    # the checks ran; no stage after PROD_CHECK was started
    assert stage_statuses(run) == [("BUILD_PACKAGE", "Success"), ("PROD_CHECK", "Success"), ("PROD", "Init")]
    assert client.xcom(DAG_ID, run_id, "abolish_release", "return_value") == run["id"]
    assert client.get("/assets/events", source_dag_id=DAG_ID, source_run_id=run_id)["asset_events"] == []
    assert len(consumer_runs(client)) == consumers_before
