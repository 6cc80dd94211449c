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
    port = _port(tls_emu)
    before = _client_sockets_to(port)

    for _ in range(POLLS):
        assert (await hook.get_pipeline_run_async(run_id)).id == run_id
    sequential = _client_sockets_to(port) - before
    runs = await asyncio.gather(*(hook.get_pipeline_run_async(run_id) for _ in range(POLLS)))

    assert {run.id for run in runs} == {run_id}
    assert sequential <= 2, f"{sequential} connections for {POLLS} sequential polls"
    # concurrent polls may each need a pooled connection, but never one per call on top
    total = _client_sockets_to(port) - before
    assert total <= POLLS, f"{total} connections for {2 * POLLS} polls"


async def test_other_sdk_clients_keep_the_sdks_own_transport(tls_emu, run_id):
    """The shared session serves only the hook's calls: a plain SDK client in the same loop is untouched."""
    from alibabacloud_dataworks_public20240518 import models

    hook = DataWorksHook()
    await hook.get_pipeline_run_async(run_id)  # installs the transport
    client = DataWorksHook().get_conn()
    before = _client_sockets_to(_port(tls_emu))

    for _ in range(5):
        await client.get_pipeline_run_async(models.GetPipelineRunRequest(project_id=10000, id=run_id))

    assert _client_sockets_to(_port(tls_emu)) - before >= 5


@pytest.mark.parametrize("transport", ["shared-session", "threads"])
async def test_both_async_transports_give_the_same_answers_and_errors(tls_emu, run_id, monkeypatch, transport):
    from airflow_provider_dataworks.exceptions import DataWorksNotFoundError

    monkeypatch.setenv("AIRFLOW_PROVIDER_DATAWORKS_ASYNC_TRANSPORT", transport)
    hook = DataWorksHook(retry_policy={"max_attempts": 3, "base_delay": 0.01})
    tls_emu.inject_fault(action="GetPipelineRun", kind="drop", count=1)

    run = await hook.get_pipeline_run_async(run_id)

    assert run.id == run_id
    assert hook._shared_transport is (transport == "shared-session")
    with pytest.raises(DataWorksNotFoundError) as err:
        await hook.create_pipeline_run_async("7567482277219412494")
    assert err.value.message.startswith("未找到发布对象")


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


def test_importing_operators_sensors_triggers_and_hook_does_not_import_the_sdk_or_aiohttp():
    script = textwrap.dedent(
        """
        import sys
        import airflow_provider_dataworks.hooks.dataworks
        import airflow_provider_dataworks.operators.pipeline_run
        import airflow_provider_dataworks.sensors.pipeline_run
        import airflow_provider_dataworks.triggers.pipeline_run
        loaded = sorted(m for m in sys.modules if m.startswith(("alibabacloud", "darabonba", "Tea", "aiohttp")))
        print(loaded)
        """
    )

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
