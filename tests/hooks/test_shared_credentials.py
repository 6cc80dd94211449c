"""Role-based connections against the emulator's STS stand-in: one provider per connection, transient STS retried.

The credentials library sends ``AssumeRole`` / ``AssumeRoleWithOIDC`` to the connection's
``sts_endpoint``; pointed at the emulator (``http://127.0.0.1:PORT``), the real library, the real
SDK and the hook run unpatched, and the emulator counts every STS call.
"""

from __future__ import annotations

import asyncio
import threading
import time
from urllib.parse import quote, urlencode

import pytest

from airflow_provider_dataworks.exceptions import (
    DataWorksAuthError,
    DataWorksThrottlingError,
    DataWorksTransportError,
)
from airflow_provider_dataworks.hooks.credentials import REFRESH_MARGIN_SECONDS, forget_providers, shared_provider
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

NODE = "8600000000000000002"
WORKFLOW = "8600000000000000001"
ROLE_ARN = "acs:ram::1379463177660000:role/airflow-deployer"
RETRIES = DataWorksRetryPolicy(max_attempts=5, base_delay=0.02, max_delay=0.1)


@pytest.fixture(autouse=True)
def _fresh_providers():
    forget_providers()
    yield
    forget_providers()


def role_uri(emu, login: str | None = None, password: str | None = None, **extra: str) -> str:
    query = urlencode(
        {
            "endpoint": emu.endpoint,
            "protocol": emu.protocol,
            "region": "cn-hangzhou",
            "project_id": 10000,
            "auth_type": "ram_role_arn",
            "role_arn": ROLE_ARN,
            "sts_endpoint": emu.sts_endpoint,
            # as connection_uri() does: the client's request budget must not stretch these counts over time
            "read_qps": 10_000,
            "write_qps": 10_000,
            **extra,
        }
    )
    login = emu.access_key_id if login is None else login
    password = emu.access_key_secret if password is None else password
    return f"dataworks://{quote(login, safe='')}:{quote(password, safe='')}@/?{query}"


@pytest.fixture
def role_conn(emu, monkeypatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_DEPLOYER", role_uri(emu))
    return "deployer"


def assume_role_calls(emu) -> int:
    return int(emu.sts_state()["calls"]["AssumeRole"])


def test_ram_role_arn_signs_with_the_assumed_role_and_every_hook_shares_one_provider(emu, role_conn):
    first = DataWorksHook(role_conn).create_pipeline_run(NODE)
    second = DataWorksHook(role_conn).create_pipeline_run(WORKFLOW)

    runs = {run["id"]: run for run in emu.runs()}
    assert set(runs) == {first, second}
    assert {run["access_key_id"] for run in runs.values()} == {runs[first]["access_key_id"]}
    assert runs[first]["access_key_id"].startswith("STS.")
    assert assume_role_calls(emu) == 1
    assert emu.sts_state()["issued"] == 1


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429},
        {"status": 503},
        {"kind": "drop"},
    ],
    ids=["throttled", "failing-5xx", "connection-dropped"],
)
def test_transient_sts_failures_are_retried_and_the_create_goes_through_once(emu, role_conn, fault, use_async):
    emu.inject_fault("AssumeRole", count=2, **fault)
    hook = DataWorksHook(role_conn, retry_policy=RETRIES)

    run_id = asyncio.run(hook.create_pipeline_run_async(NODE)) if use_async else hook.create_pipeline_run(NODE)

    assert [run["id"] for run in emu.runs()] == [run_id]
    assert assume_role_calls(emu) == 3  # two failures, then the role was assumed
    assert len(emu.calls("CreatePipelineRun")) == 1  # the create was never sent without credentials
    assert emu.run(run_id)["access_key_id"].startswith("STS.")


def test_sts_throttled_beyond_the_budget_is_a_transient_error_not_an_auth_error(emu, role_conn):
    emu.inject_fault("AssumeRole", count=0, status=429)  # until cleared
    hook = DataWorksHook(role_conn, retry_policy=DataWorksRetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02))

    with pytest.raises(DataWorksThrottlingError) as raised:
        hook.list_pipeline_runs()

    assert not isinstance(raised.value, DataWorksAuthError)
    assert assume_role_calls(emu) == 3
    assert emu.access_key_secret not in str(raised.value)
    # STS recovers: the next call of the same connection works, over the same provider
    emu.clear_faults()
    assert hook.list_pipeline_runs() == []
    assert assume_role_calls(emu) == 4


def test_sts_unreachable_is_a_transport_error_that_says_nothing_was_sent_and_shows_no_token(
    emu, monkeypatch, caplog, capsys
):
    token = "source-sts-token-do-not-log-4711"
    uri = role_uri(emu, login="STS.source", password="source-secret", security_token=token)
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEPLOYER", uri.replace(quote(emu.sts_endpoint, safe=""), quote("http://127.0.0.1:1", safe=""))
    )
    hook = DataWorksHook("deployer", retry_policy=DataWorksRetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02))

    with pytest.raises(DataWorksTransportError) as raised:
        hook.create_pipeline_run(NODE)

    assert raised.value.request_sent is False
    assert "Connection refused" in str(raised.value)
    assert emu.runs() == []
    # the failed STS request's URL carries the signed query; neither the error nor the logs show it
    shown = str(raised.value) + repr(raised.value.__cause__) + caplog.text + "".join(capsys.readouterr())
    assert "SecurityToken=***" in shown
    assert token not in shown and "source-secret" not in shown


def test_a_refused_role_is_permanent_and_not_retried(emu, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DEPLOYER", role_uri(emu, password="not-the-secret"))
    hook = DataWorksHook("deployer", retry_policy=RETRIES)

    with pytest.raises(DataWorksAuthError, match="credentials"):
        hook.create_pipeline_run(NODE)

    assert assume_role_calls(emu) == 1
    assert emu.runs() == []


def test_oidc_role_arn_assumes_the_role_with_the_token_file(emu, monkeypatch, tmp_path):
    token = tmp_path / "oidc-token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.test-token.sig")
    uri = role_uri(
        emu,
        login="",
        password="",
        auth_type="oidc_role_arn",
        oidc_provider_arn="acs:ram::1379463177660000:oidc-provider/ack",
        oidc_token_file_path=str(token),
    )
    monkeypatch.setenv("AIRFLOW_CONN_OIDC", uri)
    emu.inject_fault("AssumeRoleWithOIDC", status=503)

    run_id = DataWorksHook("oidc", retry_policy=RETRIES).create_pipeline_run(NODE)

    assert emu.run(run_id)["access_key_id"].startswith("STS.")
    assert emu.sts_state()["calls"]["AssumeRoleWithOIDC"] == 2


def test_expiring_credentials_are_refreshed_once_for_every_waiter(emu, role_conn):
    # credentials that enter the refresh margin about 2 s after they are issued
    emu.set_sts_lifetime(REFRESH_MARGIN_SECONDS + 2)

    async def reads(count: int) -> None:
        await asyncio.gather(*(DataWorksHook(role_conn).list_pipeline_runs_async() for _ in range(count)))

    asyncio.run(reads(20))
    assert assume_role_calls(emu) == 1  # twenty concurrent first reads, one AssumeRole
    time.sleep(3)
    asyncio.run(reads(20))
    assert assume_role_calls(emu) == 2  # stale: twenty concurrent waiters, one refresh
    assert len(emu.calls("ListPipelineRuns")) == 40


def create_auto_runs(emu, monkeypatch, count: int) -> list[str]:
    """Runs that finish by themselves (Auto mode), created with the emulator's own key."""
    monkeypatch.setenv("AIRFLOW_CONN_CREATOR", emu.connection_uri(project_id=10000))
    creator = DataWorksHook("creator")
    return [creator.create_pipeline_run(NODE, run_mode="Auto", auto_run_until_stage="PROD") for _ in range(count)]


async def first_events(triggers: list[PipelineRunTrigger]) -> list[dict]:
    async def first_event(trigger: PipelineRunTrigger) -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return await asyncio.gather(*(first_event(trigger) for trigger in triggers))


def test_three_hundred_triggers_of_one_role_connection_assume_the_role_at_most_twice(emu, role_conn, monkeypatch):
    emu.set_stage_seconds(0.3)
    run_ids = create_auto_runs(emu, monkeypatch, 300)
    assert assume_role_calls(emu) == 0
    # a restarted triggerer: a fresh process rebuilds every trigger from its kwargs, in one loop
    forget_providers()
    triggers = [
        PipelineRunTrigger(**PipelineRunTrigger(run_id, 10000, "deployer", poll_interval=0.2).serialize()[1])
        for run_id in run_ids
    ]

    events = asyncio.run(first_events(triggers))

    assert [event["status"] for event in events] == ["success"] * 300
    assert {event["pipeline_run_id"] for event in events} == set(run_ids)
    assert assume_role_calls(emu) <= 2
    assert len(emu.runs()) == 300


class ThreadRecorder:
    """Delegates to the library's provider and records the threads that call it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.threads: set[int] = set()

    def get_provider_name(self) -> str:
        return self.inner.get_provider_name()

    def get_credentials(self):
        self.threads.add(threading.get_ident())
        return self.inner.get_credentials()

    async def get_credentials_async(self):  # the library's async path: must never be used
        raise AssertionError("the library's async credential path runs on the event loop")


def test_the_first_fetch_and_refreshes_happen_off_the_event_loop(emu, role_conn):
    emu.set_sts_lifetime(REFRESH_MARGIN_SECONDS + 1)  # stale about a second after issue
    settings = DataWorksHook(role_conn).get_settings()
    provider = shared_provider(settings)
    recorder = provider.inner = ThreadRecorder(provider.inner)

    async def reads() -> int:
        await asyncio.gather(*(DataWorksHook(role_conn).list_pipeline_runs_async() for _ in range(10)))
        return threading.get_ident()

    loop_threads = {asyncio.run(reads())}
    time.sleep(2.2)
    loop_threads.add(asyncio.run(reads()))

    assert assume_role_calls(emu) == 2  # the first fetch and one refresh
    assert recorder.threads and not recorder.threads & loop_threads


def test_three_hundred_triggers_survive_a_throttled_sts_with_one_call_per_retry_round(emu, role_conn, monkeypatch):
    emu.set_stage_seconds(0.2)
    emu.inject_fault("AssumeRole", count=2, status=429)
    run_ids = create_auto_runs(emu, monkeypatch, 300)
    retry = {"max_attempts": 8, "base_delay": 0.5, "max_delay": 2.0}
    triggers = [
        PipelineRunTrigger(run_id, 10000, "deployer", poll_interval=0.2, retry_policy=retry) for run_id in run_ids
    ]

    events = asyncio.run(first_events(triggers))

    assert [event["status"] for event in events] == ["success"] * 300
    assert [call["status"] for call in emu.calls("AssumeRole")] == [429, 429, 200]
