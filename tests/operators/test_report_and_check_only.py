"""The deployment report and check-only runs, through the real SDK against the emulator."""

from __future__ import annotations

import math

import pytest

from airflow_provider_dataworks.exceptions import PipelineRunFailedError
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator
from airflow_provider_dataworks.sensors.pipeline_run import PipelineRunSensor
from airflow_provider_dataworks.testing.faults import HTTP_ERROR

from .support import (
    BASIC,
    FAILING_NODE,
    FAST_RETRIES,
    NODE,
    POLL,
    STANDARD,
    STD_WORKFLOW,
    WORKFLOW,
    count_calls,
    only_run,
    run_task,
)

BIG_WORKFLOW = "8600000000000009000"
BIG_CHILDREN = 149  # 150 items with the workflow: two pages of ListPipelineRunItems
ABOLISHED = {"Termination", "Cancel"}


def report_text(capsys, caplog) -> str:
    """The logged report: Airflow's task logger writes to stdout, plain loggers reach caplog."""
    text = capsys.readouterr().out + "\n" + caplog.text
    assert text.count("Deployment report") >= 1, text[-3000:]
    block = text[text.index("Deployment report") :]
    return block.split(" [airflow.task")[0]


def operator(**kwargs):
    kwargs.setdefault("task_id", "deploy")
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    return CreatePipelineRunOperator(**kwargs)


@pytest.fixture
def big_workflow(emu):
    children = [{"id": f"86000000000000{i:05d}", "name": f"node_{i:03d}"} for i in range(BIG_CHILDREN)]
    emu.add_object(BASIC, BIG_WORKFLOW, "big_workflow", type="WorkflowDefinition", children=children)
    return BIG_WORKFLOW


# --------------------------------------------------------------------- the report


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])
def test_report_lists_every_item_of_a_run_with_more_than_100(emu, conn, task_instance, big_workflow, deferrable):
    context = task_instance.context()
    run_task(lambda: operator(object_id=big_workflow, deferrable=deferrable), context)

    run = only_run(emu, big_workflow)
    items = task_instance.state.xcom["pipeline_run_items"]
    assert len(items) == BIG_CHILDREN + 1
    assert items[0] == {
        "id": big_workflow,
        "name": "big_workflow",
        "type": "WorkflowDefinition",
        "version": 1,
        "status": "Success",
    }
    assert len({item["id"] for item in items}) == len(items)
    # the budget: ⌈items/100⌉ calls, all after the run ended
    assert count_calls(emu, "ListPipelineRunItems") == math.ceil(len(items) / 100) == 2
    last_get = max(c["time"] for c in emu.calls("GetPipelineRun"))
    assert min(c["time"] for c in emu.calls("ListPipelineRunItems")) >= last_get

    summary = task_instance.state.xcom["pipeline_run_summary"]
    assert summary["pipeline_run_id"] == run["id"]
    assert (summary["object_id"], summary["object_name"]) == (big_workflow, "big_workflow")
    assert (summary["type"], summary["status"], summary["item_count"]) == ("Online", "Success", 150)
    assert [s["code"] for s in summary["stages"]] == ["BUILD_PACKAGE", "PROD_CHECK", "PROD"]
    for stage, emulated in zip(summary["stages"], run["stages"], strict=True):
        assert stage["status"] == emulated["status"] == "Success"
        assert stage["start"] is not None and stage["finish"] is not None
        assert stage["duration_seconds"] is not None and stage["duration_seconds"] >= 0


def test_report_table_is_logged(emu, conn, task_instance, capsys, caplog):
    caplog.set_level("INFO")
    operator(object_id=WORKFLOW).execute(task_instance.context())

    text = report_text(capsys, caplog)
    assert f"Online of object {WORKFLOW} (daily_sales_workflow), status Success, 3 item(s)." in text
    assert "step | stage" in text and "item id" in text
    for name in ("daily_sales_workflow", "ods_sales", "dws_sales", "BUILD_PACKAGE", "PROD_CHECK"):
        assert name in text


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])
def test_report_of_a_failed_run_puts_the_failing_stage_and_items_first(
    emu, conn, task_instance, capsys, caplog, deferrable
):
    caplog.set_level("INFO")
    with pytest.raises(PipelineRunFailedError, match="PROD_CHECK"):
        run_task(lambda: operator(object_id=FAILING_NODE, deferrable=deferrable), task_instance.context())

    summary = task_instance.state.xcom["pipeline_run_summary"]
    assert (summary["status"], summary["failed_stage"]) == ("Fail", "PROD_CHECK")
    assert task_instance.state.xcom["pipeline_run_items"][0]["status"] == "Fail"
    lines = report_text(capsys, caplog).splitlines()
    assert lines[2].startswith("FAILED at stage PROD_CHECK (Check, step 2): 生产检查未通过")
    assert lines[3].startswith(f"FAILED item(s) {FAILING_NODE} broken_sql (Node): 生产检查未通过")
    # in the stage table the failed stage is the first row
    header = next(i for i, line in enumerate(lines) if line.startswith("step"))
    assert " PROD_CHECK " in lines[header + 2]


def test_report_read_failure_does_not_change_the_outcome(emu, conn, task_instance, capsys, caplog):
    emu.inject_fault("ListPipelineRunItems", HTTP_ERROR, count=0, status=500)
    result = operator(object_id=NODE).execute(task_instance.context())

    assert result == only_run(emu, NODE)["id"]
    assert "pipeline_run_items" not in task_instance.state.xcom
    assert "No deployment report" in capsys.readouterr().out + caplog.text


def test_report_can_be_turned_off(emu, conn, task_instance):
    operator(object_id=NODE, report=False).execute(task_instance.context())

    assert count_calls(emu, "ListPipelineRunItems") == 0
    assert "pipeline_run_summary" not in task_instance.state.xcom


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_sensor_that_drives_the_run_publishes_the_report(emu, conn, task_instance, deferrable):
    run_id = operator(object_id=WORKFLOW, wait_for_completion=False).execute(task_instance.context())
    context = task_instance.context()

    def sensor():
        return PipelineRunSensor(
            task_id="wait",
            pipeline_run_id=run_id,
            advance_stages=True,
            poke_interval=POLL,
            timeout=60,
            deferrable=deferrable,
            dataworks_retry_policy=FAST_RETRIES,
        )

    assert run_task(sensor, context) == run_id
    assert len(task_instance.state.xcom["pipeline_run_items"]) == 3
    assert task_instance.state.xcom["pipeline_run_summary"]["status"] == "Success"


def test_sensor_that_only_watches_publishes_no_report(emu, conn, task_instance):
    run_id = operator(object_id=NODE).execute(task_instance.context())
    calls = count_calls(emu, "ListPipelineRunItems")
    context = task_instance.context()

    PipelineRunSensor(task_id="wait", pipeline_run_id=run_id, poke_interval=POLL, timeout=60).execute(context)

    assert count_calls(emu, "ListPipelineRunItems") == calls
    assert "pipeline_run_items" not in task_instance.state.xcom


# --------------------------------------------------------------------- check-only runs


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])
def test_check_only_runs_the_checks_then_abolishes_without_deploying(emu, conn, task_instance, deferrable):
    result = run_task(lambda: operator(object_id=NODE, check_only=True, deferrable=deferrable), task_instance.context())

    run = only_run(emu, NODE)
    assert result == run["id"]
    assert run["status"] in ABOLISHED
    stages = {s["code"]: s["status"] for s in run["stages"]}
    assert stages["BUILD_PACKAGE"] == stages["PROD_CHECK"] == "Success"
    assert stages["PROD"] == "Init"  # never executed
    exec_codes = [c for c in emu.calls("ExecPipelineRunStage") if c["status"] == 200]
    assert len(exec_codes) == 1  # PROD_CHECK only
    assert count_calls(emu, "AbolishPipelineRun") == 1
    assert emu.get_object(BASIC, NODE)["deployed"] is False
    summary = task_instance.state.xcom["pipeline_run_summary"]
    assert (summary["check_only"], summary["abolished"], summary["failed_stage"]) == (True, True, None)


def test_check_only_in_a_standard_workspace_stops_before_the_development_deploy(emu, monkeypatch, task_instance):
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", emu.connection_uri(project_id=STANDARD))
    operator(object_id=STD_WORKFLOW, check_only=True).execute(task_instance.context())

    run = only_run(emu, STD_WORKFLOW, STANDARD)
    stages = {s["code"]: s["status"] for s in run["stages"]}
    assert (stages["BUILD_PACKAGE"], stages["DEV_CHECK"]) == ("Success", "Success")
    assert stages["DEV"] == stages["PROD_CHECK"] == stages["PROD"] == "Init"
    assert run["status"] in ABOLISHED


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])
def test_check_only_fails_with_the_failing_checks_stage_and_message(emu, conn, task_instance, deferrable):
    with pytest.raises(PipelineRunFailedError) as raised:
        run_task(
            lambda: operator(object_id=FAILING_NODE, check_only=True, deferrable=deferrable), task_instance.context()
        )

    assert "at stage PROD_CHECK" in str(raised.value)
    assert "SQL syntax error at line 3" in str(raised.value)
    run = only_run(emu, FAILING_NODE)
    assert run["status"] == "Fail"
    assert count_calls(emu, "AbolishPipelineRun") == 0  # already over


def test_check_only_retry_reattaches_to_the_same_run(emu, conn, task_instance):
    # the first try times out while the build stage still runs, and leaves the run alone
    first = operator(object_id=NODE, check_only=True, timeout=0.3, cancel_on_timeout=False)
    emu.set_stage_seconds(2.0)
    with pytest.raises(Exception, match="did not finish before the timeout"):
        first.execute(task_instance.context(1))
    emu.set_stage_seconds(0.0)

    operator(object_id=NODE, check_only=True).execute(task_instance.context(2))

    run = only_run(emu, NODE)  # one run for both tries
    assert run["status"] in ABOLISHED
    assert {s["code"]: s["status"] for s in run["stages"]}["PROD"] == "Init"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"run_mode": "Auto", "auto_run_until_stage": "PROD_CHECK"}, "run_mode"),
        ({"advance_stages": False}, "advance_stages"),
        ({"advance_until_stage": "PROD_CHECK"}, "advance_until_stage"),
        ({"wait_for_completion": False}, "wait_for_completion"),
    ],
)
def test_check_only_refuses_settings_that_could_deploy(emu, conn, task_instance, kwargs, field):
    with pytest.raises(ValueError, match=field):
        operator(object_id=NODE, check_only=True, **kwargs).execute(task_instance.context())
    assert emu.calls("CreatePipelineRun") == []
