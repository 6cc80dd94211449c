"""Fixtures for the operator, sensor and trigger tests (helpers live in :mod:`.support`)."""

from __future__ import annotations

import pytest

from .support import BASIC, TaskInstance


@pytest.fixture
def emu(dataworks_emulator):
    """A fresh emulator per test: stages finish instantly, proxies cleared."""
    return dataworks_emulator


@pytest.fixture
def conn(emu, monkeypatch) -> str:
    """Point ``dataworks_default`` at the emulator through an env-var URI, as users do."""
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=BASIC))
    return "dataworks_default"


@pytest.fixture
def task_instance() -> TaskInstance:
    """A task instance with a working task state store; call ``.context(try_number)`` per try."""
    return TaskInstance()
