"""The async path over HTTPS: kept-alive connections, not one TLS handshake per call.

The SDK's own ``*_async`` methods open a new TCP connection (and build a new SSL context)
on every call; a triggerer polling through them collapses (see benchmarks/RESULTS.md).
The hook's async methods must reuse connections: these tests count the client sockets
that reached the emulator's port, open or in TIME_WAIT, and fail on a regression.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import psutil
import pytest

from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.testing import DataWorksEmulator

POLLS = 40


def _client_sockets_to(port: int) -> int:
    return sum(1 for c in psutil.net_connections(kind="tcp") if c.raddr and c.raddr.port == port)


@pytest.fixture
def tls_emu():
    with DataWorksEmulator(stage_seconds=0.0, tls=True) as emu:
        yield emu


@pytest.fixture
def run_id(tls_emu, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", tls_emu.connection_uri(project_id=10000))
    return DataWorksHook().create_pipeline_run("8600000000000000002")


def _port(emu) -> int:
    return int(emu.endpoint.rsplit(":", 1)[1])


async def test_async_polls_over_https_reuse_connections(tls_emu, run_id):
    hook = DataWorksHook()
    before = _client_sockets_to(_port(tls_emu))

    runs = await asyncio.gather(*(hook.get_pipeline_run_async(run_id) for _ in range(POLLS)))
    for _ in range(POLLS):
        await hook.get_pipeline_run_async(run_id)

    assert {run.id for run in runs} == {run_id}
    opened = _client_sockets_to(_port(tls_emu)) - before
    # concurrent polls may each need a connection of the pool, sequential ones reuse them
    assert opened <= 16, f"{opened} connections for {2 * POLLS} polls"


async def test_the_sdk_native_async_path_opens_one_connection_per_call(tls_emu, run_id):
    """The control experiment: the socket count above would catch a regression to this path."""
    from alibabacloud_dataworks_public20240518 import models

    client = DataWorksHook().get_conn()
    before = _client_sockets_to(_port(tls_emu))

    for _ in range(10):
        await client.get_pipeline_run_async(models.GetPipelineRunRequest(project_id=10000, id=run_id))

    assert _client_sockets_to(_port(tls_emu)) - before >= 10


def test_https_needs_the_emulator_ca(tls_emu, monkeypatch):
    from airflow_provider_dataworks.exceptions import DataWorksTransportError

    monkeypatch.setenv("AIRFLOW_CONN_NO_CA", tls_emu.connection_uri(project_id=10000, ca=None))

    with pytest.raises(DataWorksTransportError, match="(?i)certificate|ssl"):
        DataWorksHook("no_ca", retry_policy={"max_attempts": 1}).list_pipeline_runs()


def test_importing_operators_sensors_triggers_and_hook_does_not_import_the_sdk():
    script = textwrap.dedent(
        """
        import sys
        import airflow_provider_dataworks.hooks.dataworks
        import airflow_provider_dataworks.operators.pipeline_run
        import airflow_provider_dataworks.sensors.pipeline_run
        import airflow_provider_dataworks.triggers.pipeline_run
        loaded = sorted(m for m in sys.modules if m.startswith(("alibabacloud", "darabonba", "Tea")))
        print(loaded)
        """
    )

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
