"""The pace of every wait loop: the pause before the next read and the delay before a trigger's first."""

from __future__ import annotations

import time

import pytest

from airflow_provider_dataworks.pacing import delay_before_first_read, pause_before_next_read

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("poll_interval", "deadline", "pause"),
    [
        (10.0, None, 10.0),  # no deadline: the full interval, always
        (10.0, NOW + 60, 10.0),  # far from the deadline: the full interval
        (10.0, NOW + 2.5, 2.5),  # the last pause ends at the deadline, so the wait reads once more there
        (10.0, NOW, None),  # the deadline is now: no pause, time out
        (10.0, NOW - 1, None),  # the deadline has passed
    ],
)
def test_pause_before_next_read(poll_interval, deadline, pause):
    assert pause_before_next_read(poll_interval, deadline, now=NOW) == pause


@pytest.mark.parametrize(
    ("next_poll_at", "deadline", "delay"),
    [
        (None, None, 0.0),  # a trigger built without next_poll_at reads at once
        (None, NOW + 5, 0.0),
        (NOW + 4, None, 4.0),  # the task read just before deferring: wait one interval
        (NOW + 4, NOW + 60, 4.0),
        (NOW + 4, NOW + 1.5, 1.5),  # never past the deadline: read once at it, then time out
        (NOW - 30, None, 0.0),  # rebuilt after a triggerer restart: the time passed, read at once
        (NOW - 30, NOW - 10, 0.0),
    ],
)
def test_delay_before_first_read(next_poll_at, deadline, delay):
    assert delay_before_first_read(next_poll_at, deadline, now=NOW) == delay


def test_the_clock_is_read_when_now_is_omitted():
    in_a_minute = time.time() + 60
    assert 0 < (pause_before_next_read(600.0, in_a_minute) or 0) <= 60
    assert pause_before_next_read(600.0, time.time() - 1) is None
    assert 0 < delay_before_first_read(in_a_minute, None) <= 60
