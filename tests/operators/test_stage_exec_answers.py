"""The deploy task when DataWorks does not accept a stage execution: the task state, the runs, the stages.

The first test keeps the default :class:`~airflow_provider_dataworks.progress.StageExecPolicy`, so the
``Success: false`` case waits out the real first backoff; the deferred one passes a fast policy (the
handover of the backoff to the trigger is in ``test_stage_exec_handover``).
"""

from __future__ import annotations

import time

from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.progress import StageExecPolicy

from .support import FAST_RETRIES, NODE, POLL, only_run, run_task


def make(**kwargs):
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    return lambda: CreatePipelineRunOperator(object_id=NODE, **kwargs)


def exec_answers(emu) -> list[tuple[int, str | None]]:
    return [(call["status"], call["fault"]) for call in emu.calls("ExecPipelineRunStage")]


def test_success_false_is_executed_again_and_the_task_succeeds(emu, conn, task_instance):
    emu.inject_fault("ExecPipelineRunStage", kind="not_started")
    started = time.time()

    result = run_task(make(deferrable=False), task_instance.context())

    run = only_run(emu, NODE)
    assert result == run["id"] and run["status"] == "Success"
    assert [stage["status"] for stage in run["stages"]] == ["Success", "Success", "Success"]
    assert exec_answers(emu) == [(200, "not_started"), (200, None), (200, None)]
    assert time.time() - started >= StageExecPolicy().backoff  # not retried in a tight loop
    assert emu.get_object(10000, NODE)["deployed"] is True


def test_a_passing_400_before_deferring_does_not_strand_the_deferred_task(emu, conn, task_instance):
    emu.inject_fault("ExecPipelineRunStage", status=400, code="Invalid.Stage.NotReady")
    emu.set_init_seconds(0)  # the check before deferring meets PROD_CHECK waiting and executes it
    events: list[dict] = []

    fast = {"attempts": 3, "backoff": 0.2, "max_backoff": 0.2}
    result = run_task(make(deferrable=True, stage_exec_policy=fast), task_instance.context(), events=events)

    run = only_run(emu, NODE)
    assert result == run["id"] and run["status"] == "Success"
    assert [event["status"] for event in events] == ["success"]
    assert exec_answers(emu) == [(400, "http_error"), (200, None), (200, None)]
