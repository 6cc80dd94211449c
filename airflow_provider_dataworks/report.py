"""The deployment report: what a pipeline run deployed, and how each of its stages went.

When a run ends — success or failure — the operator (and the sensor, for runs it drives) reads
the run's items with ``ListPipelineRunItems`` (every page: at most ⌈items/100⌉ calls, none while
waiting) and publishes:

* XCom ``pipeline_run_items``: per item ``id``, ``name``, ``type``, ``version``, ``status``;
* XCom ``pipeline_run_summary``: the object, the run type (``Online``/``Offline``), the final
  status and every stage with code, type, status, start, finish, duration and message (times from
  the stage's ``Detail`` when DataWorks gives them, else when the task's reads saw them, marked
  ``observed``);
* one table of both in the task log, the failing stage and items first when the run failed.

The report describes the outcome; it never decides it. A report that cannot be read (the
items call failing after its retries) is logged as a warning and the task's outcome stands.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_dataworks.exceptions import DataWorksError
from airflow_provider_dataworks.status import PipelineRun, PipelineRunItem, PipelineRunStatus, Stage

if TYPE_CHECKING:
    from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

XCOM_ITEMS = "pipeline_run_items"
XCOM_SUMMARY = "pipeline_run_summary"

#: failing items named on the FAILED line; the item table lists every one
MAX_NAMED_ITEMS = 10
_OK_ITEM_STATUSES = frozenset({PipelineRunStatus.SUCCESS.value})


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _stage_row(stage: Stage, observed: Mapping[str, Sequence[int | None]]) -> dict[str, Any]:
    """One stage of the summary; its times from DataWorks' ``Detail`` when it gives them, else as observed.

    ``times`` says which: ``"dataworks"``, ``"observed"`` (when this task's reads first saw the stage
    running and finished: accurate to one poll interval) or ``None`` (unknown).
    """
    start, finish = stage.start_time_ms, stage.finish_time_ms
    source: str | None = "dataworks" if start is not None or finish is not None else None
    seen = observed.get(stage.code)
    if source is None and seen is not None and (seen[0] is not None or seen[1] is not None):
        start, finish, source = seen[0], seen[1], "observed"
    duration = None if start is None or finish is None else round((finish - start) / 1000, 3)
    return {
        "code": stage.code,
        "step": stage.step,
        "type": stage.type,
        "name": stage.name,
        "status": stage.status,
        "start": _iso(start),
        "finish": _iso(finish),
        "duration_seconds": duration,
        "times": source,
        "message": stage.message,
    }


@dataclass(frozen=True)
class DeploymentReport:
    """A finished (or check-only) pipeline run and the items it fixed.

    :param run: the run as last read.
    :param items: what ``ListPipelineRunItems`` returned, every page.
    :param object_id: the object the run was created for, when the caller knows it.
    :param check_only: the run was a check-only run (stopped before its first deploy stage).
    :param abolished: the task abolished the run after reading it (a check-only run whose checks
        passed): ``status`` is the last status read, before the abolish.
    """

    run: PipelineRun
    items: tuple[PipelineRunItem, ...]
    object_id: str | None = None
    check_only: bool = False
    abolished: bool = False
    #: per stage code, when the task's reads first saw it running and finished (see ``RunProgress``)
    observed: Mapping[str, Sequence[int | None]] = field(default_factory=dict)

    @property
    def failing_items(self) -> list[PipelineRunItem]:
        return [item for item in self.items if item.status not in _OK_ITEM_STATUSES and item.message]

    def items_xcom(self) -> list[dict[str, Any]]:
        """The ``pipeline_run_items`` XCom: JSON primitives only."""
        return [
            {"id": item.id, "name": item.name, "type": item.type, "version": item.version, "status": item.status}
            for item in self.items
        ]

    def summary_xcom(self) -> dict[str, Any]:
        """The ``pipeline_run_summary`` XCom: JSON primitives only."""
        run = self.run
        first = self.items[0] if self.items else None
        failed_stage = run.failed_stage
        return {
            "pipeline_run_id": run.id,
            "project_id": run.project_id,
            "object_id": self.object_id or (first.id if first else None),
            "object_name": first.name if first else None,
            "type": run.run_type,
            "status": run.status,
            "check_only": self.check_only,
            "abolished": self.abolished,
            "message": run.message,
            "failed_stage": failed_stage.code if failed_stage else None,
            "item_count": len(self.items),
            "stages": [_stage_row(stage, self.observed) for stage in run.ordered_stages],
        }

    def format(self) -> str:
        """One readable table of the summary, the stages and the items, failures first."""
        summary = self.summary_xcom()
        lines = [
            f"DataWorks pipeline run {summary['pipeline_run_id']}: {summary['type']} of object "
            f"{summary['object_id']} ({summary['object_name']}), status {summary['status']}"
            + (
                " (check-only" + ("; every check passed, then the run was abolished)" if self.abolished else ")")
                if self.check_only
                else ""
            )
            + f", {summary['item_count']} item(s)."
        ]
        stage = self.run.failed_stage
        if stage is not None:
            lines.append(f"FAILED at stage {stage.code} ({stage.type}, step {stage.step}): {stage.message or '-'}")
            by_message: dict[str, list[PipelineRunItem]] = {}
            for item in self.failing_items:
                by_message.setdefault(item.message, []).append(item)
            for message, items in by_message.items():
                names = ", ".join(f"{item.id} {item.name} ({item.type})" for item in items[:MAX_NAMED_ITEMS])
                if len(items) > MAX_NAMED_ITEMS:
                    names += f" and {len(items) - MAX_NAMED_ITEMS} more (all in the item table)"
                lines.append(f"FAILED item(s) {names}: {message}")
        stages = [_stage_row(s, self.observed) for s in self.run.ordered_stages]
        stages.sort(key=lambda row: row["status"] not in ("Fail", "Termination", "Cancel"))
        lines.append("")
        lines += _table(
            ("step", "stage", "type", "status", "start", "finish", "duration_s", "times", "message"),
            [
                (
                    row["step"],
                    row["code"],
                    row["type"],
                    row["status"],
                    row["start"] or "-",
                    row["finish"] or "-",
                    "-" if row["duration_seconds"] is None else row["duration_seconds"],
                    row["times"] or "-",
                    row["message"] or "",
                )
                for row in stages
            ],
        )
        items = sorted(self.items, key=lambda item: item.status in _OK_ITEM_STATUSES)
        lines.append("")
        lines += _table(
            ("item id", "name", "type", "version", "status"),
            [(i.id, i.name, i.type, "-" if i.version is None else i.version, i.status) for i in items],
        )
        return "\n".join(lines)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    # Hand-written: a dozen lines, and a table library would be one more dependency of every worker.
    cells = [[str(value) for value in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(header)]
    fmt = " | ".join(f"{{:<{width}}}" for width in widths)
    out = [fmt.format(*header).rstrip(), "-+-".join("-" * width for width in widths)]
    out += [fmt.format(*row).rstrip() for row in cells]
    return out


def publish_report(
    hook: DataWorksHook,
    run: PipelineRun,
    ti: Any,
    logger: logging.Logger | Any,
    *,
    project_id: int | None = None,
    object_id: str | None = None,
    check_only: bool = False,
    abolished: bool = False,
    observed: Mapping[str, Sequence[int | None]] | None = None,
) -> DeploymentReport | None:
    """Read the run's items (every page), push both XComs and log the table; never raises DataWorks errors.

    :return: the report, or ``None`` when the items could not be read.
    """
    try:
        items = hook.list_pipeline_run_items(run.id, project_id if project_id is not None else run.project_id)
    except (DataWorksError, ValueError) as err:
        logger.warning("No deployment report for pipeline run %s: its items could not be read: %s", run.id, err)
        return None
    report = DeploymentReport(
        run=run,
        items=tuple(items),
        object_id=object_id,
        check_only=check_only,
        abolished=abolished,
        observed=dict(observed or {}),
    )
    ti.xcom_push(key=XCOM_ITEMS, value=report.items_xcom())
    ti.xcom_push(key=XCOM_SUMMARY, value=report.summary_xcom())
    logger.info("Deployment report\n%s", report.format())
    return report
