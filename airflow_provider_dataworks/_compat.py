"""Where this provider meets Airflow APIs that differ by version: one place to read what differs.

* **Run memory** (:func:`task_state_store`): Airflow 3.3's ``task_state_store`` plus the Description
  tag; below 3.3 the tag alone.
* **Kill of a deferred task** (:data:`TRIGGER_ON_KILL`, :func:`deferral_end`): on 3.3+ the triggerer
  calls ``BaseTrigger.on_kill``; below, the trigger sees only a ``CancelledError`` and reads its task
  instance's state to tell a user's kill from a triggerer stopping or handing it over.
* **execution_timeout** (:func:`execution_deadline`, :func:`is_framework_timeout`): part of the wait's
  deadline on every version. Airflow 2.x also turns it into a trigger timeout of its own and resumes
  the task with ``__fail__``; the operator treats that as its own timeout.
* **First try of a DAG-run attempt** (:func:`attempt_try`): Airflow's own rule,
  ``try_number <= max_tries - retries + 1``.

Airflow names come from ``airflow.providers.common.compat`` wherever it has them; the few it has no
name for (``TaskDeferralTimeout`` on 3.0/3.1, none at all on 2.x; a trigger's task-state read) are
imported where used, with the reason.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any

from airflow import __version__ as _airflow_version
from packaging.version import Version

_BASE = Version(Version(_airflow_version).base_version)

AIRFLOW_V_3_0_PLUS: bool = Version("3.0.0") <= _BASE
#: ``task_state_store`` and ``BaseTrigger.on_kill`` exist from Airflow 3.3
AIRFLOW_V_3_3_PLUS: bool = Version("3.3.0") <= _BASE

#: the triggerer calls ``BaseTrigger.on_kill`` when a user kills a deferred task (3.3+); below, the
#: trigger sees only a ``CancelledError`` and must find out itself why (:func:`deferral_end`)
TRIGGER_ON_KILL: bool = AIRFLOW_V_3_3_PLUS

#: the error Airflow puts in ``next_kwargs`` when it times a deferred task out itself (2.x wording, 3.x wording)
_FRAMEWORK_TIMEOUT_ERRORS = frozenset({"Trigger/execution timeout", "Trigger timeout"})
#: seconds the task-state read of a cancelled trigger may take (it runs inside the triggerer's cancel)
STATE_READ_TIMEOUT = 10.0


# ---------------------------------------------------------------------------- run memory


def task_state_store(context: Mapping[str, Any]) -> Any | None:
    """Return the task's state store (Airflow 3.3+), or ``None`` where only the Description tag remembers."""
    if not AIRFLOW_V_3_3_PLUS:
        return None
    return context.get("task_state_store")


def attempt_try(ti: Any, retries: int) -> int:
    """Return which try of the current DAG-run attempt this is (1 = the first try since the last clear).

    ``try_number`` keeps growing across clears; a clear sets ``max_tries = try_number + retries``, so the
    first try of an attempt is ``max_tries - retries + 1`` — the rule Airflow's own sensors use for
    ``get_first_reschedule_date``. Missing or inconsistent numbers count as a later try (the safe side:
    a later try looks for the runs of earlier ones).
    """
    try:
        try_number = int(ti.try_number)
    except (AttributeError, TypeError, ValueError):
        return 2
    if try_number <= 1:
        return 1
    try:
        first = int(ti.max_tries) - int(retries or 0) + 1
    except (AttributeError, TypeError, ValueError):
        return try_number
    return max(1, try_number - first + 1) if first >= 1 else try_number


# ---------------------------------------------------------------------------- timeouts


def execution_deadline(context: Mapping[str, Any], execution_timeout: timedelta | None) -> float | None:
    """Return ``time.time()`` at which ``execution_timeout`` ends this try (task start + timeout), or ``None``.

    The start is the task instance's ``start_date``, which Airflow keeps across the slices of a deferred
    try; a context without one counts from now.
    """
    if execution_timeout is None:
        return None
    start = getattr(context.get("ti"), "start_date", None)
    began = start.timestamp() if isinstance(start, datetime) else time.time()
    return began + execution_timeout.total_seconds()


def earliest(*deadlines: float | None) -> float | None:
    """Return the earliest of the given absolute deadlines (``None`` means no limit)."""
    present = [value for value in deadlines if value is not None]
    return min(present) if present else None


class DeferralTimedOut(Exception):
    """Airflow 2.x timed a deferred task out itself (:func:`is_framework_timeout`).

    2.x has no ``TaskDeferralTimeout``: it resumes such a task with ``__fail__``, and its
    ``resume_execution`` raises the ``TaskDeferralError`` it raises for every failed trigger. The
    operator and the sensor tell the timeout from those by :func:`is_framework_timeout` and raise this.
    """


def task_deferral_timeout() -> type[BaseException]:
    """Return the exception that ends a resume when Airflow timed the deferred task out itself.

    Airflow 3's ``TaskDeferralTimeout``; on 2.x, which has none, :class:`DeferralTimedOut`.
    """
    if not AIRFLOW_V_3_0_PLUS:
        return DeferralTimedOut
    try:
        from airflow.sdk.exceptions import TaskDeferralTimeout
    except ImportError:  # Airflow < 3.2; compat has no name for it
        from airflow.exceptions import TaskDeferralTimeout  # type: ignore[no-redef,attr-defined]
    return TaskDeferralTimeout


def is_framework_timeout(next_method: str | None, next_kwargs: Mapping[str, Any] | None) -> bool:
    """Return whether a task resumes because Airflow timed its deferral out (either version's wording).

    Airflow 2.x schedules such a task with ``next_method="__fail__"``; the error text differs between
    releases, and only some of them raise ``TaskDeferralTimeout`` for it, so the operator checks itself.
    """
    return next_method == "__fail__" and (next_kwargs or {}).get("error") in _FRAMEWORK_TIMEOUT_ERRORS


# ---------------------------------------------------------------------------- kill of a deferred task


class DeferralEnd(enum.Enum):
    """Why a trigger was cancelled below Airflow 3.3, read from its task instance's state."""

    #: still deferred: the triggerer is stopping or handing the trigger to another one; the run goes on
    STILL_DEFERRED = "still_deferred"
    #: a user marked the task failed/succeeded or cleared it: abolish with ``cancel_on_kill``
    KILLED = "killed"
    #: Airflow 2.x timed the deferral out itself; the resumed task abolishes with ``cancel_on_timeout``
    TIMED_OUT = "timed_out"
    #: the state could not be read; nothing is abolished on a guess
    UNKNOWN = "unknown"


async def deferral_end(task_instance: Any) -> DeferralEnd:
    """Return why the trigger of ``task_instance`` (the triggerer's ``trigger.task_instance``) was cancelled.

    Bounded by :data:`STATE_READ_TIMEOUT`; never raises (a failed read is :attr:`DeferralEnd.UNKNOWN`).
    The read itself is never cancelled: a request cut off after it was sent leaves its reply on the
    triggerer's comms socket, where the runner's next request reads it (3.0/3.1 then stop the runner with
    "Response read out of order"). One that outlasts the timeout is left to finish on its own.
    """
    if task_instance is None:
        return DeferralEnd.UNKNOWN
    read = asyncio.ensure_future(_read_deferral_end(task_instance))
    read.add_done_callback(_consume_outcome)
    done, _ = await asyncio.wait({read}, timeout=STATE_READ_TIMEOUT)
    if not done or read.cancelled() or read.exception() is not None:
        return DeferralEnd.UNKNOWN
    return read.result()


async def outlast_cancels(handling: Coroutine[Any, Any, None], within: float) -> None:
    """Run ``handling`` (a cancelled trigger's clean-up) for at most ``within`` seconds, whatever cancels the caller.

    Below Airflow 3.3 the triggerer cancels a trigger again each time it syncs with its supervisor
    (about once a second) until the trigger's task ends, so a clean-up awaited in the cancelled task
    itself is cut off at the next sync: mid-read of the task state, or mid-abolish. Here it runs as a
    task of its own, which those cancels never reach; this waits for it, absorbing them. After
    ``within`` seconds the clean-up is left to finish alone; never raises.

    :param handling: the clean-up; it must bound itself and catch its own errors
    :param within: seconds to wait for it
    """
    task = asyncio.ensure_future(handling)
    task.add_done_callback(_consume_outcome)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not task.done() and (remaining := deadline - loop.time()) > 0:
        try:
            await asyncio.wait({task}, timeout=remaining)
        except asyncio.CancelledError:
            continue  # the triggerer's next cancel of the same trigger; the caller re-raises the first


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    # Marks a background task's exception as seen, so asyncio logs no "exception was never retrieved".
    if not task.cancelled():
        task.exception()


async def _read_deferral_end(task_instance: Any) -> DeferralEnd:
    if AIRFLOW_V_3_0_PLUS:
        # asgiref's sync_to_async, as Airflow's own Google and Amazon triggers call the task-state read:
        # 3.0/3.1's comms ``send`` is async_to_sync, which reaches the triggerer's loop only from a
        # thread sync_to_async started (from a plain thread it runs in a new loop and fails).
        from asgiref.sync import sync_to_async

        state = await sync_to_async(_task_state_v3)(task_instance)
    else:
        state, next_method, next_kwargs = await asyncio.to_thread(_task_state_v2, task_instance)
        if is_framework_timeout(next_method, next_kwargs):
            return DeferralEnd.TIMED_OUT
    if getattr(state, "value", state) == "deferred":
        return DeferralEnd.STILL_DEFERRED
    # failed, success, up_for_retry, none (cleared or deleted), scheduled again after a clear, ...
    return DeferralEnd.KILLED


def _task_state_v3(task_instance: Any) -> Any:
    # The task-state read a trigger can make on Airflow 3.0-3.2: the supervisor's GetTaskStates, through
    # the runtime task instance's static method (the RuntimeTaskInstanceProtocol's get_task_states; the
    # triggerer serves it). Airflow's own Google and Amazon triggers read it the same way.
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    states = RuntimeTaskInstance.get_task_states(
        dag_id=task_instance.dag_id,
        task_ids=[task_instance.task_id],
        run_ids=[task_instance.run_id],
        map_index=task_instance.map_index,
    )
    return states[task_instance.run_id][task_instance.task_id]


def _task_state_v2(task_instance: Any) -> tuple[Any, Any, Any]:
    # Airflow 2.x triggers run next to the metadata database; the ORM task instance is its public model.
    from airflow.models.taskinstance import TaskInstance  # type: ignore[attr-defined]
    from airflow.utils.session import create_session  # type: ignore[attr-defined]

    with create_session() as session:
        row = (
            session.query(TaskInstance)
            .filter(
                TaskInstance.dag_id == task_instance.dag_id,
                TaskInstance.task_id == task_instance.task_id,
                TaskInstance.run_id == task_instance.run_id,
                TaskInstance.map_index == task_instance.map_index,
            )
            .one_or_none()
        )
        if row is None:  # the DAG run was deleted: nothing waits for the run any more
            return None, None, None
        return row.state, row.next_method, row.next_kwargs
