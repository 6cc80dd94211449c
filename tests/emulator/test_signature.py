"""Signature checks, driven by a request signer written here from the published ACS3 spec."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from alibabacloud_dataworks_public20240518 import models
from Tea.exceptions import TeaException

from airflow_provider_dataworks.testing import DataWorksEmulator
from airflow_provider_dataworks.testing.auth import NonceCache

from .helpers import BASIC_PROJECT, NODE, Sdk, make_client

CAPTURED_BODY = b"Description=airflow+deploy&ObjectIds=%5B%225678%22%5D&ProjectId=1234&Type=Online"


def acs3_sign(method: str, query: dict[str, str], headers: dict[str, str], body: bytes, ak: str, secret: str) -> str:
    """Return the Authorization header of a request (ACS3-HMAC-SHA256, every given header signed)."""
    payload_hash = hashlib.sha256(body).hexdigest()
    canonical_query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(query.items()))
    names = sorted(h.lower() for h in headers)
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    canonical_headers = "".join(f"{n}:{lowered[n]}\n" for n in names)
    signed = ";".join(names)
    canonical_request = f"{method}\n/\n{canonical_query}\n{canonical_headers}\n{signed}\n{payload_hash}"
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical_request.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"ACS3-HMAC-SHA256 Credential={ak},SignedHeaders={signed},Signature={signature}"


def captured_headers(emu: DataWorksEmulator, body: bytes, date: datetime | None = None) -> dict[str, str]:
    """The header set the SDK sends with CreatePipelineRun (docs §4.3), signed."""
    headers = {
        "host": emu.endpoint,
        "x-acs-version": "2024-05-18",
        "x-acs-action": "CreatePipelineRun",
        "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
        "x-acs-date": (date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "accept": "application/json",
        "content-type": "application/x-www-form-urlencoded",
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        "x-acs-credentials-provider": "static_ak",
    }
    headers["Authorization"] = acs3_sign("POST", {}, headers, body, emu.access_key_id, emu.access_key_secret)
    return headers


def send(emu: DataWorksEmulator, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
    """POST exactly these headers and body bytes to the emulator."""
    host, port = emu.endpoint.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def emu_1234(emu: DataWorksEmulator) -> DataWorksEmulator:
    emu.add_object(1234, "5678", name="captured_node")
    return emu


def test_captured_request_shape_is_accepted(emu_1234: DataWorksEmulator) -> None:
    status, body = send(emu_1234, captured_headers(emu_1234, CAPTURED_BODY), CAPTURED_BODY)
    assert status == 200, body
    [run] = emu_1234.runs()
    assert (run["id"], run["project_id"], run["object_ids"], run["description"]) == (
        body["Id"],
        1234,
        ["5678"],
        "airflow deploy",
    )


def test_one_changed_body_byte_is_rejected(emu_1234: DataWorksEmulator) -> None:
    headers = captured_headers(emu_1234, CAPTURED_BODY)
    tampered = CAPTURED_BODY.replace(b"1234", b"1235")
    status, body = send(emu_1234, headers, tampered)
    assert (status, body["Code"]) == (400, "ContentSHA256Mismatch")
    assert emu_1234.runs() == []


def test_changed_signed_header_is_rejected(emu_1234: DataWorksEmulator) -> None:
    headers = captured_headers(emu_1234, CAPTURED_BODY)
    headers["x-acs-credentials-provider"] = "default/env"
    status, body = send(emu_1234, headers, CAPTURED_BODY)
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")


def test_reused_nonce_is_rejected(emu_1234: DataWorksEmulator) -> None:
    headers = captured_headers(emu_1234, CAPTURED_BODY)
    assert send(emu_1234, headers, CAPTURED_BODY)[0] == 200
    status, body = send(emu_1234, headers, CAPTURED_BODY)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")
    assert len(emu_1234.runs()) == 1


def test_timestamp_off_by_more_than_15_minutes_is_rejected(emu_1234: DataWorksEmulator) -> None:
    for skew in (timedelta(minutes=-16), timedelta(minutes=16)):
        headers = captured_headers(emu_1234, CAPTURED_BODY, datetime.now(UTC) + skew)
        status, body = send(emu_1234, headers, CAPTURED_BODY)
        assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")
    headers = captured_headers(emu_1234, CAPTURED_BODY, datetime.now(UTC) - timedelta(minutes=14))
    assert send(emu_1234, headers, CAPTURED_BODY)[0] == 200


def test_unsigned_request_is_rejected(emu_1234: DataWorksEmulator) -> None:
    headers = captured_headers(emu_1234, CAPTURED_BODY)
    del headers["Authorization"]
    status, body = send(emu_1234, headers, CAPTURED_BODY)
    assert (status, body["Code"]) == (400, "IncompleteSignature")


@pytest.mark.parametrize("algorithm", [None, "v2"])
@pytest.mark.parametrize("use_async", [False, True])
def test_sts_token_must_match(emu: DataWorksEmulator, algorithm: str | None, use_async: bool) -> None:
    emu.add_credential("STS.emulator", "sts-secret", security_token="token-1", account_id="3000000000000003")
    good = Sdk(
        make_client(
            emu, algorithm, access_key_id="STS.emulator", access_key_secret="sts-secret", security_token="token-1"
        ),
        use_async,
    )
    assert good.get(good.create()).creator == "3000000000000003"
    bad = Sdk(
        make_client(
            emu, algorithm, access_key_id="STS.emulator", access_key_secret="sts-secret", security_token="token-2"
        ),
        use_async,
    )
    with pytest.raises(TeaException) as info:
        bad.create()
    assert (info.value.status_code, info.value.code) == (400, "InvalidSecurityToken.Mismatch")
    missing = Sdk(make_client(emu, algorithm, access_key_id="STS.emulator", access_key_secret="sts-secret"), use_async)
    with pytest.raises(TeaException) as info:
        missing.create()
    assert info.value.code == "MissingSecurityToken"


def test_sdk_v2_request_carries_signature_in_query(emu: DataWorksEmulator) -> None:
    sdk = Sdk(make_client(emu, "v2"), use_async=False)
    run_id = sdk.create(NODE, description="v2 deploy with spaces & symbols ~*'")
    assert sdk.get(run_id).description == "v2 deploy with spaces & symbols ~*'"
    assert emu.calls("CreatePipelineRun")[-1]["status"] == 200
    assert models.GetPipelineRunRequest(project_id=BASIC_PROJECT, id=run_id)


def test_nonce_cache_stays_bounded() -> None:
    cache = NonceCache(window_seconds=60, max_entries=100)
    for i in range(10_000):
        assert cache.check_and_add(f"n{i}", now=1000.0 + i * 0.001)
    assert len(cache) <= 100
    assert not cache.check_and_add("n9999", now=1010.0)
    assert cache.check_and_add("n9999", now=1100.0)  # outside the window it is forgotten
