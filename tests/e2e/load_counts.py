"""Per-interval counts of the load step: what the emulator was asked while the deployments waited together.

The triggerer's status poller (``hooks/poller.py``) serves every trigger of one connection and
workspace with one cycle per poll interval: one ``ListPipelineRuns(Status=Running)`` page per 100
running runs, then one ``GetPipelineRun`` per waited run the list did not hold (finished since
the last cycle, or still ``Init``). Besides the triggerer, only the workers read: each deploy's
first slice reads its new run once (right after ``CreatePipelineRun``) before it defers, and
nothing else lists on a first try.

So, cutting the emulator's call log into poll-interval bins over the *window* (the time Airflow
reported at least ``threshold`` task instances deferred), every bin must show

* ``ListPipelineRuns`` ≤ ⌈waiting / 100⌉ + 1 (the +1: with cycles 2 % longer than the interval a
  bin holds at most one cycle start, but a cycle's pages may straddle the bin's edge), and
* ``GetPipelineRun`` ≤ runs finished in the bin or the two intervals before it (the poller reads
  each once, at its first cycle after the finish, which starts up to 1.02 intervals later and
  takes a moment itself) + runs created in the bin or the interval before it (the worker's one
  read, and a run still ``Init`` at a cycle) + :data:`GET_SLACK`,

where per-run reads would cost one ``GetPipelineRun`` per waiting deployment and interval.
Everything here is a count; no timing is asserted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LIST, GET, CREATE = "ListPipelineRuns", "GetPipelineRun", "CreatePipelineRun"
PAGE_SIZE = 100
#: GetPipelineRun calls per bin the rule does not name: a read the hook retried (it retries 5xx and
#: transport errors, e.g. a connection reset by the loaded emulator), at most two per interval
GET_SLACK = 2


@dataclass(frozen=True)
class Sample:
    """What Airflow's REST API reported at one moment (epoch seconds)."""

    time: float
    deferred: int


@dataclass(frozen=True)
class Bin:
    """One poll interval of the window and what the emulator received in it."""

    start: float
    end: float
    #: the most task instances Airflow reported deferred during the bin (the triggers waiting)
    waiting: int
    lists: int
    gets: int
    creates: int
    #: runs that finished in this bin or the two intervals before it
    finished: int
    #: runs created in this bin or the interval before it
    created: int

    @property
    def list_bound(self) -> int:
        return math.ceil(self.waiting / PAGE_SIZE) + 1

    @property
    def get_bound(self) -> int:
        return self.finished + self.created + GET_SLACK

    @property
    def reads(self) -> int:
        return self.lists + self.gets


def run_finished_at(record: dict[str, Any]) -> float:
    """When an emulator run record finished, in epoch seconds (``inf`` while it is active)."""
    if record["status"] in ("Init", "Running"):
        return math.inf
    finishes = [s["finish_time"] for s in record["stages"] if s.get("finish_time") is not None]
    return (max(finishes) if finishes else record["modify_time"]) / 1000


def window(samples: Sequence[Sample], threshold: int) -> tuple[float, float] | None:
    """The first and last sample time with at least ``threshold`` deferred (``None``: never)."""
    times = [s.time for s in samples if s.deferred >= threshold]
    return (times[0], times[-1]) if times else None


def bins(
    calls: Sequence[dict[str, Any]],
    runs: Sequence[dict[str, Any]],
    samples: Sequence[Sample],
    *,
    start: float,
    end: float,
    interval: float,
) -> list[Bin]:
    """Cut ``[start, end)`` into bins of ``interval`` seconds and count each (a last partial bin included)."""
    created = [r["create_time"] / 1000 for r in runs]
    finished = [run_finished_at(r) for r in runs]
    result = []
    count = max(1, math.ceil((end - start) / interval))
    for k in range(count):
        lo, hi = start + k * interval, min(start + (k + 1) * interval, end)
        actions = [c["action"] for c in calls if lo <= c["time"] < hi]
        # the window's last sample (its end) belongs to the last bin
        inside = [s.deferred for s in samples if lo <= s.time < hi or s.time == hi == end]
        result.append(
            Bin(
                start=lo,
                end=hi,
                waiting=max(inside, default=0),
                lists=actions.count(LIST),
                gets=actions.count(GET),
                creates=actions.count(CREATE),
                finished=sum(1 for t in finished if lo - 2 * interval <= t < hi),
                created=sum(1 for t in created if lo - interval <= t < hi),
            )
        )
    return result


def over_bounds(counted: Sequence[Bin]) -> list[str]:
    """A line per bin whose reads exceed the coalesced rule (empty: every bin kept it)."""
    problems = []
    for b in counted:
        if b.lists > b.list_bound:
            problems.append(f"bin at {b.start:.1f}: {b.lists} ListPipelineRuns > {b.list_bound} ({b.waiting} waiting)")
        if b.gets > b.get_bound:
            problems.append(
                f"bin at {b.start:.1f}: {b.gets} GetPipelineRun > {b.get_bound} "
                f"({b.finished} finished, {b.created} created, slack {GET_SLACK})"
            )
    return problems


HEADER = "   t(s)  waiting  lists  gets  creates  finished  created  list<=  get<=  per-run reads"


def table(counted: Sequence[Bin], origin: float) -> list[str]:
    """The bins as printable rows, times relative to ``origin``; per-run reads = one per waiting trigger."""
    return [HEADER] + [
        f"{b.start - origin:7.1f}  {b.waiting:7d}  {b.lists:5d}  {b.gets:4d}  {b.creates:7d}  {b.finished:8d}  "
        f"{b.created:7d}  {b.list_bound:6d}  {b.get_bound:5d}  {b.waiting:13d}"
        for b in counted
    ]


def write_report(path: Path, summary: dict[str, Any], counted: Sequence[Bin], origin: float) -> None:
    """Write the summary and the bins (times relative to ``origin``) as JSON."""
    rows = [{**asdict(b), "start": round(b.start - origin, 3), "end": round(b.end - origin, 3)} for b in counted]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**summary, "bins": rows}, indent=2) + "\n")
