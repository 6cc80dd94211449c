from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy

#: retries fast enough for tests, still exponential with jitter
FAST_RETRIES = DataWorksRetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def emu(dataworks_emulator):
    return dataworks_emulator


@pytest.fixture
def conn(emu, monkeypatch) -> Iterator[str]:
    """Point the default connection at the emulator through an env-var URI, as users do."""
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=10000))
    yield "dataworks_default"


@pytest.fixture
def hook(conn) -> DataWorksHook:
    return DataWorksHook(retry_policy=FAST_RETRIES)
