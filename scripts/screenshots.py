"""Take the documentation's screenshots from a real Airflow, in the end-to-end step's headless Chromium.

``make screenshots`` runs this. It starts the DataWorks emulator in this process, a real Airflow 3
(scheduler, dag-processor, triggerer, API server; ``tests/e2e/airflow_stack.py``) on a throw-away
``AIRFLOW_HOME`` whose only DAG is ``example_dags/example_release_window.py``, runs that DAG once
through the REST API, and writes two PNGs under ``docs/img/``:

* ``connection-form.png``: the "Add Connection" dialog with the DataWorks type and its extra fields;
* ``extra-link.png``: the deploy task's details with the "DataWorks Pipeline Run" link.

Nothing here is drawn by hand: rerun it after a UI change and commit the new pictures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from e2e.airflow_stack import ADMIN_USER, AirflowStack  # noqa: E402
from e2e.browser import ensure_chromium, launch, login  # noqa: E402
from e2e.processes import wait_until  # noqa: E402

from airflow_provider_dataworks.testing import DataWorksEmulator  # noqa: E402

DAG_ID = "dataworks_release_window"
TASK_ID = "deploy_workflow"
LINK_NAME = "DataWorks Pipeline Run"
WORKSPACE = 10000
UI_TIMEOUT_MS = 30_000


def run_release_window(stack: AirflowStack) -> str:
    """Trigger the release-window DAG once and wait for it to succeed; return the run id."""
    client = stack.client
    assert client is not None
    client.unpause(DAG_ID)
    run_id = client.trigger(DAG_ID)
    state = wait_until(
        lambda: (state := client.run_states().get((DAG_ID, run_id))) in {"success", "failed"} and state,
        timeout=240,
        interval=1.0,
        what=f"DAG run {run_id} to finish",
        on_tick=stack.check_alive,
    )
    if state != "success":
        raise RuntimeError(f"{DAG_ID} run {run_id} ended {state}; see {stack.log_dir}")
    return run_id


def shoot(stack: AirflowStack, run_id: str, out_dir: Path, work: Path) -> list[Path]:
    """Sign in, take both pictures, and return their paths."""
    from playwright.sync_api import expect, sync_playwright

    chromium, reason = ensure_chromium(work / "apt-chromium.log")
    if chromium is None:
        raise SystemExit(f"no browser for the screenshots: {reason}")
    expect.set_options(timeout=UI_TIMEOUT_MS)
    form_png, link_png = out_dir / "connection-form.png", out_dir / "extra-link.png"
    with sync_playwright() as playwright:
        context = launch(playwright, chromium, work / "chromium-profile")
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page = context.new_page()
            login(page, stack.base_url, ADMIN_USER, stack.password)

            page.goto(f"{stack.base_url}/connections")
            page.get_by_role("button", name="Add Connection").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_role("combobox", name="Connection Type").fill("dataworks")
            option = page.get_by_role("option", name="DataWorks")
            expect(option).to_have_count(1)
            option.click()
            dialog.get_by_label("Connection ID").fill("dataworks_default")
            dialog.get_by_label("AccessKey ID", exact=True).fill("LTAI-your-access-key-id")
            dialog.get_by_label("AccessKey Secret", exact=True).fill("placeholder-secret")
            dialog.get_by_role("button", name="Extra Fields", exact=True).click()
            region = dialog.locator('[name="element_region"]')
            expect(region).to_be_visible()
            region.fill("cn-hangzhou")
            dialog.locator('[name="element_project_id"]').fill(str(WORKSPACE))
            # The dialog scrolls inside the window (an element shot would add its unpainted overflow):
            # a tall window shows the connection type and the first extras.
            page.set_viewport_size({"width": 1200, "height": 1500})
            page.screenshot(path=str(form_png))
            page.set_viewport_size({"width": 1400, "height": 1000})

            page.goto(f"{stack.base_url}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{TASK_ID}")
            page.get_by_role("link", name="Details", exact=True).click()
            link = page.get_by_role("link", name=LINK_NAME)
            expect(link).to_be_visible()
            page.screenshot(path=str(link_png))
        finally:
            context.close()
    return [form_png, link_png]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder for the PNGs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dataworks-screenshots-"))
    dags = work / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "example_dags" / "example_release_window.py", dags)
    try:
        with DataWorksEmulator(stage_seconds=0.5) as emulator:
            stack = AirflowStack(
                home=work / "airflow",
                dags_folder=dags,
                extra_env={
                    "AIRFLOW_CONN_DATAWORKS_DEFAULT": emulator.connection_uri(project_id=WORKSPACE),
                    "DATAWORKS_EXAMPLE_POLL_INTERVAL": "1",
                },
            )
            try:
                stack.start(timeout=240, expected_dag_ids=[DAG_ID])
                run_id = run_release_window(stack)
                written = shoot(stack, run_id, args.out, work)
            finally:
                leftovers = stack.stop()
            if leftovers:
                print("processes that outlived Airflow's stop:", *leftovers, sep="\n  ", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for path in written:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
