"""The account's budget shared across processes through Redis (hooks/quota_share.py).

Two processes with hooks on one AccessKey and region, against one emulator: with
``[dataworks] quota_store`` set they make no more calls in any second than the budget allows
the account; without it each spends the whole budget. Also: the store's bucket backs off for
every process at once, a Redis that fails sends the processes to their own budgets, and a bad
setting is an error naming the option, without the URL's password.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
import redis

from airflow_provider_dataworks.hooks import budget, quota_share
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.testing import PROXY_ENV_VARS

STORE_ENV = "AIRFLOW__DATAWORKS__QUOTA_STORE"
CALLS_PER_PROCESS = 9

# One process of the test: says it is ready (Airflow imported, connection read), waits for "go",
# then reads the run as fast as its budget lets it, blocking (sync) or on an event loop (async);
# one attempt, so a 429 would raise.
_CLIENT = textwrap.dedent(
    """
    import asyncio, sys
    from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
    from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy

    mode, run_id, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    hook = DataWorksHook(retry_policy=DataWorksRetryPolicy(max_attempts=1))
    hook.get_settings()
    hook.get_conn()
    print("ready", flush=True)
    sys.stdin.readline()
    if mode == "sync":
        for _ in range(calls):
            hook.get_pipeline_run(run_id)
    else:
        async def main():
            await asyncio.gather(*(hook.get_pipeline_run_async(run_id) for _ in range(calls)))
        asyncio.run(main())
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away Redis on a free loopback port."""
    executable = shutil.which("redis-server")
    # make unit installs it (scripts/install_e2e_prod_services.sh): a missing server is a broken setup, not a skip
    assert executable is not None, "redis-server is not installed: run scripts/install_e2e_prod_services.sh"
    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    argv = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*argv, "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def store(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``[dataworks] quota_store`` set to the throw-away Redis, emptied first."""
    redis.Redis.from_url(redis_url).flushdb()
    monkeypatch.setenv(STORE_ENV, redis_url)
    budget.reset_budgets()
    yield redis_url
    budget.reset_budgets()


def _run_two_processes(emu, env: dict[str, str], run_id: str) -> None:
    """A sync and an async process, each making CALLS_PER_PROCESS reads, started together."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _CLIENT, mode, run_id, str(CALLS_PER_PROCESS)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("sync", "async")
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            while (line := process.stdout.readline()) and line.strip() != "ready":
                pass  # Airflow's own log lines
            assert line, f"the {process.args[3]} client exited before it was ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            _, stderr = process.communicate(timeout=60)
            assert process.returncode == 0, stderr[-3000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _client_env(emu, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_ENV_VARS and k != STORE_ENV}
    env["AIRFLOW_CONN_DATAWORKS_DEFAULT"] = emu.connection_uri(project_id=10000, read_qps=5, write_qps=5)
    env.update(extra)
    return env


def _reads_per_second(emu) -> list[int]:
    return [s["reads"] for s in emu.quota_counts() if s["reads"]]


@pytest.fixture
def run_id(emu, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=10000))
    created = DataWorksHook().create_pipeline_run("8600000000000000002", project_id=10000)
    return created


def test_two_processes_with_a_shared_budget_of_5_qps_make_at_most_5_calls_a_second(emu, store, run_id):
    _run_two_processes(emu, _client_env(emu, **{STORE_ENV: store}), run_id)

    per_second = _reads_per_second(emu)
    assert sum(per_second) == 2 * CALLS_PER_PROCESS
    assert max(per_second) <= 5, per_second


def test_without_a_store_each_process_spends_the_whole_budget(emu, run_id):
    """The contrast that shows the count above can fail: two processes, 5 QPS each."""
    _run_two_processes(emu, _client_env(emu), run_id)

    per_second = _reads_per_second(emu)
    assert sum(per_second) == 2 * CALLS_PER_PROCESS
    assert max(per_second) > 5, per_second


def test_a_429_slows_the_shared_bucket_for_every_process(store):
    shared = quota_share.QuotaStore(store)
    key = quota_share.bucket_key("ak:AKID", "cn-hangzhou", budget.READ)
    first = quota_share.SharedTokenBucket(shared, key, budget.TokenBucket(5))
    second = quota_share.SharedTokenBucket(shared, key, budget.TokenBucket(5))  # as in another process

    assert first.reserve() == pytest.approx(0.0, abs=0.05)
    first.throttled(retry_after=2.0)

    assert second.reserve() == pytest.approx(2.0, abs=0.1)  # held until the hint, for everyone
    fields = redis.Redis.from_url(store).hgetall(key)
    assert float(fields[b"rate"]) == pytest.approx(2.5)  # halved once for the account
    assert b"AKID" not in key.encode()


def test_an_abolish_does_not_queue_behind_the_accounts_other_calls(store):
    account = budget.request_budget(("ak:AKID-STOP", "cn-hangzhou"), 3, 2)
    for _ in range(20):  # the deployment's writes are booked ten seconds ahead
        account.write.reserve()

    assert account.bucket("ExecPipelineRunStage").reserve() > 5
    # a stop takes its slot from the process's own bucket, at once
    assert account.bucket("AbolishPipelineRun").reserve() == pytest.approx(0.0, abs=0.05)


def test_an_unreachable_store_falls_back_to_the_process_budget(emu, monkeypatch):
    monkeypatch.setenv(STORE_ENV, f"redis://127.0.0.1:{_free_port()}/0")
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=10000))
    budget.reset_budgets()
    try:
        hook = DataWorksHook(retry_policy=DataWorksRetryPolicy(max_attempts=1))
        run_id = hook.create_pipeline_run("8600000000000000002", project_id=10000)
        for _ in range(3):
            assert hook.get_pipeline_run(run_id).id == run_id

        store = budget.shared_store()
        assert store is not None
        assert store.failures == 1  # one failed attempt, then the process's own budget for a while
        assert not store.available
    finally:
        budget.reset_budgets()


@pytest.mark.parametrize(
    ("store_value", "broker"),
    [
        ("http://user:s3cret@cache:6379/0", None),
        ("celery", "amqp://user:s3cret@rabbit:5672//"),
    ],
)
def test_a_store_that_is_not_redis_is_an_error_naming_the_option(monkeypatch, store_value, broker):
    monkeypatch.setenv(STORE_ENV, store_value)
    if broker:
        monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", broker)
    budget.reset_budgets()
    try:
        with pytest.raises(ValueError, match=r"\[dataworks\] quota_store") as raised:
            budget.request_budget(("ak:AKID", "cn-hangzhou"), 3, 2)
        assert "s3cret" not in str(raised.value)
    finally:
        budget.reset_budgets()


def test_celery_names_the_brokers_redis(monkeypatch, redis_url):
    monkeypatch.setenv(STORE_ENV, "celery")
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", redis_url)
    assert quota_share.configured_store_url() == redis_url


def test_the_report_of_the_emulator_counts_the_429s(emu, monkeypatch):
    emu.set_quota(qps=2)
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=10000, read_qps=10_000, write_qps=10_000)
    )
    budget.reset_budgets()
    hook = DataWorksHook(retry_policy=DataWorksRetryPolicy(max_attempts=1))
    outcomes = []
    for _ in range(6):  # within at most two whole seconds: at least 2 over the quota
        try:
            hook.list_pipeline_runs(project_id=10000)
            outcomes.append("ok")
        except Exception as err:
            outcomes.append(type(err).__name__)
    report = emu.quota_report()
    assert report["throttled"] == outcomes.count("DataWorksThrottlingError") >= 1
    assert report["calls"] == 6
    assert report["throttled_share"] == pytest.approx(report["throttled"] / 6)
    assert json.loads(json.dumps(report)) == report
    budget.reset_budgets()


def test_account_qps_gives_reads_and_writes_one_bucket(monkeypatch, store):
    monkeypatch.setenv("AIRFLOW__DATAWORKS__ACCOUNT_QPS", "5")
    budget.reset_budgets()
    spend = budget.request_budget(("ak:AKID", "cn-hangzhou"), 3, 2)

    assert spend.bucket("GetPipelineRun") is spend.bucket("CreatePipelineRun")
    assert spend.read.qps == 5
    assert isinstance(spend.read, quota_share.SharedTokenBucket)
    assert spend.read.key.endswith(":all")
    budget.request_budget(("ak:AKID", "cn-hangzhou"), 40, 20)  # a connection's kind rates do not apply
    assert spend.read.qps == 5


@pytest.mark.parametrize("value", ["0", "-5", "fast"])
def test_a_bad_account_qps_is_an_error_naming_the_option(monkeypatch, value):
    monkeypatch.setenv("AIRFLOW__DATAWORKS__ACCOUNT_QPS", value)
    budget.reset_budgets()
    try:
        with pytest.raises(ValueError, match=r"\[dataworks\] account_qps"):
            budget.request_budget(("ak:AKID", "cn-hangzhou"), 3, 2)
    finally:
        budget.reset_budgets()
