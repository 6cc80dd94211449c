"""Failures a test can inject into the next API calls, to see how a client copes.

Kinds:

* ``http_error`` — answer with ``status``/``code``/``message`` (429 ``Throttling.User`` by default),
  optionally with ``x-acs-retry-after: retry_after_ms`` (the SDK then raises ``ThrottlingException``);
* ``delay`` — wait ``seconds``, then answer normally (for read timeouts);
* ``html_502`` — an HTML error page with status 502, as a load balancer sends it;
* ``drop`` — close the connection without an answer; the request is **not** applied;
* ``commit_then_drop`` — apply the request, then close the connection without an answer;
* ``not_started`` — answer 200 ``{"Success": false}`` without applying the request (an
  ``ExecPipelineRunStage`` that did not start the stage).

Which calls: ``action`` is one action name, ``"*"`` (any action), or several names separated by
commas (``"GetPipelineRun,ListPipelineRuns"``: an outage of both status reads); the Python API
also takes them as a tuple, which it joins the same way.

How long: a fault hits the next ``count`` matching calls; ``count`` ≤ 0 means every matching call
until cleared. ``for_seconds`` bounds it in time: from when it is added until ``for_seconds`` have
passed on the emulator's clock, after which it disappears by itself (``count=0, for_seconds=180``
is a three-minute outage). With both, whichever runs out first ends it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

HTTP_ERROR = "http_error"
DELAY = "delay"
HTML_502 = "html_502"
DROP = "drop"
COMMIT_THEN_DROP = "commit_then_drop"
NOT_STARTED = "not_started"
KINDS = (HTTP_ERROR, DELAY, HTML_502, DROP, COMMIT_THEN_DROP, NOT_STARTED)


@dataclass
class Fault:
    """One injected failure, used for the next ``count`` calls of ``action`` (``"*"``: any action).

    :param action: an action name, ``"*"``, or comma-separated names (a tuple of names is joined).
    :param count: how many calls it hits; ``0`` or less means every call until cleared (or expired).
    :param status: HTTP status of ``http_error`` (default 429).
    :param code: error code of ``http_error`` (default: the usual one for ``status``).
    :param message: error message of ``http_error`` (default: the usual one for ``status``).
    :param retry_after_ms: value of the ``x-acs-retry-after`` header of ``http_error``.
    :param seconds: how long ``delay`` waits.
    :param for_seconds: the fault disappears this long after it is added (``None``: never by itself).
    :param expires_at: when it disappears, on the emulator's clock (set when it is added).
    """

    action: str = "*"
    kind: str = HTTP_ERROR
    count: int = 1
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after_ms: int | None = None
    seconds: float | None = None
    for_seconds: float | None = None
    expires_at: float | None = None

    def __post_init__(self) -> None:
        self.action = join_actions(self.action)
        if self.for_seconds is not None and self.for_seconds <= 0:
            raise ValueError(f"for_seconds must be > 0, not {self.for_seconds!r}")
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}, not {self.kind!r}")
        if self.kind == DELAY and self.seconds is None:
            raise ValueError("a delay fault needs seconds")

    @property
    def actions(self) -> tuple[str, ...]:
        """The action names this fault applies to (``("*",)``: any)."""
        return tuple(self.action.split(","))

    def matches(self, action: str) -> bool:
        """Tell whether this fault applies to a call of ``action``."""
        return "*" in self.actions or action in self.actions

    def expired(self, now: float) -> bool:
        """Tell whether the fault's time window is over at ``now``."""
        return self.expires_at is not None and now >= self.expires_at

    def to_json(self) -> dict[str, Any]:
        """Return the control-API form of this fault."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from its control-API form."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if data.get(k) is not None}
        return cls(**known)


class FaultQueue:
    """Pending faults, consumed in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault, now: float) -> None:
        """Queue ``fault``; a ``for_seconds`` window starts at ``now``."""
        if fault.for_seconds is not None:
            fault.expires_at = now + fault.for_seconds
        self._faults.append(fault)

    def clear(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()

    def pending(self, now: float) -> list[Fault]:
        """Return the faults still waiting at ``now``."""
        self._expire(now)
        return list(self._faults)

    def take(self, action: str, now: float) -> Fault | None:
        """Return the fault that applies to this call of ``action`` at ``now``, using one of its hits."""
        if not self._faults:
            return None
        self._expire(now)
        for fault in self._faults:
            if fault.matches(action):
                if fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _expire(self, now: float) -> None:
        if any(f.expired(now) for f in self._faults):
            self._faults = [f for f in self._faults if not f.expired(now)]


def join_actions(action: str | Iterable[str]) -> str:
    """Return ``action`` (a name, comma-separated names, or an iterable of names) as one string.

    :raises ValueError: when no action name is given.
    """
    names = action.split(",") if isinstance(action, str) else list(action)
    cleaned = [str(n).strip() for n in names if str(n).strip()]
    if not cleaned:
        raise ValueError(f"a fault needs an action name or '*', not {action!r}")
    return ",".join(cleaned)
