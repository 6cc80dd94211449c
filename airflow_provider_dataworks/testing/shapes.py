"""Answer shapes a real DataWorks server may use where the emulator's own habits differ.

The SDK models say what a field *may* hold, not what a server fills in. A client must cope with
any of these, so a test can switch them on (``Settings``, the constructor, or at run time with
``set_list_stages``/``set_description_limit``/``set_max_page_size``; ``reset()`` restores the
start-up values):

* ``list_stages``: ``ListPipelineRuns`` rows carry the full ``Stages`` (``"full"``, the default),
  no ``Stages`` key at all (``"missing"``), or ``Stages: []`` (``"empty"``). ``GetPipelineRun``
  always carries them.
* ``description_limit``: the server keeps only the first ``n`` characters of a run's
  ``Description`` (the SDK documents no limit; ``None``: keep it whole).
* ``max_page_size``: ``ListPipelineRuns`` and ``ListPipelineRunItems`` serve at most ``n`` rows a
  page whatever ``PageSize`` asked, and answer ``PagingInfo.PageSize`` = the size used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

FULL = "full"
MISSING = "missing"
EMPTY = "empty"
LIST_STAGES = (FULL, MISSING, EMPTY)
SHAPE_KEYS = ("list_stages", "description_limit", "max_page_size")


def _limit(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be an integer >= 1 or None, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class Shapes:
    """How the emulator shapes some answers (see the module docstring)."""

    list_stages: str = FULL
    description_limit: int | None = None
    max_page_size: int | None = None

    def __post_init__(self) -> None:
        if self.list_stages not in LIST_STAGES:
            raise ValueError(f"list_stages must be one of {LIST_STAGES}, not {self.list_stages!r}")
        _limit("description_limit", self.description_limit)
        _limit("max_page_size", self.max_page_size)

    def updated(self, payload: Mapping[str, Any]) -> Shapes:
        """Return these shapes with the keys ``payload`` names changed (``None`` lifts a limit)."""
        changes: dict[str, Any] = {}
        if "list_stages" in payload:
            changes["list_stages"] = str(payload["list_stages"])
        for name in ("description_limit", "max_page_size"):
            if name in payload:
                changes[name] = _limit(name, payload[name])
        return replace(self, **changes)

    def page_size(self, asked: int) -> int:
        """Return the page size served when ``asked`` rows were asked for."""
        return asked if self.max_page_size is None else min(asked, self.max_page_size)

    def description(self, text: str) -> str:
        """Return the part of a run's description the server keeps."""
        return text if self.description_limit is None else text[: self.description_limit]

    def to_json(self) -> dict[str, Any]:
        """Return the control-API form."""
        return asdict(self)
