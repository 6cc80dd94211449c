"""The request budget: how many DataWorks calls a process may make per second.

DataWorks limits OpenAPI calls per Alibaba Cloud account (and its RAM users) and region: the
Basic edition 5 QPS for all APIs together (Standard and Professional most likely the same),
Enterprise 50 read and 20 write QPS. Calls over the limit are answered ``429 Throttling.*``;
retrying them spends calls (Basic also counts them against its daily cap) and time.

So every call the hook makes first takes a slot from its :class:`RequestBudget`: one per
process and (AccessKey ID, or the connection when it has none; region), with one bucket for
reads (``Get*``/``List*``) and one for writes (everything else), shared by every hook, task
and trigger of the process, threads and event loops alike. A bucket spaces calls
``1 / rate`` apart (no bursts: a burst is what lands several calls in one second of the
server's window), at :data:`HEADROOM` of the configured rate so that network jitter cannot
push one more call into a server-side second.

A throttled answer halves the bucket's rate (at most once a second) and holds it until the
``x-acs-retry-after`` hint, when DataWorks sends one; the rate then grows back by a tenth of
the configured rate each second (additive increase, multiplicative decrease).

One process's budget is not the account's: several triggerers and task processes share one
DataWorks quota. When ``[dataworks] quota_store`` names a Redis, every bucket lives there
(:mod:`.quota_share`), one per account, region and kind for the whole deployment, and the
configured rates are the account's; without it they are each process's. ``[dataworks] account_qps``
replaces the read and the write bucket by one for all calls, the shape of the 5-QPS editions'
quota (``docs/rate-limits.md``).

Hand-written because no library fits: the limiters on PyPI are either asyncio-only or
thread-only, and none shrinks its rate on a server's answer.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from airflow_provider_dataworks.hooks import quota_share

#: fraction of the configured rate actually used (jitter margin against a per-second window)
HEADROOM = 0.9
#: a throttled bucket's rate never drops below this fraction of the configured one
MIN_RATE_FRACTION = 0.05
#: the rate regained per second without throttling, as a fraction of the configured one
RECOVERY_PER_SECOND = 0.1
#: ceiling on an ``x-acs-retry-after`` hint we honour, seconds
MAX_HOLD_SECONDS = 60.0

READ = "read"
WRITE = "write"


def kind_of(action: str) -> str:
    """``read`` for ``Get*``/``List*`` actions, ``write`` for the rest."""
    return READ if action.startswith(("Get", "List")) else WRITE


class TokenBucket:
    """Space calls ``1 / rate`` apart; shrink the rate when throttled, regrow it slowly.

    Thread-safe; callers reserve a start time and sleep until it (``time.sleep`` or
    ``asyncio.sleep``), so no lock is ever held while waiting.

    :param qps: the configured calls per second.
    :param clock: a monotonic clock in seconds.
    """

    def __init__(self, qps: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not qps > 0:
            raise ValueError(f"qps must be greater than 0, got {qps!r}")
        self.qps = float(qps)
        self.rate = self.qps
        self.clock = clock
        self._lock = threading.Lock()
        self._next_free = 0.0
        self._held_until = 0.0
        self._last_decrease = float("-inf")
        self._last_update = clock()
        self.throttled_count = 0

    def configure(self, qps: float) -> None:
        """Take the configured rate of the connection read last (connections sharing a key should agree).

        A lower rate applies at once; a higher one too, unless DataWorks throttled us in the last
        10 s, in which case the rate grows back to it as after any throttling.
        """
        with self._lock:
            qps = float(qps)
            if qps == self.qps:
                return
            if qps < self.qps or self.clock() - self._last_decrease < 10.0:
                self.rate = min(self.rate, qps)
            else:
                self.rate = qps
            self.qps = qps

    def _regrow(self, now: float) -> None:
        if self.rate < self.qps and now > self._held_until:
            self.rate = min(self.qps, self.rate + self.qps * RECOVERY_PER_SECOND * (now - self._last_update))
        self._last_update = now

    def reserve(self) -> float:
        """Take the next slot; return how many seconds to wait before making the call."""
        with self._lock:
            now = self.clock()
            self._regrow(now)
            start = max(now, self._next_free, self._held_until)
            self._next_free = start + 1.0 / (self.rate * HEADROOM)
            return start - now

    async def reserve_async(self) -> float:
        """:meth:`reserve` for an event loop (no I/O here, so the same)."""
        return self.reserve()

    def throttled(self, retry_after: float | None = None) -> None:
        """DataWorks throttled a call: halve the rate (once a second at most), honour the hint."""
        with self._lock:
            now = self.clock()
            self._regrow(now)
            self.throttled_count += 1
            if now - self._last_decrease >= 1.0:
                self.rate = max(self.qps * MIN_RATE_FRACTION, self.rate / 2)
                self._last_decrease = now
            hold = min(retry_after, MAX_HOLD_SECONDS) if retry_after and retry_after > 0 else 1.0 / self.rate
            self._held_until = max(self._held_until, now + hold)
            self._next_free = max(self._next_free, self._held_until)


class Bucket(Protocol):
    """What a budget needs of a bucket: a process's own :class:`TokenBucket` or a shared one."""

    @property
    def qps(self) -> float: ...

    @property
    def rate(self) -> float: ...

    throttled_count: int

    def configure(self, qps: float) -> None: ...

    def reserve(self) -> float: ...

    async def reserve_async(self) -> float: ...

    def throttled(self, retry_after: float | None = None) -> None: ...


#: actions that stop work: they take their slot from the process's own bucket, never from the queue of
#: the shared store, where a stop would wait behind every other deployment's calls (a task marked
#: failed must have its run abolished while the trigger's cleanup still runs)
STOP_ACTIONS = frozenset({"AbolishPipelineRun"})


@dataclass
class RequestBudget:
    """The read and the write bucket of one (identity, region)."""

    read: Bucket
    write: Bucket

    def bucket(self, action: str) -> Bucket:
        chosen = self.read if kind_of(action) == READ else self.write
        if action in STOP_ACTIONS and isinstance(chosen, quota_share.SharedTokenBucket):
            return chosen.local
        return chosen

    def acquire(self, action: str) -> None:
        """Wait (blocking) for a slot for ``action``."""
        delay = self.bucket(action).reserve()
        if delay > 0:
            time.sleep(delay)

    async def acquire_async(self, action: str) -> None:
        """Wait (on the event loop) for a slot for ``action``."""
        delay = await self.bucket(action).reserve_async()
        if delay > 0:
            await asyncio.sleep(delay)

    def throttled(self, action: str, retry_after: float | None = None) -> None:
        self.bucket(action).throttled(retry_after)


_budgets: dict[tuple[str, str], RequestBudget] = {}
_budgets_lock = threading.Lock()
#: the shared store and the all-calls rate, read from the Airflow configuration on first use (None: not yet)
_deployment: tuple[quota_share.QuotaStore | None, float | None] | None = None


def budget_key(access_key_id: str | None, conn_id: str, region: str | None, endpoint: str | None) -> tuple[str, str]:
    """(AccessKey ID, or the connection when there is none; region, or the endpoint when there is none)."""
    identity = f"ak:{access_key_id}" if access_key_id else f"conn:{conn_id}"
    return identity, region or endpoint or ""


def _deployment_settings() -> tuple[quota_share.QuotaStore | None, float | None]:
    global _deployment
    if _deployment is None:
        url = quota_share.configured_store_url()
        _deployment = (quota_share.QuotaStore(url) if url else None, quota_share.configured_account_qps())
    return _deployment


def shared_store() -> quota_share.QuotaStore | None:
    """The store of ``[dataworks] quota_store`` (``None``: unset), read once per process."""
    return _deployment_settings()[0]


def _bucket(key: tuple[str, str], kind: str, qps: float) -> Bucket:
    store = shared_store()
    if store is None:
        return TokenBucket(qps)
    identity, region = key
    return quota_share.SharedTokenBucket(store, quota_share.bucket_key(identity, region, kind), TokenBucket(qps))


def _new_budget(key: tuple[str, str], read_qps: float, write_qps: float) -> RequestBudget:
    account_qps = _deployment_settings()[1]
    if account_qps is not None:
        every_call = _bucket(key, quota_share.ALL, account_qps)
        return RequestBudget(every_call, every_call)
    return RequestBudget(_bucket(key, READ, read_qps), _bucket(key, WRITE, write_qps))


def request_budget(key: tuple[str, str], read_qps: float, write_qps: float) -> RequestBudget:
    """Return the budget for ``key`` (created on first use; later callers share it).

    Its buckets are the deployment's when ``[dataworks] quota_store`` is set, the process's otherwise;
    with ``[dataworks] account_qps`` set, one bucket at that rate serves reads and writes alike.
    """
    with _budgets_lock:
        budget = _budgets.get(key)
        if budget is None:
            budget = _budgets[key] = _new_budget(key, read_qps, write_qps)
        elif budget.read is not budget.write:  # one bucket for all calls keeps [dataworks] account_qps
            budget.read.configure(read_qps)
            budget.write.configure(write_qps)
        return budget


def reset_budgets() -> None:
    """Forget every budget and the store setting (a forked child starts with its own; tests start clean)."""
    global _budgets_lock, _deployment
    _budgets.clear()
    _budgets_lock = threading.Lock()
    _deployment = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=reset_budgets)
