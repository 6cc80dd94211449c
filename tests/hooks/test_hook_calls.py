"""Every hook method, sync and async, through the real SDK against the emulator."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_dataworks.exceptions import (
    DataWorksAuthError,
    DataWorksClientError,
    DataWorksNotFoundError,
    PipelineRunFailedError,
    PipelineRunTimeoutError,
)
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.status import PipelineRunStatus

WORKFLOW = "8600000000000000001"
NODE = "8600000000000000002"
FAILING_NODE = "8600000000000000009"
APPROVAL_NODE = "8600000000000000005"


def test_create_then_get_returns_typed_run(hook, emu):
    run_id = hook.create_pipeline_run(WORKFLOW, description="release 42")

    run = hook.get_pipeline_run(run_id)

    assert run.id == run_id
    assert run.project_id == 10000
    assert run.description == "release 42"
    assert [stage.code for stage in run.ordered_stages] == ["BUILD_PACKAGE", "PROD_CHECK", "PROD"]
    assert run.request_id
    assert emu.runs(object_id=WORKFLOW)[0]["id"] == run_id


async def test_async_twins_create_get_list_items_exec_abolish(hook, emu):
    run_id = await hook.create_pipeline_run_async(NODE, description="async")
    run = await hook.get_pipeline_run_async(run_id)
    assert run.state in (PipelineRunStatus.INIT, PipelineRunStatus.RUNNING)  # a new run is Init briefly
    await asyncio.sleep(emu.init_seconds)
    assert (await hook.get_pipeline_run_async(run_id)).state is PipelineRunStatus.RUNNING
    assert [r.id for r in await hook.list_pipeline_runs_async(object_id=NODE)] == [run_id]
    items = await hook.list_pipeline_run_items_async(run_id)
    assert [item.id for item in items] == [NODE]

    assert await hook.exec_pipeline_run_stage_async(run_id, "PROD_CHECK") is True
    assert await hook.abolish_pipeline_run_async(run_id) is True

    assert (await hook.get_pipeline_run_async(run_id)).state is PipelineRunStatus.TERMINATION
    assert emu.run(run_id)["status"] == "Termination"


def test_wait_drives_every_stage_to_success(hook, emu):
    run_id = hook.create_pipeline_run(WORKFLOW)

    run = hook.wait_for_pipeline_run(run_id, poll_interval=0.01, deadline=time.time() + 30)

    assert run.is_success
    assert all(stage.is_success for stage in run.stages)
    execs = [c for c in emu.calls("ExecPipelineRunStage")]
    assert len(execs) == 2  # one exec per stage that waits for one: PROD_CHECK, PROD
    items = hook.list_pipeline_run_items(run_id)
    assert {item.id for item in items} == {WORKFLOW, "8600000000000000011", "8600000000000000012"}


def test_wait_stops_after_advance_until_stage_in_standard_mode(hook, emu):
    run_id = hook.create_pipeline_run("8600000000000000021", project_id=20000)

    run = hook.wait_for_pipeline_run(
        run_id, 20000, poll_interval=0.01, deadline=time.time() + 30, advance_until_stage="DEV"
    )

    assert run.stages_succeeded_through("DEV")
    assert run.state is PipelineRunStatus.RUNNING
    assert emu.run(run_id)["status"] == "Running"


def test_wait_raises_with_stage_and_message_when_check_fails(hook):
    run_id = hook.create_pipeline_run(FAILING_NODE)

    with pytest.raises(PipelineRunFailedError) as err:
        hook.wait_for_pipeline_run(run_id, poll_interval=0.01, deadline=time.time() + 30)

    text = str(err.value)
    assert run_id in text
    assert "PROD_CHECK" in text and "Check" in text and "step 2" in text
    assert "SQL syntax error" in text
    assert err.value.run.state is PipelineRunStatus.FAIL


def test_wait_on_an_approval_stage_times_out_naming_the_stage(hook, emu):
    run_id = hook.create_pipeline_run(APPROVAL_NODE)

    with pytest.raises(PipelineRunTimeoutError) as err:
        hook.wait_for_pipeline_run(run_id, poll_interval=0.05, deadline=time.time() + 0.8)

    assert "PROD_CHECK" in str(err.value) and "Running" in str(err.value)
    assert err.value.stage is not None and err.value.stage.code == "PROD_CHECK"
    # executed once and accepted; then the wait only reads
    assert [call["status"] for call in emu.calls("ExecPipelineRunStage")] == [200]


def test_wait_without_advancing_names_the_waiting_stage(hook):
    run_id = hook.create_pipeline_run(NODE)

    with pytest.raises(PipelineRunTimeoutError, match="advance_stages is off"):
        hook.wait_for_pipeline_run(run_id, poll_interval=0.05, deadline=time.time() + 0.3, advance_stages=False)


def test_auto_run_mode_needs_no_exec(hook, emu):
    run_id = hook.create_pipeline_run(NODE, run_mode="Auto", auto_run_until_stage="PROD")

    run = hook.wait_for_pipeline_run(run_id, poll_interval=0.01, deadline=time.time() + 30, advance_stages=False)

    assert run.is_success
    assert emu.calls("ExecPipelineRunStage") == []


def test_offline_undeploys(hook, emu):
    run_id = hook.create_pipeline_run("8600000000000000004", type="Offline")

    run = hook.wait_for_pipeline_run(run_id, poll_interval=0.01, deadline=time.time() + 30)

    assert run.is_success
    assert run.stage("PROD").type == "Offline"
    assert emu.get_object(10000, "8600000000000000004")["deployed"] is False


def test_list_reads_every_page(hook):
    ids = {hook.create_pipeline_run(NODE) for _ in range(23)}

    runs = hook.list_pipeline_runs(object_id=NODE, page_size=10)

    assert {run.id for run in runs} == ids


def test_unknown_object_keeps_dataworks_code_message_and_request_id(hook):
    with pytest.raises(DataWorksNotFoundError) as err:
        hook.create_pipeline_run("7567482277219412494")

    assert err.value.message.startswith("未找到发布对象")
    assert err.value.code
    assert err.value.request_id
    assert err.value.http_status == 400
    assert err.value.request_id in str(err.value)


def test_exec_on_finished_run_is_a_client_error_not_retried(hook, emu):
    run_id = hook.create_pipeline_run(NODE)
    hook.abolish_pipeline_run(run_id)

    with pytest.raises(DataWorksClientError) as err:
        hook.exec_pipeline_run_stage(run_id, "PROD_CHECK")

    assert "流水线不是正在运行" in err.value.message
    assert len(emu.calls("ExecPipelineRunStage")) == 1


def test_workspace_without_permission_is_auth_error(emu, monkeypatch):
    emu.add_credential("limited-ak", "limited-secret-123", projects=[20000])
    monkeypatch.setenv(
        "AIRFLOW_CONN_LIMITED",
        f"dataworks://limited-ak:limited-secret-123@/?endpoint={emu.endpoint}&protocol=http&region=cn-hangzhou",
    )
    hook = DataWorksHook("limited")

    with pytest.raises(DataWorksAuthError) as err:
        hook.get_pipeline_run("no-such-run", 10000)

    assert err.value.http_status == 403
    ok, reason = DataWorksHook("limited").test_connection()
    assert ok is True  # no default workspace: listing is allowed


def test_test_connection_explains_a_wrong_secret(emu, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_WRONG",
        f"dataworks://{emu.access_key_id}:not-the-secret@/?endpoint={emu.endpoint}&protocol=http"
        "&region=cn-hangzhou&project_id=10000",
    )

    ok, reason = DataWorksHook("wrong").test_connection()

    assert ok is False
    assert "Secret does not match" in reason
    assert "not-the-secret" not in reason


def test_test_connection_explains_an_unknown_key(emu, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNKNOWN",
        f"dataworks://nobody:whatever-secret@/?endpoint={emu.endpoint}&protocol=http&region=cn-hangzhou",
    )

    ok, reason = DataWorksHook("unknown").test_connection()

    assert ok is False
    assert "AccessKey ID is not known" in reason


def test_test_connection_succeeds_with_workspace(hook):
    ok, reason = hook.test_connection()

    assert ok is True
    assert "10000" in reason and "demo_basic" in reason


def test_user_agent_names_the_provider(hook, emu):
    from airflow_provider_dataworks import __version__

    client = hook.get_conn()

    assert f"airflow-provider-dataworks/{__version__}" in client._user_agent
