"""The provider as a person sees it in the Airflow 3 UI, in a real headless Chromium.

Screenshots go to ``build/e2e-screenshots/``. Airflow's UI is a React app: every check waits for
the element it needs (Playwright's auto-waiting locators and ``expect``), never for a fixed time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from .airflow_stack import ADMIN_USER, AirflowStack
from .browser import ensure_chromium, launch, login
from .example_runs import LINK_NAME, ExampleRuns, console_url

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900, method="signal")]

# Extras the DataWorks connection form must offer (the conn-fields keys; the form names them element_<key>).
DATAWORKS_EXTRAS = ("region", "endpoint", "protocol", "project_id", "security_token", "auth_type", "console_url")
UI_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def page(airflow_stack: AirflowStack, e2e_tmp: Path) -> Iterator[Page]:
    """A signed-in page of a fresh headless Chromium (skips when no browser can be had)."""
    chromium, reason = ensure_chromium(e2e_tmp / "apt-chromium.log")
    if chromium is None:
        pytest.skip(f"no browser for the UI check: {reason}")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        context = launch(playwright, chromium, e2e_tmp / "chromium-profile")
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page = context.new_page()
            login(page, airflow_stack.base_url, ADMIN_USER, airflow_stack.password)
            yield page
        finally:
            context.close()


def test_connection_form_offers_the_dataworks_fields(
    page: Page, airflow_stack: AirflowStack, screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{airflow_stack.base_url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox", name="Connection Type").fill("dataworks")
    option = page.get_by_role("option", name="DataWorks")
    expect(option).to_have_count(1)
    option.click()

    access_key_id = dialog.get_by_label("AccessKey ID", exact=True)
    secret = dialog.get_by_label("AccessKey Secret", exact=True)
    expect(access_key_id).to_be_visible()
    expect(secret).to_be_visible()
    expect(access_key_id).to_have_attribute("name", "login")
    expect(secret).to_have_attribute("name", "password")
    dialog.get_by_label("Connection ID").fill("dataworks_ui_check")
    access_key_id.fill("LTAI-placeholder-id")
    secret.fill("placeholder-secret-value")
    # Masked: a password input, also once a value is typed in.
    expect(secret).to_have_attribute("type", "password")
    page.screenshot(path=str(screenshot_dir / "01-connection-form-standard-fields.png"))

    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    for key in DATAWORKS_EXTRAS:
        expect(dialog.locator(f'[name="element_{key}"]')).to_have_count(1)
    expect(dialog.locator('[name="element_security_token"]')).to_have_attribute("type", "password")
    region = dialog.locator('[name="element_region"]')
    expect(region).to_be_visible()
    region.fill("cn-hangzhou")
    dialog.locator('[name="element_security_token"]').fill("placeholder-sts-token")
    expect(dialog.locator('[name="element_security_token"]')).to_have_attribute("type", "password")
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.screenshot(path=str(screenshot_dir / "02-connection-form-extra-fields.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_deploy_task_shows_the_pipeline_run_link(
    page: Page, airflow_stack: AirflowStack, example_runs: ExampleRuns, screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    dag_id, task_id = "dataworks_release_window", "deploy_workflow"
    run_id = example_runs.passing[dag_id].run_id
    page.goto(f"{airflow_stack.base_url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}")
    page.get_by_role("link", name="Details", exact=True).click()
    link = page.get_by_role("link", name=LINK_NAME)
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", console_url(10000))
    page.screenshot(path=str(screenshot_dir / "03-deploy-task-pipeline-run-link.png"))
