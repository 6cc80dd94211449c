"""Helpers for the operator, sensor and trigger tests: task contexts, running deferred tasks.

Everything talks to the DataWorks emulator through the real SDK over HTTP. The only stand-ins
are the parts of a running Airflow task that do not exist outside a worker — the task
instance (for ``xcom_push``/``try_number``) and the task state store — and those are
``create_autospec`` mocks of the real classes, backed by dicts, so a typo fails the test.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from airflow.sdk.exceptions import AirflowRescheduleException, TaskDeferred
from airflow.sdk.execution_time.context import TaskStateStoreAccessor
from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
from airflow.sdk.types import DagRunProtocol
from airflow.triggers.base import BaseTrigger, TriggerEvent

BASIC = 10000
STANDARD = 20000
WORKFLOW = "8600000000000000001"
NODE = "8600000000000000002"
NODE_3 = "8600000000000000003"
DEPLOYED_NODE = "8600000000000000004"
APPROVAL_NODE = "8600000000000000005"
NODE_6 = "8600000000000000006"
NODE_7 = "8600000000000000007"
NODE_8 = "8600000000000000008"
FAILING_NODE = "8600000000000000009"
STD_WORKFLOW = "8600000000000000021"
STD_NODE = "8600000000000000023"

#: fast, still exponential with jitter; the error budget is 4 attempts per call
FAST_RETRIES = {"max_attempts": 4, "base_delay": 0.01, "max_delay": 0.05}
POLL = 0.05

_run_ids = itertools.count(1)


@dataclass
class TaskInstanceState:
    """What a fake task instance remembers: its XComs and its task state store."""

    xcom: dict[str, Any] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    store_calls: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class TaskInstance:
    """One task instance (dag_id, task_id, run_id, map_index) across its tries."""

    dag_id: str = "deploy_dag"
    task_id: str = "deploy"
    run_id: str = field(default_factory=lambda: f"manual__test_{next(_run_ids)}")
    map_index: int = -1
    with_store: bool = True
    state: TaskInstanceState = field(default_factory=TaskInstanceState)
    first_start: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: the task's ``retries``; ``max_tries`` follows Airflow's rule (a clear sets try_number + retries)
    retries: int = 0
    #: ``dag_run.clear_number``, grown by :meth:`clear`
    clear_number: int = 0
    #: the DAG run's start (a clear of a finished DAG run, or a re-created DAG run, moves it)
    dag_run_start: datetime = field(default_factory=lambda: datetime.now(UTC))
    max_tries: int | None = None

    def clear(self, try_number: int, *, dag_run_finished: bool = True) -> None:
        """Clear the task instance after try ``try_number``, as Airflow's ``clear_task_instances`` does.

        ``clear_number`` grows and ``max_tries`` becomes ``try_number + retries``; a finished DAG run
        also restarts (a new ``start_date``), a running one keeps its start.
        """
        self.clear_number += 1
        self.max_tries = try_number + self.retries
        if dag_run_finished:
            self.dag_run_start = datetime.now(UTC)

    def recreate(self) -> TaskInstance:
        """Return the task instance of a DAG run deleted and triggered again with the same run_id."""
        return TaskInstance(
            dag_id=self.dag_id,
            task_id=self.task_id,
            run_id=self.run_id,
            map_index=self.map_index,
            with_store=self.with_store,
            retries=self.retries,
        )

    def context(self, try_number: int = 1) -> dict[str, Any]:
        """Return the context of try ``try_number``; XComs are cleared as Airflow 3 does on every try."""
        self.state.xcom.clear()
        ti = mock.create_autospec(RuntimeTaskInstance, instance=True)
        ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number = (
            self.dag_id,
            self.task_id,
            self.run_id,
            self.map_index,
            try_number,
        )
        ti.xcom_push.side_effect = lambda key, value: self.state.xcom.__setitem__(key, value)
        ti.max_tries = self.retries if self.max_tries is None else self.max_tries
        ti.start_date = datetime.now(UTC)
        dag_run = mock.create_autospec(DagRunProtocol, instance=True)
        dag_run.dag_id, dag_run.run_id, dag_run.clear_number, dag_run.start_date = (
            self.dag_id,
            self.run_id,
            self.clear_number,
            self.dag_run_start,
        )
        ti.get_first_reschedule_date.side_effect = lambda context: self.first_start
        context: dict[str, Any] = {"ti": ti, "task_instance": ti, "run_id": self.run_id, "dag_run": dag_run}
        if self.with_store:
            store = mock.create_autospec(TaskStateStoreAccessor, instance=True)

            def store_get(key: str, default: Any = None) -> Any:
                self.state.store_calls.append(("get", key))
                return self.state.store.get(key, default)

            def store_set(key: str, value: Any, *, retention: Any = None) -> None:
                self.state.store_calls.append(("set", key))
                self.state.store[key] = value

            store.get.side_effect = store_get
            store.set.side_effect = store_set
            context["task_state_store"] = store
        return context


async def collect_events(trigger: BaseTrigger, timeout: float = 30.0) -> list[TriggerEvent]:
    """Run a trigger as the triggerer does (rebuilt from ``serialize()``) and return every event."""
    rebuilt = rebuild(trigger)
    events: list[TriggerEvent] = []

    async def consume() -> None:
        async for event in rebuilt.run():
            events.append(event)

    await asyncio.wait_for(consume(), timeout)
    return events


def rebuild(trigger: BaseTrigger) -> BaseTrigger:
    from airflow.sdk import serde
    from airflow.sdk._shared.module_loading import import_string

    classpath, kwargs = trigger.serialize()
    kwargs = serde.deserialize(serde.serialize(kwargs))  # what crosses the database
    return import_string(classpath)(**kwargs)


def only_event(trigger: BaseTrigger, timeout: float = 30.0) -> dict[str, Any]:
    events = asyncio.run(collect_events(trigger, timeout))
    assert len(events) == 1, f"a trigger must yield exactly one event, got {events}"
    return events[0].payload


def run_task(
    make_task: Callable[[], Any],
    context: dict[str, Any],
    *,
    events: list[dict[str, Any]] | None = None,
    max_slices: int = 100,
) -> Any:
    """Run a task like a worker + triggerer would, in process.

    ``execute()``; on ``TaskDeferred`` run the trigger (rebuilt from ``serialize()``) and resume a
    FRESH task object (a new worker) through ``resume_execution``, looping over re-deferrals;
    on ``AirflowRescheduleException`` (reschedule sensors) poke again with a fresh task object.
    Trigger payloads are appended to ``events`` when given.
    """
    task = make_task()
    call: Callable[[], Any] = lambda: task.execute(context)  # noqa: E731
    for _ in range(max_slices):
        try:
            return call()
        except TaskDeferred as deferred:
            payload = only_event(deferred.trigger)
            if events is not None:
                events.append(payload)
            task = make_task()
            next_kwargs = {"event": payload, **(deferred.kwargs or {})}
            method = deferred.method_name
            call = lambda task=task, method=method, kw=next_kwargs: task.resume_execution(method, kw, context)  # noqa: E731
        except AirflowRescheduleException as reschedule:
            delay = (reschedule.reschedule_date - datetime.now(UTC)).total_seconds()
            if delay > 0:
                time.sleep(min(delay, 1.0))
            task = make_task()
            call = lambda task=task: task.execute(context)  # noqa: E731
    raise AssertionError("the task never finished")


def runs_of(emu, object_id: str, project_id: int = BASIC) -> list[dict[str, Any]]:
    return emu.runs(object_id=object_id, project_id=project_id)


def only_run(emu, object_id: str, project_id: int = BASIC) -> dict[str, Any]:
    runs = runs_of(emu, object_id, project_id)
    assert len(runs) == 1, f"expected exactly one pipeline run of {object_id}, got {[r['status'] for r in runs]}"
    return runs[0]


def count_calls(emu, action: str) -> int:
    return len(emu.calls(action))
