"""When a wait reads next: the one rule every wait loop of this provider paces its reads by.

The hook's blocking waits and the triggers' async waits (pipeline runs and Data Quality
evaluations alike) read, then pause ``poll_interval`` seconds, but never past their deadline: the
last pause is cut short so the wait reads once more at the deadline and then reports the timeout.
A trigger deferred right after the task's own read first waits until ``next_poll_at``. Pure
functions of the clock, so the sync and the async loops share them and only the sleep differs.
"""

from __future__ import annotations

import time


def pause_before_next_read(poll_interval: float, deadline: float | None, *, now: float | None = None) -> float | None:
    """Return the seconds to sleep before the next read, or ``None`` once ``deadline`` has passed.

    :param poll_interval: seconds between two reads.
    :param deadline: absolute ``time.time()`` after which the wait gives up; ``None``: no limit.
    :param now: the current ``time.time()`` (read from the clock when omitted).
    """
    if deadline is None:
        return poll_interval
    remaining = deadline - (time.time() if now is None else now)
    if remaining <= 0:
        return None
    return min(poll_interval, remaining)


def delay_before_first_read(next_poll_at: float | None, deadline: float | None, *, now: float | None = None) -> float:
    """Return the seconds to sleep before a trigger's first read: until ``next_poll_at``, never past ``deadline``.

    :param next_poll_at: absolute ``time.time()`` of the first read; ``None`` or a time passed: at once (0).
    :param deadline: absolute ``time.time()`` after which the wait gives up; ``None``: no limit.
    :param now: the current ``time.time()`` (read from the clock when omitted).
    """
    if next_poll_at is None:
        return 0.0
    first_read = next_poll_at if deadline is None else min(next_poll_at, deadline)
    return max(0.0, first_read - (time.time() if now is None else now))
