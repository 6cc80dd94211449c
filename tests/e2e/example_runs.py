"""What the example DAGs are expected to do, and one bounded pass that triggers and watches them all.

All runs are triggered at once through the REST API and watched with two requests a second (run
states, and task instances currently deferred). The data-quality DAG is special: its failing run
(``min_rows`` too high) is triggered first, the emulator is asked for runs of its object as soon as
that run ends, and only then is its passing run triggered, so "the failed check created no pipeline
run" is checked against a clean slate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .airflow_stack import TERMINAL_RUN_STATES, AirflowClient, AirflowStack, format_log

CONSOLE_URL = "https://dataworks.data.aliyun.com"
REGION = "cn-hangzhou"  # what the emulator's connection URI sets
LINK_NAME = "DataWorks Pipeline Run"
DATA_QUALITY_DAG = "dataworks_deploy_after_quality_check"
FAILING_CHECK_CONF = {"min_rows": 1_000_000}
#: the DataWorks Data Quality gate example; its gate task defers to the DataQualityEvaluationTrigger
QUALITY_GATE_DAG = "dataworks_quality_gate"
QUALITY_GATE_TASK = "quality_gate"


@dataclass(frozen=True)
class Example:
    """One example DAG and the pipeline runs it must create.

    :param deploys: task id -> object ids it deploys (a mapped task lists them in map-index order).
    :param deferred: tasks that must be deferred to the triggerer and resumed from its event.
    :param final_statuses: the statuses its runs may end with (a check-only run ends abolished).
    """

    dag_id: str
    deploys: dict[str, tuple[str, ...]]
    project_id: int = 10000
    run_type: str = "Online"
    deferred: tuple[str, ...] = ()
    final_statuses: tuple[str, ...] = ("Success",)


EXAMPLES: dict[str, Example] = {
    e.dag_id: e
    for e in (
        Example(
            "dataworks_release_window",
            {"deploy_workflow": ("8600000000000000001",)},
            deferred=("deploy_workflow",),
        ),
        Example(DATA_QUALITY_DAG, {"deploy_node": ("8600000000000000002",)}),
        Example(
            "dataworks_create_then_sensor",
            {"create_run": ("8600000000000000003",)},
            deferred=("wait_for_run",),
        ),
        Example("dataworks_undeploy", {"undeploy_node": ("8600000000000000004",)}, run_type="Offline"),
        Example(
            "dataworks_deploy_mapped",
            {"deploy": ("8600000000000000006", "8600000000000000007", "8600000000000000008")},
        ),
        Example(
            "dataworks_standard_dev_then_prod",
            {"deploy_to_dev": ("8600000000000000021",)},
            project_id=20000,
        ),
        Example(
            "dataworks_check_release_candidate",
            {"check_release_candidate": ("8600000000000000013",)},
            deferred=("check_release_candidate",),
            final_statuses=("Termination", "Cancel"),
        ),
        Example(QUALITY_GATE_DAG, {"deploy_node": ("8600000000000000014",)}, deferred=("deploy_node",)),
    )
}

DEPLOYED_OBJECTS = {obj for e in EXAMPLES.values() for objs in e.deploys.values() for obj in objs}


def console_url(project_id: int | str) -> str:
    """The URL the "DataWorks Pipeline Run" link must point at for a run in ``project_id``."""
    return f"{CONSOLE_URL}/{REGION}/ide?defaultProjectId={project_id}"


@dataclass(frozen=True)
class EmulatorRun:
    """The fields of an emulator run record the checks use (the record's key style normalised)."""

    id: str
    project_id: str
    object_ids: tuple[str, ...]
    type: str
    status: str
    raw: dict[str, Any]

    @classmethod
    def parse(cls, record: dict[str, Any]) -> EmulatorRun:
        def get(pascal: str, snake: str) -> Any:
            return record[pascal] if pascal in record else record[snake]

        return cls(
            id=str(get("Id", "id")),
            project_id=str(get("ProjectId", "project_id")),
            object_ids=tuple(str(o) for o in get("ObjectIds", "object_ids")),
            type=str(get("Type", "type")),
            status=str(get("Status", "status")),
            raw=record,
        )


def runs_for(runs: list[EmulatorRun], object_id: str) -> list[EmulatorRun]:
    return [r for r in runs if object_id in r.object_ids]


@dataclass
class RunOutcome:
    """How one triggered DAG run ended (``state`` is ``timeout`` when it missed its deadline)."""

    dag_id: str
    run_id: str
    triggered_at: float
    state: str | None = None
    seconds: float | None = None
    task_states: dict[str, str | None] = field(default_factory=dict)
    # Task key -> the end of its log, for the task instances that failed.
    failure_logs: dict[str, str] = field(default_factory=dict)

    def describe(self, *, with_logs: bool = True) -> str:
        text = f"{self.dag_id} run {self.run_id}: {self.state} after {self.seconds}s, tasks {self.task_states}"
        for key, log in self.failure_logs.items() if with_logs else ():
            text += f"\n--- log of failed task {key} (end) ---\n{log}"
        return text


@dataclass
class ExampleRuns:
    """Everything the tests assert on, collected in one pass."""

    client: AirflowClient
    passing: dict[str, RunOutcome]
    failing_check: RunOutcome
    # Emulator runs of the data-quality DAG's object right after its failing run ended.
    blocked_object_runs: list[EmulatorRun]
    emulator_runs: list[EmulatorRun]
    # (dag_id, task key) -> trigger classpath, for task instances seen in state "deferred".
    seen_deferred: dict[tuple[str, str], str | None]
    # DataWorks API calls the emulator received, by action.
    api_calls: dict[str, int]
    seconds: float
    # the Airflow processes' own logs (AirflowStack.log_dir)
    component_logs: Path


def _record_task_states(client: AirflowClient, outcome: RunOutcome) -> None:
    for ti in client.task_instances(outcome.dag_id, outcome.run_id):
        key = ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"
        outcome.task_states[key] = ti["state"]
        if ti["state"] in ("failed", "up_for_retry") and ti["try_number"]:
            try:
                entries = client.log_entries(
                    outcome.dag_id, outcome.run_id, ti["task_id"], ti["try_number"], ti["map_index"]
                )
            except Exception as err:  # the diagnosis must not hide the failure it explains
                outcome.failure_logs[key] = f"<could not fetch the log: {err!r}>"
            else:
                outcome.failure_logs[key] = format_log(entries, limit=25)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def run_examples(stack: AirflowStack, emulator: Any, *, run_timeout: float) -> ExampleRuns:
    """Trigger every example, wait for all runs and collect the results.

    :param run_timeout: seconds from the first trigger until every run must have finished; a run still
        going then is recorded as ``timeout (still <state>)``.
    """
    client = stack.client
    assert client is not None, "the Airflow stack is not started"
    started = time.monotonic()
    for dag_id in EXAMPLES:
        client.unpause(dag_id)

    def trigger(dag_id: str, conf: dict[str, Any] | None = None) -> RunOutcome:
        # An explicit logical date, as a scheduled run has: the examples template {{ ds }}.
        run_id = client.trigger(dag_id, conf=conf, logical_date=_now_iso())
        return RunOutcome(dag_id=dag_id, run_id=run_id, triggered_at=time.monotonic())

    failing = trigger(DATA_QUALITY_DAG, FAILING_CHECK_CONF)
    passing = {dag_id: trigger(dag_id) for dag_id in EXAMPLES if dag_id != DATA_QUALITY_DAG}
    pending = [failing, *passing.values()]
    blocked_object_runs: list[EmulatorRun] | None = None
    seen_deferred: dict[tuple[str, str], str | None] = {}

    while pending:
        stack.check_alive()
        states = client.run_states()
        for ti in client.deferred_task_instances():
            key = ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"
            trigger_info = ti.get("trigger") or {}
            seen_deferred[(ti["dag_id"], key)] = trigger_info.get("classpath")
        now = time.monotonic()
        for outcome in list(pending):
            state = states.get((outcome.dag_id, outcome.run_id))
            timed_out = now - started > run_timeout
            if state in TERMINAL_RUN_STATES or timed_out:
                outcome.state = state if state in TERMINAL_RUN_STATES else f"timeout (still {state})"
                outcome.seconds = round(now - outcome.triggered_at, 1)
                _record_task_states(client, outcome)
                pending.remove(outcome)
                if outcome is failing:
                    blocked_object_runs = runs_for(
                        [EmulatorRun.parse(r) for r in emulator.runs()],
                        EXAMPLES[DATA_QUALITY_DAG].deploys["deploy_node"][0],
                    )
                    passing[DATA_QUALITY_DAG] = trigger(DATA_QUALITY_DAG)
                    pending.append(passing[DATA_QUALITY_DAG])
        if pending:
            time.sleep(1.0)

    assert blocked_object_runs is not None
    return ExampleRuns(
        client=client,
        passing=passing,
        failing_check=failing,
        blocked_object_runs=blocked_object_runs,
        emulator_runs=[EmulatorRun.parse(r) for r in emulator.runs()],
        seen_deferred=seen_deferred,
        api_calls=dict(emulator.call_counts()),
        seconds=round(time.monotonic() - started, 1),
        component_logs=stack.log_dir,
    )
