"""The failure-cause rule on a starved machine (found by a fuzz shard beside a full CI run).

The emulator's clock is virtual and the provider's deadlines are real: a schedule with the long
timeout and no fault failed with ``PipelineRunTimeoutError`` because the try really took longer
than its timeout. That is the clock passing the timeout, a cause; a timeout error before the
timeout passed is still a violation.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from airflow_provider_dataworks.exceptions import PipelineRunTimeoutError

from .invariants import Injected, failure_names_its_cause
from .schedules import LONG_TIMEOUT
from .task import Try
from .test_replayed_schedules import BASE


def failed_try(after: float) -> Try:
    attempt = Try(1, 1, outcome="failed", error=PipelineRunTimeoutError("did not finish before the timeout"))
    attempt.failed_after = after
    return attempt


def test_a_long_timeout_that_really_passed_is_a_cause():
    config = replace(BASE, timeout=LONG_TIMEOUT)

    failure_names_its_cause(config, failed_try(LONG_TIMEOUT + 0.4), {}, Injected())


def test_a_long_timeout_error_before_the_timeout_passed_is_a_violation():
    config = replace(BASE, timeout=LONG_TIMEOUT)

    with pytest.raises(AssertionError, match="no such cause was injected"):
        failure_names_its_cause(config, failed_try(LONG_TIMEOUT - 1.0), {}, Injected())
