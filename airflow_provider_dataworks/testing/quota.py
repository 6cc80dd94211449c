"""An API quota the emulator enforces when asked, the way DataWorks limits OpenAPI calls.

DataWorks limits calls per account (and its RAM users) per region and second: the Basic
edition 5 QPS for all APIs together, Enterprise 50 read and 20 write QPS. A call over the
limit is answered ``429 Throttling.User`` and not executed. :class:`Quota` reproduces that
with one fixed one-second window per kind (reads: ``Get*``/``List*``; writes: everything
else), so "no second with more than 5 reads" is exactly what the server counted.

It also counts, per whole second of the emulator's clock, the reads and writes it admitted
and the calls the quota throttled, so tests and benchmarks can show a client's
budget holding against it (:meth:`Quota.per_second`).
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
    """

    def __init__(self, read_qps: float | None = None, write_qps: float | None = None) -> None:
        self.read_qps = _rate(read_qps, "read_qps")
        self.write_qps = _rate(write_qps, "write_qps")
        # second -> [reads, writes, throttled]
        self._seconds: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0, 0])

    def configure(self, payload: Mapping[str, Any]) -> None:
        """Set ``read_qps`` and/or ``write_qps`` from a control payload (null: no limit)."""
        if "read_qps" in payload:
            self.read_qps = _rate(payload["read_qps"], "read_qps")
        if "write_qps" in payload:
            self.write_qps = _rate(payload["write_qps"], "write_qps")

    def admit(self, action: str, now: float) -> bool:
        """Count one call at epoch time ``now``; return False when it is over the quota."""
        second = math.floor(now)
        counts = self._seconds[second]
        kind = kind_of(action)
        index, limit = (0, self.read_qps) if kind == READ else (1, self.write_qps)
        if limit is not None and counts[index] + 1 > limit:
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
        return {"read_qps": self.read_qps, "write_qps": self.write_qps}

    def clear(self) -> None:
        """Forget the counts (the limits stay)."""
        self._seconds.clear()
