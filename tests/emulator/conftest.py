"""Shared fixtures: a running emulator and real Alibaba Cloud SDK clients pointed at it.

The ``dataworks_emulator`` fixture comes from the provider's pytest plugin (entry point
``pytest11``); these fixtures add SDK clients in every flavour the tests cover: sync and
``_async``, ACS3 (default) and V2 signatures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518.client import Client

from airflow_provider_dataworks.testing import PROXY_ENV_VARS, DataWorksEmulator

from .helpers import FLAVOUR_IDS, FLAVOURS, Sdk, make_client


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK routes even loopback calls through HTTP(S)_PROXY.
    for name in PROXY_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emu(dataworks_emulator: DataWorksEmulator) -> DataWorksEmulator:
    """The plugin's function-scoped emulator, under a short name.

    New runs start at once here (no ``Init`` phase), so a test reads each stage transition it
    causes; ``test_init_phase.py`` covers the ``Init`` phase itself.
    """
    dataworks_emulator.set_init_seconds(0.0)
    return dataworks_emulator


@pytest.fixture(params=FLAVOURS, ids=FLAVOUR_IDS)
def sdk(request: pytest.FixtureRequest, emu: DataWorksEmulator) -> Sdk:
    """The SDK in each flavour: sync/async x ACS3/V2."""
    use_async, algorithm = request.param
    return Sdk(make_client(emu, algorithm), use_async)


@pytest.fixture
def sync_sdk(emu: DataWorksEmulator) -> Sdk:
    """The SDK, sync, default (ACS3) signature."""
    return Sdk(make_client(emu), use_async=False)


@pytest.fixture
def client_factory(emu: DataWorksEmulator) -> Callable[..., Client]:
    """Build SDK clients with custom ``Config`` fields."""

    def factory(**config: Any) -> Client:
        return make_client(emu, **config)

    return factory
