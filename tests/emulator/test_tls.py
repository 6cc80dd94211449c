"""HTTPS mode: the SDK trusts the emulator only through ``Config(ca=emu.ca_path)``."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from darabonba.exceptions import UnretryableException

from airflow_provider_dataworks.testing import DataWorksEmulator

from .helpers import Sdk, make_client


@pytest.fixture(scope="module")
def tls_emu() -> Iterator[DataWorksEmulator]:
    with DataWorksEmulator(tls=True) as emulator:
        yield emulator


def test_tls_endpoint_exposes_a_ca_bundle(tls_emu: DataWorksEmulator) -> None:
    assert tls_emu.protocol == "https"
    assert tls_emu.ca_path is not None
    context = ssl.create_default_context(cafile=tls_emu.ca_path)
    host, port = tls_emu.endpoint.rsplit(":", 1)
    import socket

    for server_name in ("127.0.0.1", "localhost"):
        with socket.create_connection((host, int(port))) as raw, context.wrap_socket(raw, server_hostname=server_name):
            pass


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_sdk_with_ca_succeeds(tls_emu: DataWorksEmulator, use_async: bool) -> None:
    sdk = Sdk(make_client(tls_emu, ca=tls_emu.ca_path), use_async)
    assert sdk.get(sdk.create()).status in ("Init", "Running", "Success")


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_sdk_without_ca_fails_verification(use_async: bool) -> None:
    # A fresh emulator: the sync SDK keeps verified keep-alive connections per host:port, which
    # would let a client without ``ca`` ride on a connection another client verified.
    with DataWorksEmulator(tls=True) as emulator:
        sdk = Sdk(make_client(emulator), use_async)
        with pytest.raises(UnretryableException) as info:
            sdk.create()
        assert emulator.runs() == []
    assert "CERTIFICATE_VERIFY_FAILED" in repr(info.value.inner_exception) or "certificate" in str(info.value).lower()


def test_cert_dir_is_used_and_kept(tmp_path: Path) -> None:
    with DataWorksEmulator(tls=True, cert_dir=tmp_path) as emulator:
        assert emulator.ca_path == str(tmp_path / "ca.pem")
        assert emulator.connection_uri().endswith("&ca=" + str(tmp_path / "ca.pem").replace("/", "%2F"))
    assert (tmp_path / "ca.pem").exists()
