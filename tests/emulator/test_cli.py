"""The command line: one endpoint line on stdout, clean exit on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_dataworks.testing import PROXY_ENV_VARS, DataWorksEmulator

from .helpers import Sdk, make_client

LINE = re.compile(r"^DataWorks emulator listening on (https?)://(127\.0\.0\.1:\d+)(?: \(ca=(.+)\))?$")


def start(*args: str) -> tuple[subprocess.Popen[str], re.Match[str]]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_ENV_VARS}
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_dataworks.testing.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline().rstrip("\n")
    match = LINE.match(line)
    assert match, (line, process.stderr.read() if process.stderr and process.poll() is not None else "")
    return process, match


@pytest.fixture
def cli() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_serves_the_sdk_and_stops_on_sigterm(cli: list[subprocess.Popen[str]]) -> None:
    process, match = start("--stage-seconds", "0")
    cli.append(process)
    assert match.group(1) == "http"
    emu = DataWorksEmulator.attach(f"http://{match.group(2)}")
    assert (emu.endpoint, emu.access_key_id, emu.access_key_secret) == (
        match.group(2),
        "dataworks-emulator-ak",
        "dataworks-emulator-secret",
    )
    sdk = Sdk(make_client(emu), use_async=False)
    run_id = sdk.create()
    assert emu.runs()[0]["id"] == run_id
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert out == ""


def test_cli_tls_custom_keys_and_sigint(cli: list[subprocess.Popen[str]], tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text('{"projects": [{"id": 5, "name": "p5", "objects": [{"id": "51", "name": "n"}]}]}')
    process, match = start(
        "--tls", "--cert-dir", str(tmp_path), "--access-key-id", "ak2", "--access-key-secret", "s2", "--seed", str(seed)
    )
    cli.append(process)
    assert match.group(1) == "https"
    assert match.group(3) == str(tmp_path / "ca.pem")
    emu = DataWorksEmulator.attach(f"https://{match.group(2)}", ca_path=match.group(3))
    assert emu.access_key_id == "ak2"
    sdk = Sdk(make_client(emu, ca=emu.ca_path), use_async=False)
    sdk.get(sdk.create("51", 5), 5)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
