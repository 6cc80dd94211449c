"""An API quota the emulator enforces when asked, the way DataWorks limits OpenAPI calls.

DataWorks limits calls per account (and its RAM users) per region and second: the Basic
edition 5 QPS for all APIs together, Enterprise 50 read and 20 write QPS. A call over the
limit is answered ``429 Throttling.User`` and not executed. :class:`Quota` reproduces that
with fixed one-second windows: one per kind (reads: ``Get*``/``List*``; writes: everything
else) and one for all calls together (``qps``, the Basic edition's shape), so "no second with
more than 5 calls" is exactly what the server counted. An emulator serves one account: every
client, whatever process or host it runs in, spends the same quota, as on DataWorks.

It also counts, per whole second of the emulator's clock, the reads and writes it admitted
and the calls the quota throttled, so tests and benchmarks can show a client's
budget holding against it (:meth:`Quota.per_second`), and sums them up, with the share of
calls it throttled (:func:`summarize`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

THROTTLING_CODE = "Throttling.User"
THROTTLING_MESSAGE = "Request was denied due to user flow control."
READ = "read"
WRITE = "write"
#: the budget a client connection to an emulator WITHOUT a quota gets (see ``connection_uri``)
UNLIMITED_QPS = 10_000
#: seconds of per-second counts kept (a day)
_HISTORY_SECONDS = 86_400


def kind_of(action: str) -> str:
    """``read`` for ``Get*`` and ``List*`` actions, ``write`` for the rest."""
    return READ if action.startswith(("Get", "List")) else WRITE


def _rate(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    rate = float(value)
    if not rate > 0:
        raise ValueError(f"{name} must be greater than 0 (or null for no limit), got {value!r}")
    return rate


class Quota:
    """Admit or throttle each call; count admitted and throttled calls per second.

    :param read_qps: reads admitted per second (``None``: unlimited).
    :param write_qps: writes admitted per second (``None``: unlimited).
    :param qps: calls of any kind admitted per second (``None``: unlimited).
    """

    def __init__(self, read_qps: float | None = None, write_qps: float | None = None, qps: float | None = None) -> None:
        self.read_qps = _rate(read_qps, "read_qps")
        self.write_qps = _rate(write_qps, "write_qps")
        self.qps = _rate(qps, "qps")
        # second -> [reads, writes, throttled]
        self._seconds: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0, 0])

    def configure(self, payload: Mapping[str, Any]) -> None:
        """Set ``read_qps``, ``write_qps`` and/or ``qps`` from a control payload (null: no limit)."""
        if "read_qps" in payload:
            self.read_qps = _rate(payload["read_qps"], "read_qps")
        if "write_qps" in payload:
            self.write_qps = _rate(payload["write_qps"], "write_qps")
        if "qps" in payload:
            self.qps = _rate(payload["qps"], "qps")

    def admit(self, action: str, now: float) -> bool:
        """Count one call at epoch time ``now``; return False when it is over the quota."""
        second = math.floor(now)
        counts = self._seconds[second]
        kind = kind_of(action)
        index, limit = (0, self.read_qps) if kind == READ else (1, self.write_qps)
        over_kind = limit is not None and counts[index] + 1 > limit
        over_total = self.qps is not None and counts[0] + counts[1] + 1 > self.qps
        if over_kind or over_total:
            counts[2] += 1
            return False
        counts[index] += 1
        if len(self._seconds) > _HISTORY_SECONDS:
            del self._seconds[min(self._seconds)]
        return True

    @staticmethod
    def retry_after_ms(now: float) -> int:
        """Milliseconds until the current window ends (sent as ``x-acs-retry-after``)."""
        return max(1, math.ceil((math.floor(now) + 1 - now) * 1000))

    def per_second(self) -> list[dict[str, int]]:
        """Every second with a call: ``{"second", "reads", "writes", "throttled"}``, oldest first."""
        return [
            {"second": second, "reads": reads, "writes": writes, "throttled": throttled}
            for second, (reads, writes, throttled) in sorted(self._seconds.items())
        ]

    def to_json(self) -> dict[str, Any]:
        """The limits; ``qps`` only when one is set (older clients know the other two only)."""
        limits: dict[str, Any] = {"read_qps": self.read_qps, "write_qps": self.write_qps}
        if self.qps is not None:
            limits["qps"] = self.qps
        return limits

    def clear(self) -> None:
        """Forget the counts (the limits stay)."""
        self._seconds.clear()


def summarize(seconds: list[dict[str, int]], *, skip_first: float = 0.0) -> dict[str, Any]:
    """Sum up per-second counts (:meth:`Quota.per_second`): the calls, the 429s and their share.

    :param seconds: the per-second counts, oldest first.
    :param skip_first: leave the first seconds (after the first second with a call) out of
        the peaks, e.g. a client's start-up; the totals always count every second.

    ``peak_per_second`` counts every call that arrived in a second, throttled or not (what the
    clients offered); ``peak_admitted_per_second`` only those the quota let through.
    """
    admitted = sum(s["reads"] + s["writes"] for s in seconds)
    throttled = sum(s["throttled"] for s in seconds)
    calls = admitted + throttled
    first = seconds[0]["second"] if seconds else 0
    steady = [s for s in seconds if s["second"] >= first + skip_first]
    span = seconds[-1]["second"] - first + 1 if seconds else 0
    return {
        "calls": calls,
        "admitted": admitted,
        "throttled": throttled,
        "throttled_share": throttled / calls if calls else 0.0,
        "peak_per_second": max((s["reads"] + s["writes"] + s["throttled"] for s in steady), default=0),
        "peak_admitted_per_second": max((s["reads"] + s["writes"] for s in steady), default=0),
        "seconds": span,
        "average_per_second": admitted / span if span else 0.0,
    }
