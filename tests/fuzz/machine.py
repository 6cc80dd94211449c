"""The deployment protocol as a Hypothesis state machine: events fired in any order, invariants after each.

One schedule = one task instance of ``CreatePipelineRunOperator`` deploying one object of a fresh
emulator. Its rules are the events of issue #27: faults on any action, server shapes, a person's
approval or abolish (between steps or mid-call), a worker killed mid-try then retried, a kill, a
triggerer restart, a clear, the clock passing ``timeout``/``execution_timeout`` (the schedule's
config: a short real timeout), in every run and workspace mode.
"""

from __future__ import annotations

import logging
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from . import invariants
from .schedules import ACTIONS, FAULTS, LATE_ANSWER, configs
from .task import Config, TaskDriver
from .world import FuzzEmulator, Stats

#: the world every schedule of a test run shares (set by the test before running the machine)
WORLD: dict[str, Any] = {}


class LogLines(logging.Handler):
    """Every log message of the process while a schedule runs (checked for secrets)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # a record that cannot format is no secret
            self.lines.append(str(record.msg))


class DeploymentProtocol(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world: FuzzEmulator = WORLD["emulator"]
        self.stats: Stats = WORLD["stats"]
        self.logs: LogLines = WORLD["logs"]
        self.driver: TaskDriver | None = None
        self.injected = invariants.Injected()

    def event(self, kind: str) -> None:
        self.stats.events[kind] += 1

    # --- the schedule's world -------------------------------------------------------------------

    @initialize(config=configs())
    def deploy(self, config: Config) -> None:
        self.world.reset()
        self.logs.lines.clear()
        self.world.object_id = config.object_id
        self.world.emu.add_object(
            config.project_id,
            config.object_id,
            name="fuzzed_object",
            fail_at_stage=config.fail_at,
            fail_message=f"stage {config.fail_at} failed as planned" if config.fail_at else None,
            approval_stages=config.approval,
            stage_seconds=config.stage_seconds,
            stages=[{"code": c, "type": t} for c, t in config.stages] if config.custom_stages else None,
        )
        self.driver = TaskDriver(self.world, config)
        self.world.store = self.driver.ti.state.store
        self.stats.schedules += 1
        if self.stats.schedules % 200 == 0 and "progress" in WORLD:
            WORLD["progress"]()  # a long fuzz run shows its counts while it goes
        self.event("mode:deferrable" if config.deferrable else "mode:sync")
        self.event(f"workspace:{'standard' if config.project_id == 20000 else 'basic'}")
        self.event("store:on" if config.with_store else "store:off")
        run_mode = (
            "check_only"
            if config.check_only
            else "auto"
            if config.run_mode == "Auto"
            else "advance_until_stage"
            if config.advance_until
            else "to_the_end"
        )
        self.event(f"run_mode:{run_mode}")
        if config.fail_at:
            self.event("stage_fails")
        if config.approval:
            self.event("approval_stage")
        if config.custom_stages:
            self.event("custom_stages")
        if config.execution_timeout is not None:
            self.event("execution_timeout_short")
        elif config.timeout < 5:
            self.event("timeout_short")

    # --- events --------------------------------------------------------------------------------------

    @rule(
        action=st.sampled_from((*ACTIONS, "*")),
        fault=st.sampled_from(FAULTS),
        count=st.integers(1, 4),
    )
    def inject_fault(self, action: str, fault: tuple[str, int | None], count: int) -> None:
        kind, status = fault
        if kind == "delay":  # an answer after the connection's read timeout: applied, the answer too late
            count, seconds = 1, LATE_ANSWER
        else:
            seconds = None
        self.world.emu.inject_fault(action, kind=kind, count=count, status=status, seconds=seconds)
        self.injected.faults.append((action, kind, status))
        self.event(f"fault:{kind}{'' if status is None else f'_{status}'}")

    @rule(action=st.sampled_from(("GetPipelineRun,ListPipelineRuns", "*")), seconds=st.integers(2, 20))
    def outage(self, action: str, seconds: int) -> None:
        """A 503 outage for ``seconds`` of the emulator's (virtual) clock."""
        self.world.emu.inject_fault(action, status=503, count=0, for_seconds=float(seconds))
        for name in action.split(","):
            self.injected.faults.append((name, "http_error", 503))
        self.event("fault:outage_503")

    @rule(shape=st.sampled_from(("missing", "empty", "full")))
    def list_rows_shape(self, shape: str) -> None:
        self.world.emu.set_list_stages(shape)
        self.event(f"shape:list_stages_{shape}")

    @rule(limit=st.sampled_from((40, 255)))
    def shorten_descriptions(self, limit: int) -> None:
        self.world.emu.set_description_limit(limit)
        self.event("shape:description_limit")

    @rule(size=st.integers(1, 10))
    def small_pages(self, size: int) -> None:
        self.world.emu.set_max_page_size(size)
        self.event("shape:max_page_size")

    @rule(who=st.sampled_from(("console_abolish", "approve")), after=st.integers(1, 12))
    def person_mid_call(self, who: str, after: int) -> None:
        self.world.arm(who, after)
        self.event(f"person:{who}:armed")

    @rule(who=st.sampled_from(("console_abolish", "approve")))
    def person_now(self, who: str) -> None:
        """A person acts in the console between two steps (no call of the task in flight)."""
        self.world.person_now(who)
        self.event(f"person:{who}:now")
        for fired in self.world.fired:
            self.event(f"fired:{fired.kind}")
        self._after_step()

    @rule(how=st.sampled_from(("worker_lost", "kill", "triggerer_restart")), after=st.integers(1, 15))
    def interrupt_mid_call(self, how: str, after: int) -> None:
        """Armed for the next try segment: the worker dies (or is killed) / the triggerer restarts."""
        self.world.arm(how, after)
        self.event(f"interrupt:{how}:armed")

    @rule(how=st.sampled_from(("worker_lost", "kill")))
    def die_after_create(self, how: str) -> None:
        assert self.driver is not None
        self.driver.kill_after_create = how
        self.event(f"interrupt:{how}_after_create:armed")

    # --- the task -------------------------------------------------------------------------------------

    # Every rule is always enabled and does nothing where Airflow would not do it: which rules may run
    # must not depend on how a try ended (that depends on wall-clock timeouts and where a signal lands),
    # or Hypothesis cannot replay a failing schedule (FlakyStrategyDefinition) and loses the failure.

    @rule()
    def new_try(self) -> None:
        """The next thing Airflow runs: a new try (first of an attempt, or a retry), or the deferred try's trigger."""
        assert self.driver is not None
        if self.driver.deferred:
            self._count_try(self.driver.continue_deferred())
        elif self.driver.may_start_try():
            self._count_try(self.driver.start_try())

    @rule()
    def retry_anyway(self) -> None:
        """A try after a failure without retry (its worker was lost before it recorded the failure)."""
        assert self.driver is not None
        if self.driver.may_retry_anyway():
            self.event("retry_after_a_final_failure")
            self._count_try(self.driver.start_try())

    @rule()
    def triggerer_runs(self) -> None:
        assert self.driver is not None
        if self.driver.deferred:
            self._count_try(self.driver.continue_deferred())

    @rule()
    def kill_deferred(self) -> None:
        assert self.driver is not None
        if self.driver.deferred:
            self.driver.kill_deferred()
            self.event("kill:deferred")

    @rule()
    def clear(self) -> None:
        assert self.driver is not None
        if not self.driver.tries:
            return
        if self.driver.deferred:
            self.event("kill:by_clear")
        self.driver.clear()
        self.event("clear")

    def _count_try(self, attempt: Any) -> None:
        self.event(f"try:{attempt.outcome}")
        if attempt.error is not None:
            self.event(f"error:{type(attempt.error).__name__}")
        for fired in self.world.fired:
            if fired.run_id is not None or fired.detail in ("worker", "trigger"):
                self.event(f"fired:{fired.kind}")
        self._after_step()

    def _after_step(self) -> None:
        assert self.driver is not None
        invariants.person_stops(self.driver, self.world.fired, self.injected)
        self.world.fired.clear()

    # --- invariants -------------------------------------------------------------------------------------

    @invariant()
    def protocol_holds(self) -> None:
        if self.driver is None:
            return
        self.stats.steps += 1
        invariants.person_stops(self.driver, self.world.fired, self.injected)
        self.world.fired.clear()
        self._read_output()
        invariants.check_all(self.driver, self.world.runs(), self.injected, self.logs.lines)
        self.stats.events["log_lines_checked"] += len(self.logs.lines)
        self.logs.lines.clear()

    def _read_output(self) -> None:
        """Add what the task wrote to stdout/stderr (Airflow 3's structlog task logger) to the log lines."""
        capture = WORLD.get("capture")
        if capture is not None:
            out, err = capture.readouterr()
            self.logs.lines.extend(line for line in (out + err).splitlines() if line)

    def teardown(self) -> None:
        driver = self.driver
        if driver is None:
            return
        # every schedule runs the task at least once; a deferred try is left in the triggerer
        if not driver.tries:
            self._count_try(driver.start_try())
            self._read_output()
            invariants.check_all(driver, self.world.runs(), self.injected, self.logs.lines)
