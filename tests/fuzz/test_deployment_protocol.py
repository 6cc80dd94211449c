"""Property-based test of the deployment protocol: random schedules of events, the invariants after each step.

See ``docs/fuzzing.md`` for the events, the invariants, the profiles and how to replay a failure.
"""

from __future__ import annotations

import pytest
from hypothesis.stateful import run_state_machine_as_test

from .conftest import fuzz_settings
from .machine import DeploymentProtocol

#: the fuzz profile runs for hours: pytest-timeout's 300 s would cut it (3 s a schedule is far beyond the rate)
SETTINGS = fuzz_settings()


@pytest.mark.timeout(max(300, SETTINGS.max_examples * 3))
def test_the_deployment_protocol_holds_under_any_schedule(fuzz_world, capfd):
    fuzz_world["capture"] = capfd  # the task logs (structlog) go to stdout: checked for secrets too
    run_state_machine_as_test(DeploymentProtocol, settings=SETTINGS)
