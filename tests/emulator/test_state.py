"""Stage progress is derived from the clock when a run is read, never by background work."""

from __future__ import annotations

from airflow_provider_dataworks.testing.auth import Credential
from airflow_provider_dataworks.testing.seed import default_seed
from airflow_provider_dataworks.testing.state import EmulatorState


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def create(state: EmulatorState, object_id: str, **kwargs: object) -> str:
    project = state.project(10000)
    run = state.create_run(
        project=project,
        obj=project.objects[object_id],
        object_ids=[object_id],
        run_type=str(kwargs.get("run_type", "Online")),
        description="",
        run_mode=str(kwargs.get("run_mode", "Normal")),
        auto_run_until=kwargs.get("until"),  # type: ignore[arg-type]
        creator=Credential("a", "b").account_id,
        access_key_id="a",
        request_id="r",
        action="CreatePipelineRun",
    )
    return run.id


def test_transitions_happen_at_their_time() -> None:
    clock = FakeClock()
    state = EmulatorState(default_seed(), stage_seconds=10, clock=clock)
    run_id = create(state, "8600000000000000002", run_mode="Auto")
    run = state.get_run(10000, run_id)
    assert [s.status for s in run.stages] == ["Running", "Init", "Init"]
    clock.now += 25
    run = state.get_run(10000, run_id)
    assert [s.status for s in run.stages] == ["Success", "Success", "Running"]
    assert run.stages[1].start == run.stages[0].finish == run.create_time + 10
    clock.now += 5
    run = state.get_run(10000, run_id)
    assert run.status == "Success"
    assert run.modify_time == run.create_time + 30


def test_thousands_of_idle_runs_cost_nothing_until_read() -> None:
    clock = FakeClock()
    state = EmulatorState(default_seed(), stage_seconds=1, clock=clock)
    ids = [create(state, "8600000000000000003") for _ in range(5000)]
    clock.now += 2
    assert state.get_run(10000, ids[0]).stages[0].status == "Success"
    # Runs never read stay as created: nothing ran in the background.
    assert state.runs[ids[-1]].stages[0].status == "Running"
