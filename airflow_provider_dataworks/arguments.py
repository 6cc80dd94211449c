"""Check the rendered arguments of the operators and the sensor: one rule per kind of argument.

Every function raises ``ValueError`` naming the field before any remote call, so a task with bad
input fails the same way whichever operator it is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")


def parse_seconds(value: Any, field_name: str, *, allow_none: bool) -> float | None:
    """Return a positive number of seconds or a ``timedelta`` as seconds; ``None`` where ``allow_none``.

    :raises ValueError: another type (``bool`` included), or not greater than 0.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError(f"{field_name} must be a number of seconds or a timedelta, got {value!r}.")
    if seconds <= 0:
        raise ValueError(f"{field_name} must be greater than 0 seconds, got {value!r}.")
    return seconds


def parse_stage_code(value: Any, field_name: str) -> str | None:
    """Return a stage code without surrounding blanks; ``None`` for ``None`` or blank text."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field_name} must be a stage code string, got {value!r}.")
    return value.strip() or None


def parse_policy(coerce: Callable[[Any], T], value: Any) -> T:
    """Return ``coerce(value)`` (a policy's ``coerce``), its ``TypeError`` for a wrong type as ``ValueError``.

    The policies' own ``ValueError`` messages name the field already.
    """
    try:
        return coerce(value)
    except TypeError as err:
        raise ValueError(str(err)) from None
