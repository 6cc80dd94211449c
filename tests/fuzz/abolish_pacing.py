"""The abolish's real-time pauses, shortened for the fuzzer (the one patch of the harness).

``abolish_and_confirm`` pauses 0.5-1 s between refused abolishes and 1 s between confirming
reads, module constants with no parameter; at those pauses a schedule with a refused abolish
takes seconds. Only the pauses change: the number of attempts and reads stays the provider's.
"""

from __future__ import annotations

import pytest

from airflow_provider_dataworks import abolish


def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(abolish, "ABOLISH_BACKOFF", (0.002, 0.004))
    monkeypatch.setattr(abolish, "CONFIRM_PAUSE", 0.002)
