"""The emulator's enforced quota (testing/quota.py): 429 Throttling.User over it, per-second counts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from airflow_provider_dataworks.exceptions import DataWorksThrottlingError
from airflow_provider_dataworks.hooks import budget
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.testing import PROXY_ENV_VARS, DataWorksEmulator
from airflow_provider_dataworks.testing.quota import Quota, kind_of

ONCE = DataWorksRetryPolicy(max_attempts=1)


@pytest.fixture
def unpaced(emu, monkeypatch):
    """A hook whose own budget never waits, so the server's quota is what decides."""
    budget.reset_budgets()
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=10000, read_qps=10_000, write_qps=10_000)
    )
    yield DataWorksHook(retry_policy=ONCE)
    budget.reset_budgets()


def test_reads_and_writes_are_told_apart():
    assert [kind_of(a) for a in ("GetPipelineRun", "ListPipelineRuns", "CreatePipelineRun", "AbolishPipelineRun")] == [
        "read",
        "read",
        "write",
        "write",
    ]


def test_quota_windows_are_whole_seconds_and_counted():
    quota = Quota(read_qps=2, write_qps=1)
    answers = [quota.admit("GetPipelineRun", 10.0 + i * 0.1) for i in range(4)]
    answers += [quota.admit("CreatePipelineRun", 10.5), quota.admit("ExecPipelineRunStage", 10.6)]
    answers.append(quota.admit("GetPipelineRun", 11.0))
    assert answers == [True, True, False, False, True, False, True]
    assert quota.per_second() == [
        {"second": 10, "reads": 2, "writes": 1, "throttled": 3},
        {"second": 11, "reads": 1, "writes": 0, "throttled": 0},
    ]
    assert Quota.retry_after_ms(10.25) == 750
    with pytest.raises(ValueError, match="read_qps"):
        Quota(read_qps=0)


def test_over_the_quota_the_answer_is_429_throttling_user(emu, unpaced):
    run_id = unpaced.create_pipeline_run("8600000000000000002", project_id=10000)
    emu.set_quota(read_qps=2)
    outcomes = []
    hints = []
    for _ in range(6):
        try:
            unpaced.get_pipeline_run(run_id)
            outcomes.append("ok")
        except DataWorksThrottlingError as err:
            outcomes.append(err.code)
            hints.append(err.retry_after)
    # writes have their own (here unlimited) quota
    unpaced.exec_pipeline_run_stage(run_id, "PROD_CHECK")

    counts = emu.quota_counts()
    assert "Throttling.User" in outcomes
    assert all(hint is not None and 0 < hint <= 1.0 for hint in hints)  # x-acs-retry-after: rest of the second
    assert outcomes.count("ok") == sum(s["reads"] for s in counts)
    assert outcomes.count("Throttling.User") == sum(s["throttled"] for s in counts)
    assert max(s["reads"] for s in counts) <= 2
    assert sum(s["writes"] for s in counts) == 2  # the create and the exec

    emu.set_quota(None, None)
    for _ in range(5):
        unpaced.get_pipeline_run(run_id)  # lifted


def test_quota_from_python_and_in_the_info():
    with DataWorksEmulator(read_qps=5, write_qps=2) as emu:
        assert emu._control("info")["quota"] == {"read_qps": 5.0, "write_qps": 2.0}
        assert "read_qps" not in emu.connection_uri()  # the client configures its own budget then


def test_quota_from_the_command_line():
    env = {k: v for k, v in os.environ.items() if k not in PROXY_ENV_VARS}
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_dataworks.testing.emulator", "--read-qps", "5", "--write-qps", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        attached = DataWorksEmulator.attach(url)
        assert (attached.read_qps, attached.write_qps) == (5.0, 2.0)
    finally:
        process.terminate()
        process.wait(10)
