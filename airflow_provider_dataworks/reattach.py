"""Find the pipeline run this task instance already started, so a retry never deploys twice.

DataWorks has no idempotency token for ``CreatePipelineRun``, so exactly-once deployment is
built here, from two records of "which run belongs to this task instance":

1. **Airflow's task state store** (``context["task_state_store"]``, Airflow 3.3+). The run
   id is written the moment the run exists and again before deferring; it survives retries
   (XCom does not: Airflow clears a task instance's XComs at the start of every try).
2. **A tag in the run's Description**: ``[airflow:<16 hex>]``, a hash of
   ``(dag_id, task_id, run_id, map_index)`` — deliberately *not* the try number, so every
   try of one task instance carries the same tag. ``ListPipelineRuns(ObjectId=…)`` (every
   page) plus an exact client-side match of the tag finds the run where the store is
   unavailable (older Airflow, ``dag.test`` without a store, store errors), where the worker
   died between the create and the store write, and after an ambiguous create.

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
from typing import TYPE_CHECKING, Any

from airflow_provider_dataworks._compat import task_state_store
from airflow_provider_dataworks.exceptions import DataWorksError
from airflow_provider_dataworks.status import PipelineRun

if TYPE_CHECKING:
    from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

log = logging.getLogger(__name__)

#: key of this provider's record in Airflow's task state store
STATE_KEY = "dataworks_pipeline_run"
_TAG_RE = re.compile(r"\[airflow:([0-9a-f]{16})\]")


def task_tag(dag_id: str, task_id: str, run_id: str, map_index: int | None) -> str:
    """Return the 16-hex tag of one task instance; equal for every try of it."""
    index = -1 if map_index is None else int(map_index)
    key = json.dumps([str(dag_id), str(task_id), str(run_id), index], separators=(",", ":"))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def task_tag_from_context(context: Mapping[str, Any]) -> str:
    """Return the tag of the task instance running with ``context``."""
    ti = context["ti"]
    return task_tag(ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1))


def tag_marker(tag: str) -> str:
    return f"[airflow:{tag}]"


def tagged_description(description: str | None, tag: str) -> str:
    """Return ``description`` with this task instance's marker appended."""
    base = (description or "").strip()
    marker = tag_marker(tag)
    return f"{base} {marker}" if base else marker


def description_tag(description: str | None) -> str | None:
    """Return the tag a run's Description carries (the last marker), or ``None``."""
    found = _TAG_RE.findall(description or "")
    return found[-1] if found else None


@dataclass(frozen=True)
class StoredRun:
    """What is kept in the task state store about this task instance's run."""

    pipeline_run_id: str
    project_id: int
    object_id: str
    tag: str

    def to_json(self) -> dict[str, Any]:
        return {
            "pipeline_run_id": self.pipeline_run_id,
            "project_id": self.project_id,
            "object_id": self.object_id,
            "tag": self.tag,
        }

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


def tagged_runs(hook: DataWorksHook, project_id: int, object_id: str, tag: str) -> list[PipelineRun]:
    """Return this task instance's runs of ``object_id``, newest first (one full list scan)."""
    runs = hook.list_pipeline_runs(project_id, object_id=object_id)
    mine = [run for run in runs if description_tag(run.description) == tag]
    return sorted(mine, key=lambda run: run.create_time_ms or 0, reverse=True)


def pick_adoptable(runs: Sequence[PipelineRun]) -> PipelineRun | None:
    """Return the run to adopt: the newest active one, else the newest successful one, else ``None``.

    Failed, terminated and cancelled runs are never adopted: the retry deploys again.
    """
    active = [run for run in runs if not run.is_terminal]
    if active:
        return active[0]
    return next((run for run in runs if run.is_success), None)


def reconcile_ambiguous_create(
    hook: DataWorksHook,
    project_id: int,
    object_id: str,
    tag: str,
    *,
    known_ids: frozenset[str],
    delays: Sequence[float],
    sleep: Callable[[float], None] = time.sleep,
    logger: Any = None,
) -> PipelineRun | None:
    """After a create that may or may not have happened, look for the run it made.

    Lists the tagged runs after each delay in ``delays`` (DataWorks may need a moment before
    it lists a new run) and returns the first tagged run not in ``known_ids`` (the runs seen
    before the create), or ``None`` when none appeared.
    """
    logger = logger or log
    for attempt, delay in enumerate(delays, 1):
        sleep(delay)
        try:
            runs = tagged_runs(hook, project_id, object_id, tag)
        except DataWorksError as err:  # a failed lookup is one unsuccessful reconcile attempt
            logger.warning("Reconcile attempt %d of %d could not list pipeline runs: %s", attempt, len(delays), err)
            continue
        fresh = [run for run in runs if run.id not in known_ids]
        if fresh:
            return fresh[0]
        logger.info("Reconcile attempt %d of %d: the pipeline run is not listed (yet).", attempt, len(delays))
    return None
