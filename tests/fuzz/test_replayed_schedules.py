"""Schedules kept by name: each replays the state machine's steps as Hypothesis prints a failing schedule.

A schedule the fuzzer found (a defect, once fixed, or an invariant that had to be made exact) is
pasted here as the steps Hypothesis printed, so the default suite replays it on every run whatever
the profile draws. The same invariants are checked after every step.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from .machine import DeploymentProtocol
from .schedules import BASIC, BASIC_STAGES, NO_CHECKS, OBJECT_ID, STANDARD, STANDARD_STAGES
from .task import Config

BASE = Config(
    deferrable=False,
    project_id=BASIC,
    object_id=OBJECT_ID,
    stages=BASIC_STAGES,
    custom_stages=False,
    fail_at=None,
    approval=(),
    stage_seconds=0.0,
    with_store=True,
    retries=0,
    run_mode=None,
    auto_until=None,
    advance_until=None,
    check_only=False,
    timeout=5.0,
    execution_timeout=None,
    cancel_on_timeout=True,
    cancel_on_kill=True,
    report=False,
    description=None,
)
MODES = [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")]


def to_the_end(machine: DeploymentProtocol) -> None:
    """The triggerer runs the deferred try until it ends, the invariants checked after each slice."""
    while machine.driver.deferred:
        machine.triggerer_runs()
        machine.protocol_holds()


def assert_one_successful_run(machine: DeploymentProtocol) -> None:
    runs = machine.world.runs()
    assert len(runs) == 1 and runs[0]["status"] == "Success"


@pytest.fixture
def machine(fuzz_world, capfd):
    fuzz_world["capture"] = capfd
    state = DeploymentProtocol()
    yield state
    state.teardown()


def test_check_only_without_checks_gives_up_and_only_dataworks_started_the_first_stage(machine):
    """Found by the fuzzer: DataWorks starts a run's first stage itself, whatever its type (here Delete)."""
    config = replace(
        BASE, stages=NO_CHECKS, custom_stages=True, approval=("PROD",), check_only=True, execution_timeout=0.3
    )
    machine.deploy(config=config)
    machine.protocol_holds()
    machine.new_try()
    machine.protocol_holds()

    assert machine.driver is not None
    assert "no Build or Check stage" in str(machine.driver.last.error)


@pytest.mark.parametrize("deferrable", MODES)
def test_a_person_stops_the_run_mid_wait_and_a_retry_that_comes_anyway_creates_nothing(machine, deferrable):
    machine.deploy(config=replace(BASE, deferrable=deferrable, retries=2, stage_seconds=5.0))
    machine.person_mid_call(who="console_abolish", after=4)
    machine.protocol_holds()
    while machine.driver.may_start_try() or machine.driver.deferred:
        if machine.driver.deferred:
            machine.triggerer_runs()
        else:
            machine.new_try()
        machine.protocol_holds()
    machine.retry_anyway()
    machine.protocol_holds()

    assert [len(machine.world.runs())] == [1]
    assert "stopped outside this task" in str(machine.driver.last.error)


@pytest.mark.parametrize("deferrable", MODES)
def test_a_worker_killed_after_the_create_is_retried_onto_the_same_run(machine, deferrable):
    machine.deploy(config=replace(BASE, deferrable=deferrable, retries=1, project_id=STANDARD, stages=STANDARD_STAGES))
    machine.die_after_create(how="worker_lost")
    machine.new_try()
    machine.protocol_holds()
    machine.new_try()
    machine.protocol_holds()
    to_the_end(machine)

    assert_one_successful_run(machine)
    assert machine.driver.last.outcome == "success"


def test_a_triggerer_restart_mid_wait_keeps_waiting_on_the_same_run(machine):
    machine.deploy(config=replace(BASE, deferrable=True, stage_seconds=5.0))
    machine.new_try()
    machine.protocol_holds()
    machine.interrupt_mid_call(how="triggerer_restart", after=2)
    machine.triggerer_runs()
    machine.protocol_holds()
    to_the_end(machine)

    assert_one_successful_run(machine)


@pytest.mark.parametrize("deferrable", MODES)
def test_a_listing_that_says_nothing_on_the_retrys_scan_creates_no_second_run(machine, deferrable):
    """Found by the fuzzer (seed 20261209): a 200 ``{"Success": false}`` listing read as "no run"."""
    machine.deploy(config=replace(BASE, deferrable=deferrable, retries=1, with_store=False))
    machine.die_after_create(how="worker_lost")
    machine.new_try()
    machine.protocol_holds()
    machine.inject_fault(action="ListPipelineRuns", fault=("not_started", None), count=2)
    machine.new_try()
    machine.protocol_holds()
    to_the_end(machine)

    assert_one_successful_run(machine)
    assert machine.driver.last.outcome == "success"
