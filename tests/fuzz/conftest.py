"""Hypothesis profiles and the shared emulator of the protocol fuzzer (``tests/fuzz``).

Profiles, chosen with ``DATAWORKS_FUZZ_PROFILE`` (default ``ci``):

* ``ci`` — what ``pytest -m "not e2e"`` runs: 500 schedules from a fixed seed (``derandomize``), so
  every run of the suite replays the same schedules;
* ``fuzz`` — 20,000 schedules from a random seed (``--hypothesis-seed=N`` replays one run);
  ``DATAWORKS_FUZZ_EXAMPLES`` overrides the count of either profile.

No example database is written into the repository (``database=None``): a failure prints the
schedule as Python steps, which is how it is kept as a named regression test.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from airflow_provider_dataworks.testing import PROXY_ENV_VARS

from . import abolish_pacing
from .machine import WORLD, LogLines
from .schedules import READ_TIMEOUT
from .world import FuzzEmulator, Stats, install_worker_signal

PROFILE_ENV = "DATAWORKS_FUZZ_PROFILE"
EXAMPLES_ENV = "DATAWORKS_FUZZ_EXAMPLES"
STATS_ENV = "DATAWORKS_FUZZ_STATS"

_COMMON = {
    "deadline": None,
    "database": None,
    "stateful_step_count": 8,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    "print_blob": True,
}
settings.register_profile("ci", max_examples=500, derandomize=True, **_COMMON)
settings.register_profile("fuzz", max_examples=20_000, **_COMMON)


def fuzz_settings() -> settings:
    profile = settings.get_profile(os.environ.get(PROFILE_ENV, "ci"))
    examples = os.environ.get(EXAMPLES_ENV)
    return settings(profile, max_examples=int(examples)) if examples else profile


@pytest.fixture(scope="module")
def fuzz_world(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """One emulator for every schedule of the module (reset per schedule), the log and the stats."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in PROXY_ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        world = FuzzEmulator().start()
        # a short read timeout, so a delayed answer is a read timeout in a second, not in the SDK's default
        uri = world.emu.connection_uri(project_id=10000, read_timeout=READ_TIMEOUT)
        monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", uri)
        abolish_pacing.fast(monkeypatch)
        logs = LogLines()
        root = logging.getLogger()
        root.addHandler(logs)
        uninstall = install_worker_signal(world)
        stats = Stats()
        WORLD.update(emulator=world, stats=stats, logs=logs, progress=lambda: _report(stats, quiet=True))
        try:
            yield WORLD
        finally:
            uninstall()
            root.removeHandler(logs)
            world.stop()
            WORLD.clear()
            if request.module.__name__.endswith("test_deployment_protocol"):
                _report(stats)


def _report(stats: Stats, *, quiet: bool = False) -> None:
    summary = {
        "schedules": stats.schedules,
        "steps": stats.steps,
        "schedules_per_second": round(stats.rate(), 2),
        "events": dict(sorted(stats.events.items())),
    }
    path = os.environ.get(STATS_ENV)
    if path:
        Path(path).write_text(json.dumps(summary, indent=1) + "\n")
    if not quiet:
        print(f"\nfuzz: {stats.schedules} schedules, {stats.steps} steps, {summary['schedules_per_second']}/s")
