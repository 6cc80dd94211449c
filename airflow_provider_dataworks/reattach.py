"""Find the pipeline run this task instance already started, so a retry never deploys twice.

DataWorks has no idempotency token for ``CreatePipelineRun``, so exactly-once deployment is
built here, from two records of "which run belongs to this task instance":

1. **Airflow's task state store** (``context["task_state_store"]``, Airflow 3.3+). The run
   id is written the moment the run exists and again before deferring; it survives retries
   (XCom does not: Airflow clears a task instance's XComs at the start of every try).
2. **A tag in the run's Description**: ``[airflow:<16 hex>:<8 hex>]``. The first part hashes
   ``(dag_id, task_id, run_id, map_index)`` — deliberately *not* the try number, so every try
   of one task instance carries it; the second hashes the *attempt*: the try number this task
   instance's current attempt began with, which a clear of this task instance changes and a retry
   (or a clear of another task of the DAG run) does not. ``ListPipelineRuns(ObjectId=…)`` plus an
   exact client-side match of the tag finds the run where the store is unavailable (older
   Airflow, store errors), where the worker died between the create and the store write, and
   after an ambiguous create.

What is adopted (:func:`pick_adoptable`): an *active* run of this task instance from any
attempt (one task never runs two deployments of one object at once), else a *successful* run
of this attempt. A clear of a finished task or a re-created DAG run therefore deploys anew.

When the Description is listed (:func:`runs_to_adopt`): never on the first try of a fresh task
instance; on the first try after a clear only the object's active runs (``Status`` filter) and
only without a store; on a later try of the same attempt the newest runs, page by page, stopping
at runs older than the attempt.

A run without this task instance's tag is never adopted, so two tasks that deploy the same
object (or a person in the console) never take over each other's runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_dataworks._compat import attempt_try, task_state_store
from airflow_provider_dataworks.exceptions import DataWorksError
from airflow_provider_dataworks.status import PipelineRun

if TYPE_CHECKING:
    from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

log = logging.getLogger(__name__)

#: key of this provider's record in Airflow's task state store
STATE_KEY = "dataworks_pipeline_run"
_TAG_RE = re.compile(r"\[airflow:([0-9a-f]{16})(?::([0-9a-f]{8}))?\]")
#: DataWorks' clock and Airflow's may differ: a run this much older than the attempt may still be its
CLOCK_SKEW_SECONDS = 600
#: the longest Description this provider writes (marker and user text). The SDK documents no limit; 255
#: characters is a common bound for such fields, and the marker comes first, so a server that keeps even
#: fewer characters still keeps the marker (35 characters).
MAX_DESCRIPTION = 255
#: pipeline-run statuses that are still going (the ``Status`` filter takes one value)
ACTIVE_STATUSES = ("Running", "Init")


def task_tag(dag_id: str, task_id: str, run_id: str, map_index: int | None) -> str:
    """Return the 16-hex tag of one task instance; equal for every try of it."""
    index = -1 if map_index is None else int(map_index)
    key = json.dumps([str(dag_id), str(task_id), str(run_id), index], separators=(",", ":"))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def task_tag_from_context(context: Mapping[str, Any]) -> str:
    """Return the tag of the task instance running with ``context``."""
    ti = context["ti"]
    return task_tag(ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1))


@dataclass(frozen=True)
class Attempt:
    """One DAG-run attempt of a task instance: what a clear or a re-created DAG run changes, a retry does not."""

    #: 8 hex of the try number the attempt began with
    key: str
    #: epoch ms no run of the attempt can be older than (the DAG run's due time), or ``None`` when unknown
    started_ms: int | None
    #: which try of this attempt runs (1 = the first), see :func:`~airflow_provider_dataworks._compat.attempt_try`
    try_number: int
    #: whether no earlier try of this task instance ran at all (``try_number`` 1)
    fresh: bool


def attempt_from_context(context: Mapping[str, Any], retries: int) -> Attempt:
    """Return the attempt of the task instance running with ``context``.

    The attempt is the task instance's own: the try number its current attempt began with
    (``try_number`` counted back by :func:`attempt_try`). A clear of *this* task instance starts a new
    attempt; a clear of another task of the same DAG run does not, although it bumps the DAG run's
    ``clear_number`` and resets its ``start_date`` (so neither may key the attempt: a retry after a
    neighbour's clear would then redeploy a run that had already succeeded).
    """
    dag_run = context.get("dag_run")
    ti = context["ti"]
    this_try = attempt_try(ti, retries)
    try:
        try_number = int(ti.try_number)
    except (AttributeError, TypeError, ValueError):
        try_number = this_try
    first_try = max(1, try_number - this_try + 1)
    key = json.dumps(["first_try", first_try], separators=(",", ":"))
    # the earliest an attempt's run can have been created: the DAG run cannot start before it is due
    # (run_after on Airflow 3, the logical date below), and clears do not move that
    began = next(
        (
            value
            for name in ("run_after", "logical_date", "execution_date", "start_date")
            if isinstance(value := getattr(dag_run, name, None), datetime)
        ),
        None,
    )
    return Attempt(
        key=hashlib.sha256(key.encode()).hexdigest()[:8],
        started_ms=int(began.timestamp() * 1000) if began is not None else None,
        try_number=this_try,
        fresh=try_number <= 1,
    )


def tag_marker(tag: str, attempt: str | None = None) -> str:
    return f"[airflow:{tag}:{attempt}]" if attempt else f"[airflow:{tag}]"


def tagged_description(description: str | None, tag: str, attempt: str | None = None, logger: Any = None) -> str:
    """Return this task instance's (and attempt's) marker, then ``description``, within :data:`MAX_DESCRIPTION`.

    The marker comes first, so a server that shortens long descriptions cuts the user's text, never
    the marker a retry looks for. The user's text is shortened here past the bound (and that is logged).
    """
    marker = tag_marker(tag, attempt)
    base = (description or "").strip()
    if not base:
        return marker
    room = MAX_DESCRIPTION - len(marker) - 1
    if len(base) > room:
        (logger or log).warning(
            "The description is %d characters; the pipeline run's Description keeps its first %d (with this task's "
            "%d-character marker in front, %d in all).",
            len(base),
            room,
            len(marker),
            MAX_DESCRIPTION,
        )
        base = base[:room].rstrip()
    return f"{marker} {base}"


def _marker(description: str | None) -> tuple[str, str] | None:
    """The marker a run's Description carries: the leading one (this version writes it first), else the last
    one (runs created by versions that appended it)."""
    text = description or ""
    leading = _TAG_RE.match(text.lstrip())
    if leading is not None:
        return leading.group(1), leading.group(2) or ""
    found = _TAG_RE.findall(text)
    return found[-1] if found else None


def description_tag(description: str | None) -> str | None:
    """Return the task-instance tag a run's Description carries, or ``None``."""
    found = _marker(description)
    return found[0] if found else None


def description_attempt(description: str | None) -> str | None:
    """Return the attempt key of a run's marker, or ``None`` for a marker without one."""
    found = _marker(description)
    return (found[1] or None) if found else None


@dataclass(frozen=True)
class StoredRun:
    """What is kept in the task state store about this task instance's run."""

    pipeline_run_id: str
    project_id: int
    object_id: str
    tag: str
    #: the attempt that created the run (``None`` in records written before attempts were recorded)
    attempt: str | None = None
    #: this task abolished the run (a timeout, a kill, a give-up), read back as ``Termination``/``Cancel``:
    #: a retry deploys again. A run stopped without this mark was stopped by someone else: a retry does not.
    abolished: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "pipeline_run_id": self.pipeline_run_id,
            "project_id": self.project_id,
            "object_id": self.object_id,
            "tag": self.tag,
            "attempt": self.attempt,
            "abolished": self.abolished,
        }

    def stopped_by_someone(self, run: PipelineRun) -> bool:
        """Whether ``run`` (this record's run) was abolished, and not by this task."""
        return run.id == self.pipeline_run_id and run.was_stopped and not self.abolished

    @classmethod
    def from_json(cls, value: Any) -> StoredRun | None:
        """Read a stored record; anything malformed reads as ``None`` (and the tag scan takes over)."""
        if not isinstance(value, Mapping):
            return None
        try:
            record = cls(
                pipeline_run_id=str(value["pipeline_run_id"]),
                project_id=int(value["project_id"]),
                object_id=str(value["object_id"]),
                tag=str(value["tag"]),
                attempt=str(value["attempt"]) if value.get("attempt") else None,
                abolished=value.get("abolished") is True,
            )
        except (KeyError, TypeError, ValueError):
            return None
        return record if record.pipeline_run_id else None


class RunStore:
    """Best-effort access to Airflow's task state store: a store failure never fails the task.

    :param context: the task context; its ``task_state_store`` is used where Airflow has one (3.3+,
        :func:`~airflow_provider_dataworks._compat.task_state_store`).
    """

    def __init__(self, context: Mapping[str, Any], logger: Any = None) -> None:
        self._store = task_state_store(context)
        self.log = logger or log
        self.usable = self._store is not None

    def get(self) -> StoredRun | None:
        if not self.usable:
            return None
        try:
            raw = self._store.get(STATE_KEY)  # type: ignore[union-attr]
        except Exception as err:
            self._disable("read", err)
            return None
        return StoredRun.from_json(raw)

    def set(self, record: StoredRun) -> None:
        if not self.usable:
            return
        try:
            # The configured default retention ([state_store] default_retention_days, 30 days
            # out of the box): the record only has to outlive the retries of one task instance.
            self._store.set(STATE_KEY, record.to_json())  # type: ignore[union-attr]
        except Exception as err:
            self._disable("write", err)

    def _disable(self, what: str, error: Exception) -> None:
        self.usable = False
        self.log.warning(
            "Could not %s the task state store (%s: %s); falling back to the Description tag to find "
            "this task's pipeline run.",
            what,
            type(error).__name__,
            error,
        )


class BestEffortStore:
    """The task state store as :class:`ResumableJobMixin` reads and writes it (by key), through :class:`RunStore`.

    The mixin calls the store directly; through this a store error still never fails the task, and
    the value is always a :class:`StoredRun` record.
    """

    def __init__(self, store: RunStore) -> None:
        self._store = store

    def get(self, key: str, default: Any = None) -> Any:
        record = self._store.get() if key == STATE_KEY else None
        return record.to_json() if record is not None else default

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        record = StoredRun.from_json(value) if key == STATE_KEY else None
        if record is not None:
            self._store.set(record)


def tagged_runs(hook: DataWorksHook, project_id: int, object_id: str, tag: str) -> list[PipelineRun]:
    """Return this task instance's runs of ``object_id``, newest first (one full list scan)."""
    runs = hook.list_pipeline_runs(project_id, object_id=object_id)
    mine = [run for run in runs if description_tag(run.description) == tag]
    return sorted(mine, key=lambda run: run.create_time_ms or 0, reverse=True)


def of_attempt(run: PipelineRun, attempt: Attempt) -> bool:
    """Whether ``run`` was created by ``attempt`` (a marker without attempt: created since it began)."""
    key = description_attempt(run.description)
    if key is not None:
        return key == attempt.key
    return attempt.started_ms is not None and (run.create_time_ms or 0) >= attempt.started_ms


def pick_adoptable(runs: Sequence[PipelineRun], attempt: Attempt | None = None) -> PipelineRun | None:
    """Return the run to adopt: the newest active one, else the newest successful one of ``attempt``.

    Failed, terminated and cancelled runs are never adopted: the retry deploys again. A successful
    run of an earlier attempt (before a clear, or of a deleted DAG run with the same run_id) is not
    adopted either: clearing means deploying again.
    """
    active = [run for run in runs if not run.is_terminal]
    if active:
        return active[0]
    return next((run for run in runs if run.is_success and (attempt is None or of_attempt(run, attempt))), None)


def recent_tagged_runs(
    hook: DataWorksHook, project_id: int, object_id: str, tag: str, *, since_ms: int | None
) -> tuple[list[PipelineRun], bool]:
    """List the object's runs newest first, page by page, until they are older than ``since_ms``.

    Returns this task instance's runs (newest first) and whether the listing was read to its end.
    DataWorks does not document the order of ``ListPipelineRuns``; the listing stops early only
    while every page seen so far is newest first, otherwise it reads every page.
    """
    mine: list[PipelineRun] = []
    previous: int | None = None
    ordered = True
    for page in range(1, 1_000_000):
        runs, last = hook.list_pipeline_runs_page(project_id, object_id=object_id, page_number=page)
        mine.extend(run for run in runs if description_tag(run.description) == tag)
        for run in runs:
            created = run.create_time_ms or 0
            ordered = ordered and (previous is None or created <= previous)
            previous = created
        if last:
            return _newest_first(mine), True
        if ordered and since_ms is not None and previous is not None and previous < since_ms:
            return _newest_first(mine), False
    return _newest_first(mine), False


def active_tagged_runs(hook: DataWorksHook, project_id: int, object_id: str, tag: str) -> list[PipelineRun]:
    """Return this task instance's runs that are still going, any age (one filtered listing per status)."""
    mine: list[PipelineRun] = []
    for status in ACTIVE_STATUSES:
        runs = hook.list_pipeline_runs(project_id, object_id=object_id, status=status)
        mine.extend(run for run in runs if description_tag(run.description) == tag)
    return _newest_first(mine)


def _newest_first(runs: list[PipelineRun]) -> list[PipelineRun]:
    return sorted(runs, key=lambda run: run.create_time_ms or 0, reverse=True)


def reconcile_ambiguous_create(
    hook: DataWorksHook,
    project_id: int,
    object_id: str,
    tag: str,
    *,
    known_ids: frozenset[str],
    delays: Sequence[float],
    since_ms: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    logger: Any = None,
) -> tuple[PipelineRun | None, bool]:
    """After a create that may or may not have happened, look for the run it made.

    Lists the tagged runs after each delay in ``delays`` (DataWorks may need a moment before
    it lists a new run) and returns the first tagged run not in ``known_ids`` (the runs seen
    before the create), with whether the object's runs could be listed at all. ``(None, True)``
    means the listings read showed no such run, so the create did not happen; ``(None, False)``
    that nothing could be listed, so nobody knows.
    """
    logger = logger or log
    listed = False
    for attempt, delay in enumerate(delays, 1):
        sleep(delay)
        try:
            runs, _ = recent_tagged_runs(hook, project_id, object_id, tag, since_ms=since_ms)
        except DataWorksError as err:  # a failed lookup is one unsuccessful reconcile attempt
            logger.warning("Reconcile attempt %d of %d could not list pipeline runs: %s", attempt, len(delays), err)
            continue
        listed = True
        fresh = [run for run in runs if run.id not in known_ids]
        if fresh:
            return fresh[0], True
        logger.info("Reconcile attempt %d of %d: the pipeline run is not listed (yet).", attempt, len(delays))
    return None, listed
