"""The example DAGs run on a real Airflow 3 deployment against the DataWorks emulator.

One session fixture (``example_runs``) triggers every example through the REST API and waits for
all of them; the tests below read what it collected and ask the REST API and the emulator for the
rest. All runs must end within ``E2E_RUN_TIMEOUT`` seconds of the first trigger, so a hung run fails here,
not in CI's global timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .airflow_stack import TriggererLine, format_log, wait_for_triggerer_line
from .example_runs import (
    DATA_QUALITY_DAG,
    DEPLOYED_OBJECTS,
    EXAMPLES,
    LINK_NAME,
    QUALITY_GATE_DAG,
    QUALITY_GATE_TASK,
    ExampleRuns,
    console_url,
    runs_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600, method="signal")]

DEPLOY_TASKS = [(e.dag_id, task_id) for e in EXAMPLES.values() for task_id in e.deploys]
DEFERRED_TASKS = [(e.dag_id, task_id) for e in EXAMPLES.values() for task_id in e.deferred]


def _task_key(task_id: str, map_index: int, mapped: bool) -> str:
    return f"{task_id}[{map_index}]" if mapped else task_id


def _fired_event(runs: ExampleRuns, dag_id: str, task_id: str) -> tuple[list[dict[str, Any]], TriggererLine | None]:
    return wait_for_triggerer_line(runs.client, runs.component_logs, dag_id, runs.passing[dag_id].run_id, task_id)


@pytest.mark.parametrize("dag_id", list(EXAMPLES))
def test_example_run_succeeds(example_runs: ExampleRuns, dag_id: str) -> None:
    outcome = example_runs.passing[dag_id]
    assert outcome.state == "success", outcome.describe()
    assert outcome.task_states, outcome.describe()
    assert set(outcome.task_states.values()) == {"success"}, outcome.describe()


def test_failed_quality_check_blocks_the_deployment(example_runs: ExampleRuns) -> None:
    outcome = example_runs.failing_check
    assert outcome.state == "failed", outcome.describe()
    states = outcome.task_states
    # The check failed, not something before it: only the deployment is left upstream_failed.
    assert [task for task, state in states.items() if state == "upstream_failed"] == ["deploy_node"], outcome.describe()
    assert "failed" in states.values(), outcome.describe()
    assert example_runs.blocked_object_runs == [], (
        f"the failed check of {DATA_QUALITY_DAG} still created pipeline runs: "
        f"{[r.raw for r in example_runs.blocked_object_runs]}"
    )


def test_one_pipeline_run_per_deployed_object(example_runs: ExampleRuns) -> None:
    runs = example_runs.emulator_runs
    counts = {obj: len(runs_for(runs, obj)) for obj in sorted(DEPLOYED_OBJECTS)}
    assert counts == dict.fromkeys(sorted(DEPLOYED_OBJECTS), 1), [r.raw for r in runs]
    touched = {obj for r in runs for obj in r.object_ids}
    assert touched == DEPLOYED_OBJECTS, f"runs for unexpected objects: {touched - DEPLOYED_OBJECTS}"


def _deployments(example_runs: ExampleRuns, dag_id: str, task_id: str) -> Iterator[tuple[int, str, Any]]:
    """Yield ``(map_index, label, emulator run)`` for each object a deploy task deployed (one run each)."""
    objects = EXAMPLES[dag_id].deploys[task_id]
    mapped = len(objects) > 1
    for map_index, object_id in enumerate(objects):
        (run,) = runs_for(example_runs.emulator_runs, object_id)
        yield (map_index if mapped else -1), _task_key(task_id, map_index, mapped), run


@pytest.mark.parametrize(("dag_id", "task_id"), DEPLOY_TASKS)
def test_pipeline_run_id_xcom_is_the_emulator_run(example_runs: ExampleRuns, dag_id: str, task_id: str) -> None:
    example = EXAMPLES[dag_id]
    outcome = example_runs.passing[dag_id]
    for index, label, run in _deployments(example_runs, dag_id, task_id):
        xcom = example_runs.client.xcom(dag_id, outcome.run_id, task_id, "pipeline_run_id", map_index=index)
        assert str(xcom) == run.id, f"{dag_id}.{label}: XCom pipeline_run_id {xcom!r}, emulator run {run.raw}"
        assert run.project_id == str(example.project_id), run.raw
        assert run.type == example.run_type, run.raw
        assert run.status in example.final_statuses, run.raw


@pytest.mark.parametrize(("dag_id", "task_id"), DEPLOY_TASKS)
def test_extra_link_points_at_the_workspace_console(example_runs: ExampleRuns, dag_id: str, task_id: str) -> None:
    outcome = example_runs.passing[dag_id]
    for index, label, run in _deployments(example_runs, dag_id, task_id):
        links = example_runs.client.links(dag_id, outcome.run_id, task_id, map_index=index)
        assert links.get(LINK_NAME) == console_url(run.project_id), f"{dag_id}.{label}: links {links}"
        run_url = example_runs.client.xcom(dag_id, outcome.run_id, task_id, "pipeline_run_url", map_index=index)
        assert isinstance(run_url, str), f"{dag_id}.{label}: XCom pipeline_run_url {run_url!r}"
        assert run_url.startswith(console_url(run.project_id).split("/ide")[0]), run_url


@pytest.mark.parametrize(("dag_id", "task_id"), DEFERRED_TASKS)
def test_task_was_deferred_and_resumed_by_the_triggerer(example_runs: ExampleRuns, dag_id: str, task_id: str) -> None:
    outcome = example_runs.passing[dag_id]
    assert outcome.task_states.get(task_id) == "success", outcome.describe()
    entries, fired = _fired_event(example_runs, dag_id, task_id)
    log = format_log(entries)

    def first(predicate, after: int = -1) -> int | None:
        return next((i for i, e in enumerate(entries) if i > after and predicate(e)), None)

    deferred = first(lambda e: str(e.get("event", "")).startswith("Pausing task as DEFERRED"))
    assert deferred is not None, f"{dag_id}.{task_id} never deferred; its log:\n{log}"
    assert fired is not None, f"no trigger event from the triggerer, in the task log nor its own; log:\n{log}"
    polled = [i for i, e in enumerate(entries) if i > deferred and _from_pipeline_run_trigger(e)]
    assert polled, f"the PipelineRunTrigger did not run in the triggerer; log:\n{log}"
    if fired.index is not None:
        assert deferred < polled[0] < fired.index, f"deferred, polled, fired out of order; log:\n{log}"
    run_id_task = next(t for t in EXAMPLES[dag_id].deploys)
    pipeline_run_id = str(example_runs.client.xcom(dag_id, outcome.run_id, run_id_task, "pipeline_run_id"))
    assert pipeline_run_id in fired.text, f"the trigger event does not name pipeline run {pipeline_run_id}: {fired}"
    # The worker's part that resumes the task comes after the trigger's last line.
    resumed = first(lambda e: e.get("filename") == "task_runner.py", after=max(polled[-1], fired.index or -1))
    assert resumed is not None, f"no worker resumed the task after the trigger fired; log:\n{log}"


def _from_pipeline_run_trigger(entry: dict[str, Any]) -> bool:
    return str(entry.get("logger", "")).endswith(".PipelineRunTrigger")


def test_quality_gate_was_deferred_to_the_data_quality_trigger(example_runs: ExampleRuns) -> None:
    outcome = example_runs.passing[QUALITY_GATE_DAG]
    assert outcome.task_states.get(QUALITY_GATE_TASK) == "success", outcome.describe()
    entries, fired = _fired_event(example_runs, QUALITY_GATE_DAG, QUALITY_GATE_TASK)
    log = format_log(entries)
    deferred = next(
        (i for i, e in enumerate(entries) if str(e.get("event", "")).startswith("Pausing task as DEFERRED")), None
    )
    assert deferred is not None, f"the quality gate never deferred; its log:\n{log}"
    assert fired is not None, f"no trigger event from the triggerer, in the task log nor its own; log:\n{log}"
    assert fired.index is None or fired.index > deferred, f"the trigger fired before the deferral; log:\n{log}"
    instance_id = example_runs.client.xcom(
        QUALITY_GATE_DAG, outcome.run_id, QUALITY_GATE_TASK, "data_quality_instance_id"
    )
    assert f"'instance_id': {instance_id}" in fired.text, fired
    assert example_runs.api_calls.get("CreateDataQualityEvaluationTaskInstance") == 1, example_runs.api_calls
