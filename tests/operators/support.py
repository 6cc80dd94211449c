"""Helpers for the operator, sensor and trigger tests: task contexts, running deferred tasks.

Everything talks to the DataWorks emulator through the real SDK over HTTP. The only stand-ins
are the parts of a running Airflow task that do not exist outside a worker — the task
instance (for ``xcom_push``/``try_number``), its DAG run and the task state store — and those
are ``create_autospec`` mocks of the installed Airflow's own classes, backed by dicts, so a
typo fails the test.

The helpers run on every supported Airflow (the compatibility stage runs a selection of these
tests on 2.11-3.2): the task instance is 3.x's ``RuntimeTaskInstance`` or 2.x's ORM
``TaskInstance``, and the context carries a ``task_state_store`` only where Airflow gives one
(3.3+), as a worker does.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.triggers.base import BaseTrigger, TriggerEvent
from compat.versions import AIRFLOW_V_3, AIRFLOW_V_3_3_PLUS

# The classes a worker's context holds, per version (common.compat names none of these).
if AIRFLOW_V_3:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance as AirflowTaskInstance
    from airflow.sdk.types import DagRunProtocol as AirflowDagRun
else:
    from airflow.models.dagrun import DagRun as AirflowDagRun  # type: ignore[assignment]
    from airflow.models.taskinstance import TaskInstance as AirflowTaskInstance  # type: ignore[assignment]
try:
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # Airflow < 3.2 raises it from airflow.exceptions
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[attr-defined,no-redef]
try:
    from airflow.sdk import serde
except ImportError:  # Airflow < 3.2
    from airflow.serialization import serde  # type: ignore[no-redef]

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
#: a run not abolished and not finished: a new run reports Init briefly (the API docs), then Running
ACTIVE = frozenset({"Init", "Running"})

#: ``with_store`` of a case in the version matrix: both on 3.3, the matrix runs only ``tag_only``
#: (below 3.3 no worker has a task state store, so there the two are the same test)
STORES_OF_THE_MATRIX = [
    pytest.param(True, id="task_state_store"),
    pytest.param(False, id="tag_only", marks=pytest.mark.version_matrix),
]

_run_ids = itertools.count(1)


@dataclass
class TaskInstanceState:
    """What a fake task instance remembers: its XComs and its task state store."""

    xcom: dict[str, Any] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    store_calls: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class TaskInstance:
    """One task instance (dag_id, task_id, run_id, map_index) across its tries.

    ``with_store`` is whether the worker would hand the task a ``task_state_store``; Airflow has
    one from 3.3 only, so below 3.3 no context carries one, whatever ``with_store`` says.
    """

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
        ti = mock.create_autospec(AirflowTaskInstance, instance=True)
        ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number = (
            self.dag_id,
            self.task_id,
            self.run_id,
            self.map_index,
            try_number,
        )
        ti.xcom_push.side_effect = lambda key, value: self.state.xcom.__setitem__(key, value)
        ti.max_tries = self.retries if self.max_tries is None else self.max_tries
        ti.stats_tags = {"dag_id": self.dag_id, "task_id": self.task_id}
        ti.start_date = datetime.now(UTC)
        dag_run = mock.create_autospec(AirflowDagRun, instance=True)
        dag_run.dag_id, dag_run.run_id, dag_run.clear_number, dag_run.start_date = (
            self.dag_id,
            self.run_id,
            self.clear_number,
            self.dag_run_start,
        )
        if AIRFLOW_V_3:  # 2.x sensors read their first reschedule from the database instead
            ti.get_first_reschedule_date.side_effect = lambda context: self.first_start
        context: dict[str, Any] = {"ti": ti, "task_instance": ti, "run_id": self.run_id, "dag_run": dag_run}
        if self.with_store and AIRFLOW_V_3_3_PLUS:
            from airflow.sdk.execution_time.context import TaskStateStoreAccessor

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
    classpath, kwargs = trigger.serialize()
    kwargs = serde.deserialize(serde.serialize(kwargs))  # what crosses the database
    module_name, class_name = classpath.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), class_name)(**kwargs)


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
    trigger_timeout: float = 30.0,
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
            payload = only_event(deferred.trigger, trigger_timeout)
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


def alongside(action: Callable[[], Any]) -> threading.Thread:
    """Start ``action`` in a thread (a person, a killer), while the test runs the task in the main thread.

    (Airflow 2.x's ``ExecutorSafeguard`` refuses an ``execute()`` called from any other thread.)
    """
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Return ``predicate()``'s first truthy value, polling every 20 ms; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("the condition was not reached")
