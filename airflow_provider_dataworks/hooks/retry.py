"""The one retry policy of the provider: which errors are retried, how often, how long to wait.

Only transient errors are retried (throttling, 5xx, transport errors). Waits grow
exponentially with *full jitter* and are capped; a ``x-acs-retry-after`` hint from
DataWorks is honoured. The policy is a frozen dataclass of plain numbers so a trigger can
carry it through ``serialize()``. Retrying itself is tenacity's job, sync and async.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import tenacity

from airflow_provider_dataworks.exceptions import is_transient

log = logging.getLogger(__name__)

#: never wait longer than this, whatever ``x-acs-retry-after`` says
MAX_RETRY_AFTER_SECONDS = 300.0


@dataclass(frozen=True)
class DataWorksRetryPolicy:
    """How transient errors are retried.

    :param max_attempts: attempts per call including the first; also the error budget of a
        wait: a poll that fails this many times in a row ends the wait with the last error.
    :param base_delay: seconds; the cap of the first wait, doubling each attempt.
    :param max_delay: seconds; no single wait exceeds this (except a longer ``retry-after``).
    """

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or isinstance(self.max_attempts, bool):
            raise TypeError(f"retry_policy max_attempts must be an int, got {self.max_attempts!r}.")
        if self.max_attempts < 1:
            raise ValueError(f"retry_policy max_attempts must be at least 1, got {self.max_attempts}.")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry_policy base_delay and max_delay must not be negative.")

    @classmethod
    def coerce(cls, value: DataWorksRetryPolicy | Mapping[str, Any] | None) -> DataWorksRetryPolicy:
        """Accept a policy, a mapping of its fields (as serialised), or ``None`` for the default."""
        if value is None:
            return cls()
        if isinstance(value, DataWorksRetryPolicy):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"max_attempts", "base_delay", "max_delay"}
            if unknown:
                raise ValueError(f"retry_policy has unknown keys: {', '.join(sorted(unknown))}.")
            return cls(**value)
        raise TypeError(f"retry_policy must be a DataWorksRetryPolicy or a mapping, got {type(value).__name__}.")

    def to_dict(self) -> dict[str, Any]:
        """Return the policy as JSON primitives."""
        return asdict(self)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        wait = random.uniform(0, cap)
        if retry_after:
            wait = max(wait, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        return wait

    def for_wait(self, poll_interval: float) -> DataWorksRetryPolicy:
        """This policy for the reads of a wait: no pause longer than about a poll interval.

        A wait rides out an outage read after read until its deadline, so one read need not wait longer
        than the wait would between two reads.
        """
        cap = max(1.0, float(poll_interval))
        return DataWorksRetryPolicy(self.max_attempts, min(self.base_delay, cap), min(self.max_delay, cap))

    def lookup_delays(self, lookups: int) -> list[float]:
        """Seconds to wait before each of ``lookups`` lookups for what an ambiguous create made.

        No jitter (one task looks, nobody to spread from): ``base_delay`` (at least 10 ms), doubling,
        capped at ``max_delay``.
        """
        return [min(self.max_delay, max(self.base_delay, 0.01) * 2**attempt) for attempt in range(lookups)]

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return self.delay(state.attempt_number, getattr(error, "retry_after", None))

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "DataWorks call failed (attempt %d of %d), retrying in %.1f s: %s",
            state.attempt_number,
            self.max_attempts,
            state.upcoming_sleep,
            error,
        )

    def _kwargs(self, retry_if: Callable[[BaseException], bool]) -> dict[str, Any]:
        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts),
            "wait": self._wait,
            "retry": tenacity.retry_if_exception(retry_if),
            "before_sleep": self._log_retry,
            "reraise": True,
        }

    def retrying(self, retry_if: Callable[[BaseException], bool] = is_transient) -> tenacity.Retrying:
        """Return a tenacity controller for blocking code."""
        return tenacity.Retrying(**self._kwargs(retry_if))

    def async_retrying(self, retry_if: Callable[[BaseException], bool] = is_transient) -> tenacity.AsyncRetrying:
        """Return a tenacity controller that sleeps with ``asyncio.sleep`` (safe on the triggerer loop)."""
        return tenacity.AsyncRetrying(**self._kwargs(retry_if))
