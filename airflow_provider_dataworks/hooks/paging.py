"""Paging as the server answered it, for every listing (the hook's and the poller's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def served_page_size(paging: Mapping[str, Any], asked: int) -> int:
    """The page size the server used: ``PagingInfo.PageSize`` as returned, when it is one (a server may
    serve fewer rows per page than asked for); else ``asked``."""
    try:
        served = int(str(paging.get("PageSize")))
    except (TypeError, ValueError):
        return asked
    return served if 0 < served <= asked else asked
