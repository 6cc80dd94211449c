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
"""

from __future__ import annotations

from collections.abc import Mapping
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

    :param count: how many calls it hits; ``0`` or less means every call until cleared.
    :param status: HTTP status of ``http_error`` (default 429).
    :param code: error code of ``http_error`` (default: the usual one for ``status``).
    :param message: error message of ``http_error`` (default: the usual one for ``status``).
    :param retry_after_ms: value of the ``x-acs-retry-after`` header of ``http_error``.
    :param seconds: how long ``delay`` waits.
    """

    action: str = "*"
    kind: str = HTTP_ERROR
    count: int = 1
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after_ms: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}, not {self.kind!r}")
        if self.kind == DELAY and self.seconds is None:
            raise ValueError("a delay fault needs seconds")

    def matches(self, action: str) -> bool:
        """Tell whether this fault applies to a call of ``action``."""
        return self.action in ("*", action)

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

    def add(self, fault: Fault) -> None:
        """Queue ``fault``."""
        self._faults.append(fault)

    def clear(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()

    def pending(self) -> list[Fault]:
        """Return the faults still waiting."""
        return list(self._faults)

    def take(self, action: str) -> Fault | None:
        """Return the fault that applies to this call of ``action``, using one of its hits."""
        if not self._faults:
            return None
        for fault in self._faults:
            if fault.matches(action):
                if fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                return fault
        return None
