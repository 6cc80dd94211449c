"""The load step's per-interval accounting flags per-run reads and passes coalesced ones (no Airflow needed).

Synthetic call logs shaped like the two paths: 100 runs waiting for 10 intervals of 2 s, then 10
finishing. Coalesced: one ``ListPipelineRuns`` per interval and one ``GetPipelineRun`` per finished
run. Per run: one ``GetPipelineRun`` per waiting run and interval.
"""

from __future__ import annotations

from typing import Any

from .load_counts import GET, LIST, Sample, bins, over_bounds, window

INTERVAL = 2.0
WAITING = 100
START = 1_000.0
#: runs 0..9 finish at 15.5 s into the window; the rest keep running
FINISH_AT = START + 15.5


def _runs() -> list[dict[str, Any]]:
    runs = []
    for i in range(WAITING):
        done = i < 10
        stage_end = FINISH_AT * 1000 if done else None
        runs.append(
            {
                "create_time": (START - 30) * 1000,
                "modify_time": (FINISH_AT if done else START) * 1000,
                "status": "Success" if done else "Running",
                "stages": [{"finish_time": stage_end}],
            }
        )
    return runs


def _samples() -> list[Sample]:
    return [Sample(START + t, WAITING if START + t < FINISH_AT + 1 else 90) for t in range(21)]


def _calls(per_run: bool) -> list[dict[str, Any]]:
    calls = []
    for k in range(10):
        at = START + 0.3 + k * INTERVAL * 1.02
        if per_run:
            calls += [{"action": GET, "time": at + i * 0.001} for i in range(WAITING if at < FINISH_AT else 90)]
        else:
            calls.append({"action": LIST, "time": at})
            if k == 8:  # the first cycle after the finishes (at 16.6 s) reads each finished run once
                calls += [{"action": GET, "time": at + 0.01 + i * 0.001} for i in range(10)]
    return calls


def _counted(per_run: bool) -> list[Any]:
    span = window(_samples(), 90)
    assert span == (START, START + 20)
    return bins(_calls(per_run), _runs(), _samples(), start=span[0], end=span[1], interval=INTERVAL)


def test_coalesced_reads_keep_the_rule_in_every_interval() -> None:
    counted = _counted(per_run=False)
    assert len(counted) == 10
    assert [b.lists for b in counted] == [1] * 10
    assert sum(b.gets for b in counted) == 10
    assert over_bounds(counted) == []


def test_per_run_reads_break_the_rule_in_every_interval() -> None:
    counted = _counted(per_run=True)
    problems = over_bounds(counted)
    assert len(problems) == 10, problems
    assert all("GetPipelineRun" in p for p in problems)


def test_each_interval_counts_the_waits_sampled_in_it() -> None:
    samples = [Sample(START, 91), Sample(START + 1, 95), Sample(START + 2.5, 100), Sample(START + 4, 100)]
    counted = bins([], _runs(), samples, start=START, end=START + 4, interval=INTERVAL)
    assert [b.waiting for b in counted] == [95, 100]


def test_a_second_list_page_for_100_waits_is_one_too_many() -> None:
    calls = [{"action": LIST, "time": START + 0.5 + k * 0.1} for k in range(3)]
    counted = bins(calls, _runs(), _samples(), start=START, end=START + 2, interval=INTERVAL)
    assert counted[0].list_bound == 2
    assert over_bounds(counted) == [f"bin at {START:.1f}: 3 ListPipelineRuns > 2 (100 waiting)"]
