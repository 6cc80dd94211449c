"""Every credential mode that can run locally, through the real SDK and the emulator's signature check."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from airflow_provider_dataworks.exceptions import DataWorksAuthError
from airflow_provider_dataworks.hooks.credentials import shared_provider
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook, build_sdk_client
from airflow_provider_dataworks.hooks.settings import ConnectionSettings

# in make compat's version matrix: every credential mode, from a connection each Airflow parses
pytestmark = pytest.mark.version_matrix

NODE = "8600000000000000002"


def _uri(emu, login: str = "", password: str = "", **extra: str) -> str:
    from urllib.parse import quote, urlencode

    query = urlencode(
        {"endpoint": emu.endpoint, "protocol": emu.protocol, "region": "cn-hangzhou", "project_id": 10000, **extra}
    )
    return f"dataworks://{quote(login, safe='')}:{quote(password, safe='')}@/?{query}"


def test_sts_token(emu, monkeypatch):
    emu.add_credential("STS.tmp-ak", "sts-secret-1234", security_token="sts-token-abcdef")
    monkeypatch.setenv(
        "AIRFLOW_CONN_STS", _uri(emu, "STS.tmp-ak", "sts-secret-1234", security_token="sts-token-abcdef")
    )

    hook = DataWorksHook("sts")

    assert hook.get_settings().auth_type == "sts"
    assert hook.create_pipeline_run(NODE)


def test_wrong_sts_token_is_rejected(emu, monkeypatch):
    emu.add_credential("STS.tmp-ak", "sts-secret-1234", security_token="sts-token-abcdef")
    monkeypatch.setenv("AIRFLOW_CONN_STS", _uri(emu, "STS.tmp-ak", "sts-secret-1234", security_token="stale-token"))

    with pytest.raises(DataWorksAuthError):
        DataWorksHook("sts").list_pipeline_runs()


def test_alibaba_cloud_connection_works_unchanged(emu, monkeypatch):
    connection = {
        "conn_type": "alibaba_cloud",
        "extra": {
            "access_key_id": emu.access_key_id,
            "access_key_secret": emu.access_key_secret,
            "region": "cn-hangzhou",
            "endpoint": emu.endpoint,
            "protocol": emu.protocol,
            "auth_type": "AK",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_ALIBABA_CLOUD_DEFAULT", json.dumps(connection))

    hook = DataWorksHook("alibaba_cloud_default")

    assert hook.get_settings().auth_type == "access_key"
    run_id = hook.create_pipeline_run(NODE, project_id=10000)
    assert emu.run(run_id)["access_key_id"] == emu.access_key_id


@pytest.fixture
def credentials_uri(emu) -> Iterator[str]:
    """A loopback stand-in for an ECS/ACK credentials endpoint, serving an STS triple."""
    emu.add_credential("STS.from-uri", "uri-secret-5678", security_token="uri-token-5678")
    expiration = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = json.dumps(
        {
            "Code": "Success",
            "AccessKeyId": "STS.from-uri",
            "AccessKeySecret": "uri-secret-5678",
            "SecurityToken": "uri-token-5678",
            "Expiration": expiration,
        }
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/credentials"
    server.shutdown()
    server.server_close()


def test_credentials_uri(emu, monkeypatch, credentials_uri):
    monkeypatch.setenv(
        "AIRFLOW_CONN_URI_CREDS", _uri(emu, auth_type="credentials_uri", credentials_uri=credentials_uri)
    )

    run_id = DataWorksHook("uri_creds").create_pipeline_run(NODE)

    assert emu.run(run_id)["access_key_id"] == "STS.from-uri"


async def test_credentials_uri_async(emu, monkeypatch, credentials_uri):
    monkeypatch.setenv(
        "AIRFLOW_CONN_URI_CREDS", _uri(emu, auth_type="credentials_uri", credentials_uri=credentials_uri)
    )

    run_id = await DataWorksHook("uri_creds").create_pipeline_run_async(NODE)

    assert emu.run(run_id)["access_key_id"] == "STS.from-uri"


def test_default_chain_reads_alibaba_env_vars(emu, tmp_path):
    """The credentials library reads its env vars at import, so this runs in a fresh interpreter."""
    emu.add_credential("env-chain-ak", "env-chain-secret")
    script = textwrap.dedent(
        """
        from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
        print(DataWorksHook("chain").create_pipeline_run("8600000000000000002"))
        """
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW_CONN_CHAIN": _uri(emu, auth_type="default_chain"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "env-chain-ak",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-chain-secret",
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
        "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
    }

    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    run_id = done.stdout.strip().splitlines()[-1]
    assert emu.run(run_id)["access_key_id"] == "env-chain-ak"


@pytest.mark.parametrize(
    ("extra", "provider"),
    [
        (
            {"auth_type": "ram_role_arn", "role_arn": "acs:ram::1:role/deployer", "external_id": "x-1"},
            "RamRoleArnCredentialsProvider",
        ),
        ({"auth_type": "ecs_ram_role", "role_name": "airflow-worker"}, "EcsRamRoleCredentialsProvider"),
        (
            {
                "auth_type": "oidc_role_arn",
                "role_arn": "acs:ram::1:role/deployer",
                "oidc_provider_arn": "acs:ram::1:oidc-provider/ack",
                "oidc_token_file_path": "/var/run/secrets/tokens/oidc-token",
            },
            "OIDCRoleArnCredentialsProvider",
        ),
    ],
    ids=["ram_role_arn", "ecs_ram_role", "oidc_role_arn"],
)
def test_role_based_modes_configure_the_matching_provider(extra, provider):
    """These modes need Alibaba's STS or ECS metadata service; locally we check the wiring only."""
    settings = ConnectionSettings.from_connection_fields(
        conn_id="roles", login="ak-for-role", password="secret-for-role", extra={"region": "cn-hangzhou", **extra}
    )

    build_sdk_client(settings)

    assert type(shared_provider(settings).inner).__name__ == provider
