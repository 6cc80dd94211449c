"""The argument rules the operators and the sensor share, and the lookups after an ambiguous create."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_dataworks.arguments import parse_policy, parse_seconds, parse_stage_code
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.progress import StageExecPolicy


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(10, 10.0), (0.5, 0.5), (timedelta(minutes=2), 120.0)],
)
def test_parse_seconds_accepts_numbers_and_timedeltas(value, seconds):
    assert parse_seconds(value, "timeout", allow_none=False) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10", "timeout must be a number of seconds or a timedelta, got '10'."),
        (True, "timeout must be a number of seconds or a timedelta, got True."),
        (None, "timeout must be a number of seconds or a timedelta, got None."),
        (0, "timeout must be greater than 0 seconds, got 0."),
        (timedelta(seconds=-1), "timeout must be greater than 0 seconds"),
    ],
)
def test_parse_seconds_names_the_field(value, message):
    with pytest.raises(ValueError) as raised:
        parse_seconds(value, "timeout", allow_none=False)
    assert str(raised.value).startswith(message)


def test_parse_seconds_none_where_allowed():
    assert parse_seconds(None, "timeout", allow_none=True) is None


@pytest.mark.parametrize(("value", "code"), [(None, None), ("", None), ("  ", None), (" DEV ", "DEV")])
def test_parse_stage_code(value, code):
    assert parse_stage_code(value, "advance_until_stage") == code


def test_parse_stage_code_refuses_a_non_string():
    with pytest.raises(ValueError, match="^advance_until_stage must be a stage code string, got 3.$"):
        parse_stage_code(3, "advance_until_stage")


def test_parse_policy_reports_a_wrong_type_as_value_error():
    with pytest.raises(ValueError, match="retry_policy must be a DataWorksRetryPolicy or a mapping, got list"):
        parse_policy(DataWorksRetryPolicy.coerce, [1, 2])
    with pytest.raises(ValueError, match="unknown keys: tries"):
        parse_policy(DataWorksRetryPolicy.coerce, {"tries": 3})
    assert parse_policy(StageExecPolicy.coerce, None) == StageExecPolicy()
    assert parse_policy(DataWorksRetryPolicy.coerce, {"max_attempts": 2}).max_attempts == 2


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        (DataWorksRetryPolicy(base_delay=1.0, max_delay=60.0), [1.0, 2.0, 4.0, 8.0, 16.0]),
        (DataWorksRetryPolicy(base_delay=1.0, max_delay=5.0), [1.0, 2.0, 4.0, 5.0, 5.0]),  # capped
        (DataWorksRetryPolicy(base_delay=0.0, max_delay=1.0), [0.01, 0.02, 0.04, 0.08, 0.16]),  # never 0
    ],
)
def test_lookup_delays_double_from_base_delay_capped(policy, delays):
    assert policy.lookup_delays(5) == pytest.approx(delays)
