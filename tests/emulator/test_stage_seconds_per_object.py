"""An object may set its own stage duration, and every stage counts how often it was asked to start."""

from __future__ import annotations

import pytest

from airflow_provider_dataworks.testing import DataWorksEmulator
from airflow_provider_dataworks.testing.errors import ApiError
from airflow_provider_dataworks.testing.seed import default_seed
from airflow_provider_dataworks.testing.state import DwObject, EmulatorState

from .test_state import FakeClock, create


def test_object_stage_seconds_override_the_emulator_default() -> None:
    clock = FakeClock()
    state = EmulatorState(default_seed(), stage_seconds=1, clock=clock)
    state.project(10000).add(DwObject.from_json({"id": "42", "name": "slow", "stage_seconds": 20}))
    slow, quick = create(state, "42", run_mode="Auto"), create(state, "8600000000000000003", run_mode="Auto")
    clock.now += 5
    assert [s.status for s in state.get_run(10000, slow).stages] == ["Running", "Init", "Init"]
    assert state.get_run(10000, quick).status == "Success"
    clock.now += 55
    run = state.get_run(10000, slow)
    assert run.status == "Success"
    assert run.modify_time == run.create_time + 60


def test_start_requests_count_refused_second_starts() -> None:
    clock = FakeClock()
    state = EmulatorState(default_seed(), stage_seconds=10, clock=clock)
    run = state.get_run(10000, create(state, "8600000000000000003"))
    assert [s.start_requests for s in run.stages] == [1, 0, 0]  # BUILD_PACKAGE starts by itself
    with pytest.raises(ApiError):
        state.exec_stage(run, "BUILD_PACKAGE")
    clock.now += 10
    state.exec_stage(run, "PROD_CHECK")
    with pytest.raises(ApiError):
        state.exec_stage(run, "PROD_CHECK")
    assert [s.start_requests for s in run.stages] == [2, 2, 0]


def test_negative_stage_seconds_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="stage_seconds"):
        DwObject.from_json({"id": "42", "stage_seconds": -1})


def test_control_api_takes_stage_seconds(dataworks_emulator: DataWorksEmulator) -> None:
    added = dataworks_emulator.add_object(10000, "43", name="n", stage_seconds=7.5)
    assert added["stage_seconds"] == 7.5
    assert dataworks_emulator.get_object(10000, "43")["stage_seconds"] == 7.5
