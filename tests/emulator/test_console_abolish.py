"""A person's abolish in the console: AbolishPipelineRun's effect, without an API call."""

from __future__ import annotations

import pytest
from alibabacloud_dataworks_public20240518 import models

from airflow_provider_dataworks.testing import DataWorksEmulator, EmulatorControlError

from .helpers import BASIC_PROJECT, NODE, Sdk


def test_console_abolish_terminates_the_run_and_its_running_stage(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    emu.set_stage_seconds(30)
    run_id = sync_sdk.create(NODE)

    record = emu.console_abolish(run_id)

    assert (record["status"], record["abolished_by"]) == ("Termination", "console")
    pipeline = sync_sdk.get(run_id)
    assert pipeline.status == "Termination"
    assert [s.status for s in pipeline.stages] == ["Termination", "Init", "Init"]


def test_console_abolish_is_not_an_api_call(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    run_id = sync_sdk.create(NODE)
    emu.console_abolish(run_id)
    assert emu.calls("AbolishPipelineRun") == []
    assert emu.call_counts() == {"CreatePipelineRun": 1}


def test_abolished_by_tells_api_console_and_nobody_apart(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    by_api, by_console, untouched = (sync_sdk.create(NODE) for _ in range(3))
    sync_sdk("abolish_pipeline_run", models.AbolishPipelineRunRequest(project_id=BASIC_PROJECT, id=by_api))
    emu.console_abolish(by_console)
    assert [emu.run(r)["abolished_by"] for r in (by_api, by_console, untouched)] == ["api", "console", None]


def test_console_abolish_of_a_finished_run_is_refused(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    run_id = sync_sdk.create(NODE)
    emu.console_abolish(run_id)
    with pytest.raises(EmulatorControlError) as info:
        emu.console_abolish(run_id)
    assert (info.value.status, info.value.code) == (400, "Invalid.Pipeline.NotRunning")
    assert emu.run(run_id)["abolished_by"] == "console"


def test_console_abolish_over_the_http_control_api(emu: DataWorksEmulator, sync_sdk: Sdk) -> None:
    remote = DataWorksEmulator.attach(emu.url)
    run_id = sync_sdk.create(NODE)
    assert remote.console_abolish(run_id)["abolished_by"] == "console"
    assert sync_sdk.get(run_id).status == "Termination"
    with pytest.raises(EmulatorControlError) as info:
        remote.console_abolish("no-such-run")
    assert (info.value.status, info.value.code) == (404, "InvalidPipelineRun.NotFound")
