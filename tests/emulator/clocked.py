"""An emulator on a clock the test moves: stage times and fault windows without sleeping."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow_provider_dataworks.testing import DataWorksEmulator


class FakeClock:
    """Epoch seconds that move only when the test says so (starts at the real time: signatures check it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def clocked_emulator(**settings: Any) -> Iterator[tuple[DataWorksEmulator, FakeClock]]:
    """Run an emulator on a :class:`FakeClock`; runs start at once (no ``Init`` phase)."""
    clock = FakeClock()
    settings.setdefault("init_seconds", 0.0)
    with DataWorksEmulator(clock=clock, **settings) as emulator:
        yield emulator, clock
