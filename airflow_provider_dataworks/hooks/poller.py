"""Coalesced status reads: the triggers of one process share one poller per connection and workspace.

Why: every wait used to cost one ``GetPipelineRun`` per poll, so at a 10 s interval 50 waits
fill a 5-QPS account. ``ListPipelineRuns(Status=Running)`` returns up to 100 runs per page,
each with its full ``Stages[]``: one read answers a hundred waits.

How: a trigger asks :func:`status_reads` for a :class:`StatusReads` when it starts and calls
:meth:`StatusReads.read` where it used to call ``get_pipeline_run_async``; it gets its run
"as of this interval". Behind it, one :class:`StatusPoller` per event loop, connection,
region and workspace runs one *cycle* per interval (the shortest poll interval of its
waiters) while it has waiters:

* **coalesced**: it lists ``Status=Running`` (100 a page; the first page, then the rest a few
  at a time) and hands each waiter
  its run; a waited run absent from the list (finished, or still ``Init``) gets one
  ``GetPipelineRun``;
* **per run**: one ``GetPipelineRun`` per waiter, as before.

**The cheaper path, by counting calls.** Listing costs one call per page of *all* running
runs of the workspace plus one per absent run; per-run reads cost one per waiter. After the
first page the poller knows ``TotalCount``, hence the pages, and continues listing only when
the remaining pages plus the runs that were absent last time cost fewer calls than reading
the unanswered waiters one by one. It remembers the verdict and re-measures every
:data:`PROBE_EVERY` cycles. One waiter is always read per run.

**Alignment.** A trigger reads, then asks for its next read ``poll_interval`` later; it does
not sleep for it: the read waits for the first cycle completing no sooner than half a cadence
before that time (:func:`read_due`). Its first read takes a snapshot taken after it joined and
younger than :func:`max_age` when it asks, or waits for the next cycle. Cycles are
:func:`cycle_period` apart, a little more than the interval, so a trigger at the poller's
interval takes every cycle and a finished run reaches its trigger within about one interval;
a trigger with a longer interval takes every few cycles.

**Quiet waits.** A trigger that decided to wait on a run hands that record back with its next
read (``known``). An unchanged run keeps its record from cycle to cycle, so the poller sees by
identity that the cycle read nothing new: it counts the cycle as the waiter's read and does not
wake the trigger, which would only have decided the same again. The trigger is woken when the
run changes, when its read fails, or when the clock may change its decision (a refused stage's
backoff ends, the deadline comes: ``recheck_in``). Why: at 10,000 waits, the objects each wake
made (a future, the sleep's timer and context, the decision) lived one interval each, long
enough for the garbage collector to move them to its oldest generation; 100,000 of those a
cycle brought a full collection, which walks every trigger's objects (0.6 s), every 15 s.

**Lifecycle.** The poller starts with its first waiter and stops (its task cancelled) when the
last one leaves; a trigger leaves in a ``finally``, so cancelled and killed triggers leave too.
A failed list call makes that cycle read per run: no trigger fails because of it. Per-run
reads use the waiter's own hook (its retry policy); an error there reaches that trigger
only, exactly as before.

Outside the triggerer nothing changes: ``dag.test()`` runs one trigger (one waiter: per-run
reads), and the sensor's poke and the blocking wait call the hook directly.

``AIRFLOW_PROVIDER_DATAWORKS_STATUS_READS``: ``auto`` (default, as above), ``coalesced``
(always list, even for one waiter: for tests) or ``per-run`` (no poller: each trigger reads
its own run, the behaviour before coalescing).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_dataworks.exceptions import DataWorksError
from airflow_provider_dataworks.hooks.paging import served_page_size
from airflow_provider_dataworks.status import PipelineRun, PipelineRunStatus

if TYPE_CHECKING:
    from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

log = logging.getLogger(__name__)

STATUS_READS_ENV = "AIRFLOW_PROVIDER_DATAWORKS_STATUS_READS"
STATUS_READS_MODES = ("auto", "coalesced", "per-run")
#: ListPipelineRuns page size (the API's maximum)
PAGE_SIZE = 100
#: in per-run mode, list again after this many cycles to re-measure the workspace
PROBE_EVERY = 10
#: concurrent GetPipelineRun calls of one cycle (the request budget paces them anyway)
GET_CONCURRENCY = 32
#: list pages read at once after the first (the request budget paces them anyway)
LIST_CONCURRENCY = 8
#: triggers woken per event-loop step when a snapshot is ready. A woken trigger decides and logs
#: (its first read, a stage change): 256 of them in one step blocked the loop for 0.35–0.48 s
#: when 1,000 first reads came in one cycle at N = 10,000
WAKE_BATCH = 32
#: waiters passed per event-loop step when a snapshot is ready (quiet ones are not woken)
QUIET_BATCH = 2048


def status_reads_mode() -> str:
    """The mode chosen by ``AIRFLOW_PROVIDER_DATAWORKS_STATUS_READS`` (``auto`` by default)."""
    mode = os.environ.get(STATUS_READS_ENV, "auto").strip().lower() or "auto"
    if mode not in STATUS_READS_MODES:
        raise ValueError(f"{STATUS_READS_ENV} must be one of {', '.join(STATUS_READS_MODES)}, got {mode!r}.")
    return mode


def max_age(cadence: float) -> float:
    """How old (since it completed) a snapshot may be and still answer a trigger's first read."""
    return max(1.0, 0.1 * cadence)


def cycle_period(cadence: float) -> float:
    """Seconds between two cycles' starts: the interval plus 2 % (at least 50 ms) of slack.

    The slack keeps every waiter's reads at least its own interval apart, however the cycle's
    reads are timed by the request budget.
    """
    return cadence + max(0.05, 0.02 * cadence)


def read_due(now: float, pause: float, cadence: float) -> float:
    """The earliest completion of a cycle that answers a read ``pause`` seconds after ``now``.

    Half a cadence early: the cycle that completes about when the pause ends is the one a
    trigger sleeping ``pause`` and then reading would have got (it asks just before it
    completes), however late the trigger was woken for the read before; a trigger whose
    interval is several cadences takes every few cycles.
    """
    return now + pause - 0.5 * cadence


@dataclass
class Snapshot:
    """What one cycle read: each member waiter's run, or the error reading it raised."""

    seq: int
    started: float
    finished: float = math.inf
    members: frozenset[int] = frozenset()
    runs: dict[str, PipelineRun | BaseException] = field(default_factory=dict)
    coalesced: bool = False


@dataclass(slots=True)
class _Waiter:
    token: int
    run_id: str
    hook: DataWorksHook
    poll_interval: float
    joined_at: float
    last_seq: int = -1
    pending: asyncio.Future[None] | None = None
    #: the earliest completion of a cycle this waiter's next read takes (see :func:`read_due`)
    not_before: float = -math.inf
    #: the record its trigger waits on unchanged: cycles that read it again do not wake the trigger
    known: PipelineRun | None = None

    def takes(self, snapshot: Snapshot) -> bool:
        """Whether ``snapshot`` answers this waiter's next read (not counting a first read's freshness)."""
        return snapshot.seq > self.last_seq and snapshot.finished >= self.not_before and self.token in snapshot.members

    def wake(self) -> None:
        if self.pending is not None and not self.pending.done():
            self.pending.set_result(None)

    def took(self, snapshot: Snapshot, cadence: float) -> None:
        """Count ``snapshot`` as this waiter's read; its next read is an interval later."""
        self.last_seq = snapshot.seq
        self.not_before = read_due(snapshot.finished, self.poll_interval, cadence)


class StatusPoller:
    """One connection + region + workspace's status reads on one event loop (see the module docs)."""

    def __init__(self, key: tuple[Any, ...], hook: DataWorksHook, project_id: int, mode: str) -> None:
        self.key = key
        self.hook = hook
        self.project_id = project_id
        self.mode = mode
        self.waiters: dict[int, _Waiter] = {}
        #: how many waiters poll at each interval: the cadence without a pass over 10,000 waiters
        self._intervals: Counter[float] = Counter()
        self.latest: Snapshot | None = None
        #: calls made, by kind: list_pages, gets, list_failures, coalesced_cycles, per_run_cycles; and the
        #: reads answered: wakes (a trigger woken), unchanged_reads (a quiet wait's cycle, no wake)
        self.stats: Counter[str] = Counter()
        self._seq = 0
        self._first_at: float | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pages: int | None = None
        self._absent = 0
        self._cycles_since_probe = 0
        #: the poller's task died of a bug: its waiters read their runs themselves
        self.broken = False

    # ---------------------------------------------------------------- waiters

    @property
    def cadence(self) -> float:
        """The shortest poll interval of the waiters (read on every first read: kept, not recomputed)."""
        return min(self._intervals)

    def join(self, waiter: _Waiter, first_read_at: float) -> None:
        self.waiters[waiter.token] = waiter
        self._intervals[waiter.poll_interval] += 1
        if self._task is None:
            self._first_at = first_read_at
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"dataworks-status-poller{self.key}")
        self._changed.set()

    def leave(self, waiter: _Waiter) -> None:
        if self.waiters.pop(waiter.token, None) is not None:
            self._intervals[waiter.poll_interval] -= 1
            if not self._intervals[waiter.poll_interval]:
                del self._intervals[waiter.poll_interval]
        if not self.waiters:
            _forget(self)
            if self._task is not None:
                self._task.cancel()
                self._task = None

    @property
    def cycles(self) -> int:
        """Cycles started so far."""
        return self._seq

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ---------------------------------------------------------------- the cycles

    async def _run(self) -> None:
        try:
            await self._cycles()
        except Exception:
            log.exception("DataWorks: status poller %s stopped; its triggers read their runs themselves.", self.key)
            self.broken = True
            _forget(self)
        finally:
            for waiter in list(self.waiters.values()):
                waiter.wake()

    async def _cycles(self) -> None:
        next_at = self._first_at if self._first_at is not None else time.monotonic()
        while self.waiters:
            self._changed.clear()
            delay = next_at - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._changed.wait(), delay)
                except TimeoutError:
                    pass
                else:
                    # a waiter joined or left: a shorter interval may bring the cycle forward
                    if self.waiters and self.latest is not None:
                        next_at = min(next_at, self.latest.started + cycle_period(self.cadence))
                    continue
            if not self.waiters:
                return
            started = time.monotonic()
            snapshot = await self._cycle(started)
            self.latest = snapshot
            await self._wake(snapshot)
            if self.waiters:
                next_at = max(started + cycle_period(self.cadence), time.monotonic())

    async def _cycle(self, started: float) -> Snapshot:
        self._seq += 1
        waiters = list(self.waiters.values())
        snapshot = Snapshot(self._seq, started, members=frozenset(w.token for w in waiters))
        # each waited run and the first of its waiters (whose hook reads it when it is absent);
        # not a list of waiters per run: 10,000 small lists a cycle were work for the GC
        wanted: dict[str, _Waiter] = {}
        for waiter in waiters:
            wanted.setdefault(waiter.run_id, waiter)
        unanswered = set(wanted)
        self._keep_final(unanswered, snapshot)
        complete = False
        if not unanswered:
            pass  # every waited run was read terminal already
        elif self._list_first(len(unanswered)):
            snapshot.coalesced = True
            self.stats["coalesced_cycles"] += 1
            try:
                complete = await self._list(unanswered, snapshot)
            except (DataWorksError, ValueError) as err:
                self.stats["list_failures"] += 1
                log.warning(
                    "DataWorks: listing the running pipeline runs of workspace %s failed (%s); reading %d runs one by "
                    "one this interval.",
                    self.project_id,
                    err,
                    len(unanswered),
                )
        else:
            self.stats["per_run_cycles"] += 1
            self._cycles_since_probe += 1
        absent = [run_id for run_id in wanted if run_id not in snapshot.runs]
        if snapshot.coalesced and complete:
            self._absent = len(absent)
        await self._get_each(absent, wanted, snapshot)
        snapshot.finished = time.monotonic()
        return snapshot

    def _keep_final(self, unanswered: set[str], snapshot: Snapshot) -> None:
        """Answer the runs the last cycle read terminal with that record: a terminal status is final.

        Why: a cycle slower than the interval starts the next one right after the wake, before
        the woken triggers have left; their finished runs would each cost a second read.
        """
        if self.latest is None:
            return
        for run_id in list(unanswered):
            known = self.latest.runs.get(run_id)
            if isinstance(known, PipelineRun) and known.is_terminal:
                snapshot.runs[run_id] = known
                unanswered.discard(run_id)

    def _list_first(self, waiting: int) -> bool:
        """Whether this cycle starts by listing: the call count decides (see the module docs)."""
        if self.mode == "coalesced":
            return True
        if waiting < 2:
            return False
        if self._pages is None or self._cycles_since_probe >= PROBE_EVERY:
            return True
        return self._pages + self._absent < waiting

    async def _list(self, unanswered: set[str], snapshot: Snapshot) -> bool:
        """List ``Status=Running`` while that stays the cheaper way to answer ``unanswered``.

        The first page tells ``TotalCount``; the pages after it are read :data:`LIST_CONCURRENCY`
        at a time (the request budget paces them), the cost re-checked before each batch. One
        page after another, 100 pages (10,000 runs) took longer than a 10 s interval.

        :return: whether every page was read.
        """
        pages, full = await self._read_page(1, unanswered, snapshot)
        self._pages = pages
        self._cycles_since_probe = 0
        page = 2
        while full and (pages is None or page <= pages):
            if not unanswered:
                return False
            remaining = (pages - page + 1) if pages is not None else 1
            if self.mode != "coalesced" and remaining + self._absent >= len(unanswered):
                return False  # reading the rest one by one costs fewer calls than the rest of the list
            # without a TotalCount, one page at a time until a short one
            batch = range(page, page + (min(LIST_CONCURRENCY, remaining) if pages is not None else 1))
            answers = await asyncio.gather(
                *(self._read_page(number, unanswered, snapshot) for number in batch), return_exceptions=True
            )
            read: list[tuple[int | None, bool]] = []
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
                read.append(answer)
            # a short page: runs finished while the list was read, and the list ended sooner
            full = all(page_full for _, page_full in read)
            page = batch.stop
        return True

    async def _read_page(self, page: int, unanswered: set[str], snapshot: Snapshot) -> tuple[int | None, bool]:
        """Read one page, answer the waited runs on it; return the pages ``TotalCount`` makes, and if it was full."""
        body = await self.hook._acall(
            "ListPipelineRuns",
            "ListPipelineRunsRequest",
            project_id=self.project_id,
            status=PipelineRunStatus.RUNNING.value,
            page_number=page,
            page_size=PAGE_SIZE,
        )
        self.stats["list_pages"] += 1
        paging = body.get("PagingInfo") or {}
        rows = paging.get("PipelineRuns") or []
        request_id = body.get("RequestId")
        for row in rows:
            run_id = str(row.get("Id") or "")
            if run_id in unanswered:
                run = PipelineRun.from_api(row, request_id=request_id)
                if not run.is_terminal and not run.stages_known:
                    # a row without Stages decides nothing: the run is read with GetPipelineRun below
                    self.stats["rows_without_stages"] += 1
                    continue
                snapshot.runs[run_id] = self._unchanged(run)
                unanswered.discard(run_id)
        try:
            total: int | None = int(str(paging["TotalCount"]))
        except (KeyError, TypeError, ValueError):
            total = None
        # pages as the server served them: it may answer fewer rows per page than asked for
        served = served_page_size(paging, PAGE_SIZE)
        pages = math.ceil(total / served) if total is not None else None
        return pages, len(rows) >= served and (pages is None or page < pages)

    def _unchanged(self, run: PipelineRun) -> PipelineRun:
        """The last cycle's record of ``run`` when it says the same (all but the read's RequestId), else ``run``.

        Why: a new record per waited run per cycle lives for an interval, long enough for the
        garbage collector to move it to its oldest generation; 10,000 of those a cycle made the
        full collections, which walk every trigger's objects, frequent enough to stall the loop.
        """
        previous = self.latest.runs.get(run.id) if self.latest is not None else None
        if isinstance(previous, PipelineRun) and previous.same_state(run):
            return previous
        return run

    async def _get_each(self, run_ids: list[str], wanted: dict[str, _Waiter], snapshot: Snapshot) -> None:
        """One ``GetPipelineRun`` per run (with its first waiter's hook); an error is that run's answer."""
        queue = list(run_ids)

        async def worker() -> None:
            while queue:
                run_id = queue.pop()
                self.stats["gets"] += 1
                try:
                    run = await wanted[run_id].hook.get_pipeline_run_async(run_id, self.project_id)
                    snapshot.runs[run_id] = self._unchanged(run)
                except Exception as err:  # the waiter's trigger reports it, as it would have before
                    snapshot.runs[run_id] = err

        await asyncio.gather(*(worker() for _ in range(min(GET_CONCURRENCY, len(queue)))))

    async def _wake(self, snapshot: Snapshot) -> None:
        """Resolve the pending reads the snapshot answers, :data:`WAKE_BATCH` triggers per loop step.

        A waiter whose trigger waits on a record this cycle read again (:attr:`_Waiter.known`) is
        not woken: the cycle counts as its read, and its trigger would only decide what it already
        decided. That is what keeps a quiet wait free of per-cycle objects (see :meth:`StatusReads.read`).
        """
        waiting = [w for w in self.waiters.values() if w.pending is not None]
        woken = 0
        for index, waiter in enumerate(waiting, 1):
            if waiter.pending is None or not waiter.takes(snapshot):
                continue  # it left, or it was woken already and asks for a later cycle
            if waiter.known is not None and snapshot.runs.get(waiter.run_id) is waiter.known:
                waiter.took(snapshot, self.cadence)
                self.stats["unchanged_reads"] += 1
            else:
                waiter.wake()
                self.stats["wakes"] += 1
                woken += 1
            if woken >= WAKE_BATCH or index % QUIET_BATCH == 0:
                woken = 0
                await asyncio.sleep(0)


class StatusReads:
    """A trigger's handle on its run's status reads; :meth:`close` it when the trigger ends."""

    __slots__ = ("_waiter", "hook", "poller", "project_id", "run_id")

    def __init__(self, hook: DataWorksHook, run_id: str, project_id: int, poller: StatusPoller | None) -> None:
        self.hook = hook
        self.run_id = run_id
        self.project_id = project_id
        self.poller = poller
        self._waiter: _Waiter | None = None

    async def read(
        self, pause: float = 0.0, *, known: PipelineRun | None = None, recheck_in: float | None = None
    ) -> PipelineRun:
        """The run as of the next read, ``pause`` seconds from now (from the shared poller, or read directly).

        :param pause: seconds the trigger would sleep before reading; a poller cycle that completes
            sooner is not taken (a trigger with a longer interval than the poller's reads at its own).
        :param known: the run the trigger decided to wait on. Cycles that read the same state are
            taken without waking the trigger, which would decide the same again; the read returns
            when the run changes (or its read fails).
        :param recheck_in: seconds after which ``known`` no longer holds (a stage's backoff ends,
            the deadline comes): the read then returns the next cycle's run, changed or not.
        """
        poller, waiter = self.poller, self._waiter
        if poller is None or waiter is None or poller.broken:
            if pause > 0:
                await asyncio.sleep(pause)
            return await self.hook.get_pipeline_run_async(self.run_id, self.project_id)
        now = time.monotonic()
        # A first read takes a snapshot no older than max_age when it asks. Measured from the ask,
        # not from the moment this task runs: waking 10,000 waiters can take longer than max_age,
        # and a late-woken first read must not wait another cycle (it did, every cycle, at N = 10,000).
        oldest = now - max_age(poller.cadence)
        # The trigger no longer sleeps between reads: the read waits for the cycle its interval
        # ends in. One future per wait instead of a sleep's future, timer and context per cycle.
        waiter.not_before = read_due(now, pause, poller.cadence) if pause > 0 else -math.inf
        waiter.known = known
        timer = None
        if known is not None and recheck_in is not None:
            timer = asyncio.get_running_loop().call_later(max(0.0, recheck_in), self._recheck)
        try:
            while True:
                snapshot = poller.latest
                if (
                    snapshot is not None
                    and waiter.takes(snapshot)
                    and (waiter.last_seq >= 0 or snapshot.finished >= oldest)
                ):
                    waiter.took(snapshot, poller.cadence)
                    result = snapshot.runs[self.run_id]
                    if isinstance(result, BaseException):
                        raise result
                    if result is not waiter.known:
                        return result
                    continue
                if poller.broken:
                    return await self.hook.get_pipeline_run_async(self.run_id, self.project_id)
                waiter.pending = asyncio.get_running_loop().create_future()
                try:
                    await waiter.pending
                finally:
                    waiter.pending = None
        finally:
            waiter.known = None
            if timer is not None:
                timer.cancel()

    def _recheck(self) -> None:
        """``known`` no longer holds: the next cycle's run answers the read, changed or not."""
        if self._waiter is not None:
            self._waiter.known = None
            self._waiter.wake()

    def close(self) -> None:
        """Leave the poller (the last waiter to leave stops it). Idempotent."""
        waiter, self._waiter = self._waiter, None
        if waiter is not None and self.poller is not None:
            self.poller.leave(waiter)


_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], StatusPoller]] = (
    weakref.WeakKeyDictionary()
)
_tokens = itertools.count(1)


def _forget(poller: StatusPoller) -> None:
    for pollers in _pollers.values():
        if pollers.get(poller.key) is poller:
            del pollers[poller.key]


def active_pollers() -> list[StatusPoller]:
    """The pollers of the running event loop (for tests and benchmarks)."""
    return list(_pollers.get(asyncio.get_running_loop(), {}).values())


def status_reads(
    hook: DataWorksHook,
    run_id: str,
    project_id: int,
    poll_interval: float,
    first_read_at: float | None = None,
) -> StatusReads:
    """Join the poller of ``hook``'s connection and ``project_id`` on the running loop (starting it if needed).

    :param first_read_at: ``time.time()`` of the trigger's first read (its ``next_poll_at``);
        a new poller's first cycle waits for it. ``None``: now.
    """
    mode = status_reads_mode()
    if mode == "per-run":
        return StatusReads(hook, run_id, project_id, None)
    loop = asyncio.get_running_loop()
    key = (hook.dataworks_conn_id, hook.region, int(project_id))
    pollers = _pollers.setdefault(loop, {})
    poller = pollers.get(key)
    if poller is None:
        poller = pollers[key] = StatusPoller(key, hook, int(project_id), mode)
    now = time.monotonic()
    waiter = _Waiter(next(_tokens), run_id, hook, float(poll_interval), now)
    first = now if first_read_at is None else now + max(0.0, first_read_at - time.time())
    poller.join(waiter, first)
    reads = StatusReads(hook, run_id, project_id, poller)
    reads._waiter = waiter
    return reads
