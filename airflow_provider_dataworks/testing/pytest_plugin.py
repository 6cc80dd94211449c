"""pytest fixtures for the DataWorks emulator (registered through the ``pytest11`` entry point).

This module is imported by every pytest run of anyone who installs the provider, so it imports
nothing heavy at module level: the emulator is imported inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_dataworks.testing.controller import DataWorksEmulator

# Kept in sync with controller.PROXY_ENV_VARS, repeated here so importing the plugin stays cheap.
_PROXY_ENV_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def dataworks_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[DataWorksEmulator]:
    """A fresh in-process DataWorks emulator (stages finish instantly), proxies disabled."""
    from airflow_provider_dataworks.testing.controller import DataWorksEmulator

    for name in _PROXY_ENV_VARS:
        # The SDK sends even loopback calls through a configured proxy.
        monkeypatch.delenv(name, raising=False)
    with DataWorksEmulator(stage_seconds=0.0) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def dataworks_emulator_session() -> Iterator[DataWorksEmulator]:
    """One emulator for the whole session; call ``reset()`` between tests when isolation matters."""
    from airflow_provider_dataworks.testing.controller import DataWorksEmulator

    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in _PROXY_ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        with DataWorksEmulator(stage_seconds=0.0) as emulator:
            yield emulator


# The dag.test() kit for users' DAGs: the dataworks_airflow fixture and the ini options it reads.
pytest_plugins = ["airflow_provider_dataworks.testing.dag_testing"]
