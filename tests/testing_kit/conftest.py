"""Helpers to run a user's project (files, ini, tests) as its own pytest session in a subprocess.

A subprocess is the only faithful way: the kit's work happens when pytest starts and when Airflow
is first imported, and this suite's own session has long since imported Airflow with its own home.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

#: generous: the first run of a session migrates the metadata database
SESSION_TIMEOUT = 240


def unused_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def user_environment() -> dict[str, str]:
    """This process's environment without Airflow's or pytest's settings, as a user's shell has it.

    The proxy variables point at a closed loopback port: if the kit did not clear them, every SDK
    call of the user's tests would fail.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST", "_AIRFLOW"))}
    proxy = f"http://127.0.0.1:{unused_loopback_port()}"
    env.update(HTTP_PROXY=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, https_proxy=proxy)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


RunPytest = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_user_pytest(tmp_path: Path) -> RunPytest:
    """Run ``python -m pytest ARGS`` in ``folder`` (default: ``tmp_path``) as a separate session."""

    def run(
        *args: str,
        folder: Path | None = None,
        python_args: tuple[str, ...] = ("-m", "pytest"),
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *python_args, *args],
            cwd=folder or tmp_path,
            env={**user_environment(), **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=SESSION_TIMEOUT,
            check=False,
        )

    return run
