"""The DataWorks connection form in a real headless Chromium, on the installed Airflow's own UI.

Airflow 3.x: the React UI's "Add Connection" dialog (extras named ``element_<field>``).
Airflow 2.11: the FAB form at ``/connection/add`` (extras named ``extra__dataworks__<field>``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from e2e.airflow_stack import ADMIN_USER, AirflowStack
from e2e.browser import ensure_chromium, launch

from airflow_provider_dataworks.connection_form import FIELDS
from compat.versions import AIRFLOW_V_3

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600, method="signal")]

UI_TIMEOUT_MS = 30_000
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "e2e-screenshots"


@pytest.fixture(scope="module")
def page(airflow_stack: AirflowStack, tmp_dir: Path) -> Iterator[Page]:
    chromium, reason = ensure_chromium(tmp_dir / "apt-chromium.log")
    if chromium is None:
        pytest.skip(f"no browser for the UI check: {reason}")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        context = launch(playwright, chromium, tmp_dir / "chromium-profile")
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()


def test_connection_form_shows_every_dataworks_field(page: Page, airflow_stack: AirflowStack) -> None:
    from airflow import __version__
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if AIRFLOW_V_3:
        # not e2e.browser.login: on 3.0 the login page never fires "load", so wait for the DOM only
        page.goto(f"{airflow_stack.base_url}/auth/login", wait_until="domcontentloaded")
        page.get_by_label("Username").fill(ADMIN_USER)
        page.get_by_label("Password").fill(airflow_stack.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url, wait_until="commit")
        page.goto(f"{airflow_stack.base_url}/connections")
        page.get_by_role("button", name="Add Connection").click()
        form = page.get_by_role("dialog")
        form.get_by_role("combobox", name="Connection Type").fill("dataworks")
        option = page.get_by_role("option", name="DataWorks")
        expect(option).to_have_count(1)
        option.click()
        expect(form.get_by_label("AccessKey ID", exact=True)).to_be_visible()
        expect(form.get_by_label("AccessKey Secret", exact=True)).to_be_visible()
        form.get_by_role("button", name="Extra Fields", exact=True).click()
        name = "element_{}"
    else:
        page.goto(f"{airflow_stack.base_url}/login/")
        page.locator("#username").fill(ADMIN_USER)
        page.locator("#password").fill(airflow_stack.password)
        page.locator("input[type=submit]").click()
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(f"{airflow_stack.base_url}/connection/add")
        page.locator("#conn_type").select_option("dataworks")
        form = page.locator("form#model_form")
        expect(page.get_by_text("AccessKey ID", exact=True)).to_be_visible()
        expect(page.get_by_text("AccessKey Secret", exact=True)).to_be_visible()
        name = "extra__dataworks__{}"

    for field in FIELDS:
        if field.choices and AIRFLOW_V_3:  # 3.0/3.1 render a choice as a select without a name attribute
            expect(form.get_by_text(field.label, exact=True).first).to_be_visible()
        else:
            expect(form.locator(f'[name="{name.format(field.name)}"]')).to_have_count(1)
    region = form.locator(f'[name="{name.format("region")}"]')
    expect(region).to_be_visible()
    region.fill("cn-hangzhou")
    if not AIRFLOW_V_3:  # FAB masks it; the React UI masks format=password extras only from 3.3
        expect(form.locator(f'[name="{name.format("security_token")}"]')).to_have_attribute("type", "password")
    page.screenshot(path=str(SCREENSHOTS / f"compat-{__version__}-connection-form.png"), full_page=True)
