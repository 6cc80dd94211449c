"""Debian's Chromium, driven headless by Playwright, for the UI checks of the end-to-end step.

Playwright's own browser download does not work here, so the system Chromium is used. When
``/usr/bin/chromium`` is missing and we are root with apt-get, it is installed; otherwise the UI
tests are skipped with the reason (never failed for lack of a browser).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
# --disable-background-networking & co: the machine's closed network refuses Chromium's own calls home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure_chromium(log_path: Path) -> tuple[Path | None, str]:
    """Return ``(path, "")`` of a usable Chromium, installing Debian's package if needed and allowed.

    :return: ``(None, reason)`` when no browser is available and none can be installed.
    """
    if CHROMIUM.exists():
        return CHROMIUM, ""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        return None, f"{CHROMIUM} is missing and there is no apt-get to install Debian's chromium"
    if os.geteuid() != 0:
        return None, f"{CHROMIUM} is missing and installing Debian's chromium needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(log_path, "wb") as log:
        for argv in ([apt_get, "update"], [apt_get, "install", "-y", "chromium"]):
            try:
                result = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=600, check=False)
            except subprocess.TimeoutExpired:
                return None, f"`{' '.join(argv)}` timed out (see {log_path})"
            if result.returncode != 0:
                tail = log_path.read_text(errors="replace").splitlines()[-5:]
                return None, f"`{' '.join(argv)}` failed ({result.returncode}): " + " | ".join(tail)
    if not CHROMIUM.exists():
        return None, f"apt-get installed chromium but {CHROMIUM} is still missing"
    return CHROMIUM, ""


def launch(playwright: Playwright, chromium: Path, user_data_dir: Path) -> BrowserContext:
    """Start Chromium with a fresh profile; return the Playwright browser context."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(chromium),
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": 1400, "height": 1000},
        # No proxy for loopback, whatever the environment says.
        proxy=None,
        env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
    )


def login(page: Page, base_url: str, username: str, password: str) -> None:
    """Sign in through the SimpleAuthManager's login form, as a person would."""
    page.goto(f"{base_url}/")
    page.wait_for_url("**/auth/login**")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
