"""No secret leaks: the AccessKey secret and the STS token never reach logs, XCom, triggers or errors."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.sensors.pipeline_run import PipelineRunSensor
from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

from .support import APPROVAL_NODE, BASIC, FAILING_NODE, NODE, TaskInstance, collect_events, run_task

ACCESS_KEY_ID = "STS.canary-ak"
SECRET = "SECRET-c4n4ry-9f2e"
TOKEN = "TOKEN-c4n4ry-77aa"
RETRIES = {"max_attempts": 2, "base_delay": 0.01, "max_delay": 0.02}


@pytest.fixture
def sts_conn(emu, monkeypatch):
    emu.add_credential(ACCESS_KEY_ID, SECRET, security_token=TOKEN)
    uri = emu.connection_uri(project_id=BASIC, auth_type="sts", security_token=TOKEN)
    uri = uri.replace(emu.access_key_id, ACCESS_KEY_ID, 1).replace(emu.access_key_secret, SECRET, 1)
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", uri)


def test_secret_and_token_never_appear_anywhere(emu, sts_conn, caplog, capsys, monkeypatch):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []  # every XCom value, trigger kwarg, event and error text collected below

    def keep(value) -> None:
        seen.append(str(value))
        seen.append(repr(value))

    def op(**kwargs):
        kwargs.setdefault("task_id", "deploy")
        kwargs.setdefault("poll_interval", 0.05)
        kwargs.setdefault("dataworks_retry_policy", RETRIES)
        return lambda: CreatePipelineRunOperator(**kwargs)

    # sync success and failure
    ti = TaskInstance()
    keep(run_task(op(object_id=NODE), ti.context()))
    with pytest.raises(Exception) as failed:
        run_task(op(object_id=FAILING_NODE), TaskInstance().context())
    keep(failed.value)

    # deferred: trigger kwargs, repr, events, then timeout + abolish
    deferred_ti = TaskInstance()
    with pytest.raises(TaskDeferred) as deferred:
        op(object_id=APPROVAL_NODE, deferrable=True, timeout=0.3)().execute(deferred_ti.context())
    trigger = deferred.value.trigger
    keep(trigger.serialize())
    keep(trigger)
    events = asyncio.run(collect_events(trigger))
    keep([e.payload for e in events])
    with pytest.raises(Exception) as timed_out:
        op(object_id=APPROVAL_NODE, deferrable=True)().execute_complete(
            deferred_ti.context(), event=events[0].payload, **deferred.value.kwargs
        )
    keep(timed_out.value)
    keep(ti.state.xcom)
    keep(deferred_ti.state.xcom)

    # sensor, poke and deferrable
    keep(
        run_task(
            lambda: PipelineRunSensor(
                task_id="wait", pipeline_run_id=ti.state.xcom["pipeline_run_id"], poke_interval=0.05, timeout=5
            ),
            TaskInstance().context(),
        )
    )

    # transient errors beyond the budget until the deadline (sync and trigger), a permission error, and a kill
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=503, count=0)
    with pytest.raises(Exception) as exhausted:
        run_task(op(object_id=NODE, timeout=0.5), TaskInstance().context())
    keep(exhausted.value)
    error_trigger = PipelineRunTrigger(
        pipeline_run_id="x",
        project_id=BASIC,
        poll_interval=0.05,
        retry_policy=RETRIES,
        cancel_on_kill=True,
        end_time=time.time() + 0.5,
    )
    keep([e.payload for e in asyncio.run(collect_events(error_trigger))])
    emu.clear_faults()
    emu.inject_fault(action="ExecPipelineRunStage", kind="http_error", status=403, code="Forbidden.RAM", count=0)
    with pytest.raises(Exception) as forbidden:
        run_task(op(object_id=NODE), TaskInstance().context())
    keep(forbidden.value)
    emu.inject_fault(action="GetPipelineRun", kind="http_error", status=503, count=0)
    asyncio.run(error_trigger.on_kill())
    emu.clear_faults()

    # an authentication failure: a wrong secret (which contains the canary) is refused
    import os

    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAWORKS_DEFAULT", os.environ["AIRFLOW_CONN_DATAWORKS_DEFAULT"].replace(SECRET, SECRET + "-x")
    )
    with pytest.raises(Exception) as auth_failed:
        run_task(op(object_id=NODE), TaskInstance().context())
    keep(auth_failed.value)
    assert "Signature" in str(auth_failed.value) or "signature" in str(auth_failed.value)

    time.sleep(0.05)
    captured = capsys.readouterr()
    haystacks = {
        "log records": "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records),
        "log text": caplog.text,
        "stdout": captured.out,
        "stderr": captured.err,
        "collected values": "\n".join(seen),
    }
    # the haystacks are real: they hold what the flows above published and logged
    assert len(caplog.records) > 20
    assert ti.state.xcom["pipeline_run_id"] in haystacks["collected values"]
    assert "DataWorks pipeline run" in haystacks["stdout"] + haystacks["log text"]
    for where, text in haystacks.items():
        for secret in (SECRET, TOKEN):
            assert secret not in text, f"{secret} leaked into {where}"
        assert "Authorization" not in text or "ACS3-HMAC-SHA256 Credential" not in text, f"auth header in {where}"
