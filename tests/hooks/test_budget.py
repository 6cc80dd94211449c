"""The request budget (hooks/budget.py): pacing, sharing, AIMD, and holding against the emulator's quota."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_provider_dataworks.exceptions import DataWorksThrottlingError
from airflow_provider_dataworks.hooks import budget
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.hooks.settings import DEFAULT_READ_QPS, DEFAULT_WRITE_QPS, ConnectionSettings

PATIENT = DataWorksRetryPolicy(max_attempts=8, base_delay=0.05, max_delay=1.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_budgets():
    budget.reset_budgets()
    yield
    budget.reset_budgets()


def test_bucket_spaces_calls_below_the_configured_rate():
    clock = FakeClock()
    bucket = budget.TokenBucket(5, clock=clock)
    delays = [bucket.reserve() for _ in range(6)]
    spacing = 1 / (5 * budget.HEADROOM)
    assert delays == pytest.approx([i * spacing for i in range(6)])
    # so no one-second window ever holds more than 5 starts
    starts = [clock.now + d for d in delays]
    assert max(sum(1 for s in starts if t <= s < t + 1) for t in starts) <= 5


def test_throttling_halves_the_rate_holds_for_the_hint_and_regrows():
    clock = FakeClock()
    bucket = budget.TokenBucket(10, clock=clock)
    bucket.throttled(retry_after=2.0)
    assert bucket.rate == 5
    assert bucket.reserve() == pytest.approx(2.0)  # nothing before the retry-after hint
    bucket.throttled()  # a second 429 within the same second does not halve again
    assert bucket.rate == 5
    clock.now += 3.0  # regrown by 10 % of 10 QPS a second after the hold: 5 + 1 x 3 = 8, then halved
    bucket.throttled()
    assert bucket.rate == pytest.approx(4.0)
    clock.now += 1.0
    bucket.reserve()
    assert bucket.rate == pytest.approx(5.0)
    clock.now += 60
    bucket.reserve()
    assert bucket.rate == 10  # never above the configured rate
    for _ in range(20):  # throttled every second: settles where halving meets the regrowth
        clock.now += 1.0
        bucket.throttled()
    assert 10 * budget.MIN_RATE_FRACTION <= bucket.rate < 1.5


def test_one_budget_per_access_key_and_region_shared_by_connections(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_A", "dataworks://AKID:secret1@/?region=cn-hangzhou&read_qps=8")
    monkeypatch.setenv("AIRFLOW_CONN_B", "dataworks://AKID:secret2@/?region=cn-hangzhou&read_qps=4")
    monkeypatch.setenv("AIRFLOW_CONN_C", "dataworks://AKID:secret1@/?region=cn-shanghai")
    monkeypatch.setenv("AIRFLOW_CONN_D", "dataworks://@/?region=cn-hangzhou&auth_type=ecs_ram_role&role_name=r")
    a, b, c, d = (DataWorksHook(name) for name in ("a", "b", "c", "d"))
    budgets = [hook._budget(hook.get_settings()) for hook in (a, b, c, d)]

    assert budgets[0] is budgets[1]  # same AccessKey and region: one budget, the rate read last
    assert budgets[0].read.qps == 4
    assert budgets[2] is not budgets[0]  # another region
    assert budgets[3] is not budgets[0]  # no AccessKey: its own, per connection
    assert budgets[2].read.qps == DEFAULT_READ_QPS and budgets[2].write.qps == DEFAULT_WRITE_QPS


def test_a_connection_read_later_sets_the_rate_unless_recently_throttled():
    clock = FakeClock()
    bucket = budget.TokenBucket(3, clock=clock)
    bucket.configure(10_000)  # e.g. a test's emulator connection after a default one
    assert (bucket.qps, bucket.rate) == (10_000, 10_000)
    bucket.throttled()
    bucket.configure(5)
    assert (bucket.qps, bucket.rate) == (5, 5)
    bucket.throttled()  # 2.5
    clock.now += 1
    bucket.configure(50)
    assert bucket.qps == 50 and bucket.rate < 50  # regrows from the throttled rate
    clock.now += 11
    bucket.configure(40)
    bucket.configure(60)
    assert bucket.rate == 60


def test_defaults_fit_a_5_qps_edition_and_bad_values_name_the_extra():
    assert DEFAULT_READ_QPS + DEFAULT_WRITE_QPS <= 5
    for value in ("0", "-1", "fast"):
        with pytest.raises(ValueError, match="'read_qps'"):
            ConnectionSettings.from_connection_fields(
                conn_id="x", login="ak", password="sk", extra={"region": "cn-hangzhou", "read_qps": value}
            )


def _quota_seconds(emu):
    return [s for s in emu.quota_counts() if s["reads"] or s["throttled"]]


def test_the_budget_holds_against_the_emulators_enforced_quota(emu, monkeypatch):
    """read_qps=5 against a server enforcing 5 read QPS: no 429, no second above 5, from threads and a loop."""
    emu.set_quota(read_qps=5)
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=10000, read_qps=5))
    run_id = DataWorksHook().create_pipeline_run("8600000000000000002", project_id=10000)
    policy = DataWorksRetryPolicy(max_attempts=1)

    def sync_reads() -> None:
        hook = DataWorksHook(retry_policy=policy)
        for _ in range(4):
            hook.get_pipeline_run(run_id)

    async def async_reads() -> None:
        hook = DataWorksHook(retry_policy=policy)
        await asyncio.gather(*(hook.get_pipeline_run_async(run_id) for _ in range(8)))

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(sync_reads) for _ in range(3)]
        asyncio.run(async_reads())
        for future in futures:
            future.result()  # max_attempts=1: a single 429 would raise here

    seconds = _quota_seconds(emu)
    assert sum(s["reads"] for s in seconds) == 20
    assert sum(s["throttled"] for s in seconds) == 0
    assert max(s["reads"] for s in seconds) <= 5


def test_an_optimistic_budget_backs_off_when_throttled(emu, monkeypatch):
    """read_qps=40 against 5 enforced: 429s shrink the rate; every call still succeeds."""
    emu.set_quota(read_qps=5)
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=10000, read_qps=40))
    run_id = DataWorksHook().create_pipeline_run("8600000000000000002", project_id=10000)
    errors: list[BaseException] = []

    def reads() -> None:
        hook = DataWorksHook(retry_policy=PATIENT)
        for _ in range(5):
            try:
                hook.get_pipeline_run(run_id)
            except DataWorksThrottlingError as err:
                errors.append(err)

    threads = [threading.Thread(target=reads) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    seconds = _quota_seconds(emu)
    throttled = sum(s["throttled"] for s in seconds)
    spent = DataWorksHook()._budget(DataWorksHook().get_settings()).read
    assert errors == []
    assert sum(s["reads"] for s in seconds) == 30
    assert max(s["reads"] for s in seconds) <= 5  # the server's own limit, for the record
    assert spent.throttled_count == throttled >= 1
    assert spent.rate < 40  # multiplicative decrease happened
    assert throttled < 30  # far fewer 429s than calls: the budget slowed down
