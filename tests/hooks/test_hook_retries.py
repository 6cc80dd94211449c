"""The retry rules, proven with faults injected into the emulator and attempts counted there."""

from __future__ import annotations

import socket
import time

import pytest

from airflow_provider_dataworks.exceptions import (
    DataWorksClientError,
    DataWorksServerError,
    DataWorksThrottlingError,
    DataWorksTransportError,
    PipelineRunAmbiguousCreateError,
)
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy

# in make compat's version matrix: the transient faults of the hook's one retry layer, sync and async
pytestmark = pytest.mark.version_matrix

NODE = "8600000000000000002"


def _attempts(emu, action: str) -> int:
    return len(emu.calls(action))


@pytest.fixture
def run_id(hook):
    return hook.create_pipeline_run(NODE)


@pytest.mark.parametrize(
    ("fault", "expected_attempts"),
    [
        ({"kind": "http_error", "status": 429, "code": "Throttling.User", "count": 3}, 4),
        ({"kind": "http_error", "status": 503, "code": "ServiceUnavailable", "count": 2}, 3),
        ({"kind": "http_error", "status": 500, "code": "InternalError.System", "count": 1}, 2),
        ({"kind": "html_502", "count": 2}, 3),
        ({"kind": "drop", "count": 2}, 3),
    ],
    ids=["429-storm", "503-burst", "500", "html-502", "dropped-connection"],
)
def test_transient_read_errors_are_retried_until_success(hook, emu, run_id, fault, expected_attempts):
    emu.inject_fault(action="GetPipelineRun", **fault)

    run = hook.get_pipeline_run(run_id)

    assert run.id == run_id
    assert _attempts(emu, "GetPipelineRun") == expected_attempts


async def test_async_reads_are_retried_too(hook, emu, run_id):
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=429, code="Throttling.Api", count=2)

    run = await hook.get_pipeline_run_async(run_id)

    assert run.id == run_id
    assert _attempts(emu, "GetPipelineRun") == 3


def test_retry_after_header_is_honoured(hook, emu, run_id):
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=429, code="Throttling.User", retry_after_ms=400)

    started = time.monotonic()
    hook.get_pipeline_run(run_id)

    assert time.monotonic() - started >= 0.4
    assert _attempts(emu, "GetPipelineRun") == 2


def test_client_errors_are_not_retried(hook, emu):
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=400, code="Invalid.Param", count=5)

    with pytest.raises(DataWorksClientError) as err:
        hook.get_pipeline_run("any")

    assert err.value.code == "Invalid.Param"
    assert _attempts(emu, "GetPipelineRun") == 1


def test_error_budget_exhausted_raises_the_last_error(hook, emu, run_id):
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=429, code="Throttling.System", count=50)

    with pytest.raises(DataWorksThrottlingError) as err:
        hook.get_pipeline_run(run_id)

    assert err.value.code == "Throttling.System"
    assert _attempts(emu, "GetPipelineRun") == hook.retry_policy.max_attempts


def test_create_is_not_repeated_after_a_server_error(hook, emu):
    emu.inject_fault(action="CreatePipelineRun", kind="http_error", status=500, code="InternalError.System")

    with pytest.raises(PipelineRunAmbiguousCreateError) as err:
        hook.create_pipeline_run(NODE)

    assert isinstance(err.value.cause, DataWorksServerError)
    assert "may or may not exist" in str(err.value)
    assert _attempts(emu, "CreatePipelineRun") == 1


def test_create_lost_after_commit_is_ambiguous_and_the_run_exists(hook, emu):
    emu.inject_fault(action="CreatePipelineRun", kind="commit_then_drop")

    with pytest.raises(PipelineRunAmbiguousCreateError) as err:
        hook.create_pipeline_run(NODE)

    assert isinstance(err.value.cause, DataWorksTransportError)
    assert len(emu.runs(object_id=NODE)) == 1
    assert _attempts(emu, "CreatePipelineRun") == 1


def test_create_read_timeout_is_ambiguous(emu, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SLOW", emu.connection_uri(project_id=10000, read_timeout=0.3))
    emu.inject_fault(action="CreatePipelineRun", kind="delay", seconds=1.0)
    hook = DataWorksHook("slow", retry_policy=DataWorksRetryPolicy(max_attempts=3, base_delay=0.01))

    with pytest.raises(PipelineRunAmbiguousCreateError):
        hook.create_pipeline_run(NODE)

    assert _attempts(emu, "CreatePipelineRun") <= 1


def test_create_is_retried_when_throttled(hook, emu):
    emu.inject_fault(action="CreatePipelineRun", kind="http_error", status=429, code="Throttling.User", count=2)

    run_id = hook.create_pipeline_run(NODE)

    assert [run["id"] for run in emu.runs(object_id=NODE)] == [run_id]
    assert _attempts(emu, "CreatePipelineRun") == 3


def test_create_is_retried_when_the_connection_was_refused(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLOSED",
        f"dataworks://ak:secret-value@/?endpoint=127.0.0.1%3A{port}&protocol=http&region=cn-hangzhou&project_id=1",
    )
    hook = DataWorksHook("closed", retry_policy=DataWorksRetryPolicy(max_attempts=3, base_delay=0.01))

    with pytest.raises(DataWorksTransportError) as err:
        hook.create_pipeline_run(NODE)

    # never sent, so retrying was safe, and the error is not reported as ambiguous
    assert err.value.request_sent is False
    assert "secret-value" not in str(err.value)


async def test_async_create_read_timeout_is_ambiguous(emu, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SLOW", emu.connection_uri(project_id=10000, read_timeout=0.3))
    emu.inject_fault(action="CreatePipelineRun", kind="delay", seconds=1.0)
    hook = DataWorksHook("slow", retry_policy=DataWorksRetryPolicy(max_attempts=3, base_delay=0.01))

    with pytest.raises(PipelineRunAmbiguousCreateError):
        await hook.create_pipeline_run_async(NODE)

    assert _attempts(emu, "CreatePipelineRun") <= 1


async def test_async_create_is_retried_when_the_connection_was_refused(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLOSED",
        f"dataworks://ak:secret-value@/?endpoint=127.0.0.1%3A{port}&protocol=http&region=cn-hangzhou&project_id=1",
    )
    hook = DataWorksHook("closed", retry_policy=DataWorksRetryPolicy(max_attempts=3, base_delay=0.01))

    with pytest.raises(DataWorksTransportError) as err:
        await hook.create_pipeline_run_async(NODE)

    assert err.value.request_sent is False
    assert "secret-value" not in str(err.value)


async def test_async_create_lost_after_commit_is_ambiguous(hook, emu):
    emu.inject_fault(action="CreatePipelineRun", kind="commit_then_drop")

    with pytest.raises(PipelineRunAmbiguousCreateError):
        await hook.create_pipeline_run_async(NODE)

    assert len(emu.runs(object_id=NODE)) == 1


@pytest.mark.parametrize(
    ("action", "read"),
    [
        ("GetPipelineRun", lambda hook, run_id: hook.get_pipeline_run(run_id)),
        ("ListPipelineRuns", lambda hook, run_id: hook.list_pipeline_runs(object_id=NODE)),
        ("ListPipelineRunItems", lambda hook, run_id: hook.list_pipeline_run_items(run_id)),
    ],
    ids=["get", "list-runs", "list-items"],
)
def test_an_answer_without_its_payload_is_asked_again_not_read_as_empty(hook, emu, run_id, action, read):
    """A 200 ``{"Success": false}`` to a read says nothing: it is not an empty listing nor a run of no status."""
    emu.inject_fault(action=action, kind="not_started", count=1)

    answer = read(hook, run_id)

    assert _attempts(emu, action) == 2
    if action == "GetPipelineRun":
        assert answer.id == run_id and answer.status in ("Init", "Running")
    elif action == "ListPipelineRuns":
        assert [run.id for run in answer] == [run_id]
    else:
        assert answer  # the run's items: the object itself at least


async def test_a_listing_that_never_says_anything_raises_and_names_the_missing_part(hook, emu, run_id):
    emu.inject_fault(action="ListPipelineRuns", kind="not_started", count=0)

    with pytest.raises(DataWorksTransportError, match="ListPipelineRuns without PagingInfo") as err:
        await hook.list_pipeline_runs_async(object_id=NODE)

    assert err.value.action == "ListPipelineRuns"
    assert _attempts(emu, "ListPipelineRuns") == hook.retry_policy.max_attempts
