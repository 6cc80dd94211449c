"""The Python and HTTP control API: attach, connection URI, objects, credentials, fixtures."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest
from airflow.models import Connection
from compat.versions import AIRFLOW_V_3_1_PLUS

from airflow_provider_dataworks.testing import DataWorksEmulator, EmulatorControlError

from .helpers import BASIC_PROJECT, NODE, Sdk, make_client


def test_start_is_fast_and_stop_frees_the_port() -> None:
    started = time.monotonic()
    emulator = DataWorksEmulator().start()
    assert time.monotonic() - started < 0.5
    host, port = emulator.endpoint.rsplit(":", 1)
    emulator.stop()
    with socket.socket() as sock:
        sock.bind((host, int(port)))  # free again


def test_fixed_port_can_be_reused_after_stop() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for _ in range(2):
        with DataWorksEmulator(port=port) as emulator:
            assert emulator.endpoint == f"127.0.0.1:{port}"
            Sdk(make_client(emulator), False).create()


def test_connection_uri_round_trips_through_airflow(emu: DataWorksEmulator) -> None:
    with DataWorksEmulator(access_key_id="ak/with:odd@chars", access_key_secret="se+cr=et&/%") as odd:
        connection = Connection(conn_id="dw", uri=odd.connection_uri(project_id=10000, poll_interval=5))
        assert connection.conn_type == "dataworks"
        assert (connection.login, connection.password) == ("ak/with:odd@chars", "se+cr=et&/%")
        assert connection.extra_dejson == {
            "endpoint": odd.endpoint,
            "protocol": "http",
            "region": "cn-hangzhou",
            # Airflow 3.1+ reads numeric query values as numbers, older versions as strings
            "project_id": 10000 if AIRFLOW_V_3_1_PLUS else "10000",
            "poll_interval": 5 if AIRFLOW_V_3_1_PLUS else "5",
            # no quota enforced: the client's request budget is set out of the way
            "read_qps": 10_000 if AIRFLOW_V_3_1_PLUS else "10000",
            "write_qps": 10_000 if AIRFLOW_V_3_1_PLUS else "10000",
        }
    without_project = Connection(conn_id="dw2", uri=emu.connection_uri(project_id=None, region="ap-southeast-1"))
    assert "project_id" not in without_project.extra_dejson
    assert without_project.extra_dejson["region"] == "ap-southeast-1"


def test_attach_drives_an_emulator_over_http(emu: DataWorksEmulator) -> None:
    remote = DataWorksEmulator.attach(emu.url)
    assert (remote.endpoint, remote.protocol, remote.ca_path) == (emu.endpoint, "http", None)
    remote.add_object(30000, "301", name="remote_node", mode="standard")
    sdk = Sdk(make_client(remote), False)
    run_id = sdk.create("301", 30000)
    assert [r["id"] for r in remote.runs(object_id="301")] == [run_id]
    assert len(remote.runs()[0]["stages"]) == 5
    remote.inject_fault(action="GetPipelineRun", status=503)
    assert [f.status for f in emu.pending_faults()] == [503]
    remote.clear_faults()
    remote.set_stage_seconds(2.5)
    assert DataWorksEmulator.attach(emu.url).stage_seconds == 2.5
    assert remote.call_counts() == {"CreatePipelineRun": 1}
    with pytest.raises(EmulatorControlError) as info:
        remote.approve("no-such-run", "PROD")
    assert (info.value.status, info.value.code) == (404, "InvalidPipelineRun.NotFound")
    remote.reset()
    assert emu.runs() == []


def test_http_control_api_shapes(emu: DataWorksEmulator) -> None:
    Sdk(make_client(emu), False).create()

    def get(path: str) -> object:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(emu.url + path) as response:
            return json.loads(response.read())

    runs = get("/_emulator/runs")
    assert isinstance(runs, list)
    assert runs[0]["object"]["name"] == "hourly_metrics"
    assert {"code", "status", "start_time", "finish_time"} <= set(runs[0]["stages"][0])
    calls = get("/_emulator/calls?action=CreatePipelineRun")
    assert isinstance(calls, dict)
    assert calls["calls"][0]["action"] == "CreatePipelineRun"
    assert calls["counts"] == {"CreatePipelineRun": 1}


def test_calls_log_every_api_request(emu: DataWorksEmulator) -> None:
    sdk = Sdk(make_client(emu), False)
    run_id = sdk.create()
    sdk.get(run_id)
    with pytest.raises(Exception, match=r"InvalidPipelineRun\.NotFound"):
        sdk.get("nope")
    assert [(c["action"], c["status"], c["code"]) for c in emu.calls()] == [
        ("CreatePipelineRun", 200, None),
        ("GetPipelineRun", 200, None),
        ("GetPipelineRun", 404, "InvalidPipelineRun.NotFound"),
    ]
    assert len(emu.calls("GetPipelineRun")) == 2


def test_add_object_with_children_and_failure(emu: DataWorksEmulator) -> None:
    emu.add_object(
        BASIC_PROJECT,
        "500",
        name="wf",
        type="WorkflowDefinition",
        children=["501", {"id": "502", "name": "named_child"}],
        fail_at_stage="PROD",
        fail_message="deploy exploded",
    )
    sdk = Sdk(make_client(emu), False)
    run_id = sdk.create("500")
    sdk.exec(run_id, "PROD_CHECK")
    sdk.exec(run_id, "PROD")
    pipeline = sdk.get(run_id)
    assert (pipeline.status, pipeline.stages[2].message) == ("Fail", "deploy exploded")
    assert [c["id"] for c in emu.get_object(BASIC_PROJECT, "500")["children"]] == ["501", "502"]


def test_custom_seed_document() -> None:
    seed = {
        "projects": [{"id": 7, "name": "seven", "mode": "standard", "objects": [{"id": "70", "name": "n70"}]}],
        "credentials": [{"access_key_id": "seed-ak", "access_key_secret": "seed-secret", "projects": [7]}],
    }
    with DataWorksEmulator(seed=seed) as emulator:
        sdk = Sdk(make_client(emulator, access_key_id="seed-ak", access_key_secret="seed-secret"), False)
        assert len(sdk.get(sdk.create("70", 7), 7).stages) == 5
        assert [o["id"] for o in emulator.objects(7)] == ["70"]


def test_plugin_fixture_clears_proxies_and_gives_instant_stages_after_a_short_init(
    monkeypatch: pytest.MonkeyPatch, dataworks_emulator: DataWorksEmulator
) -> None:
    assert dataworks_emulator.stage_seconds == 0.0
    assert 0 < dataworks_emulator.init_seconds <= 0.1
    sdk = Sdk(make_client(dataworks_emulator), False)
    run_id = sdk.create(NODE)
    time.sleep(dataworks_emulator.init_seconds)
    assert sdk.get(run_id).stages[0].status == "Success"


def test_session_fixture_is_shared(dataworks_emulator_session: DataWorksEmulator) -> None:
    dataworks_emulator_session.reset()
    Sdk(make_client(dataworks_emulator_session), False).create()
    assert len(dataworks_emulator_session.runs()) == 1
    dataworks_emulator_session.reset()
