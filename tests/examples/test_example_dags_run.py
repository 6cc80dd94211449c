"""Run every example DAG end to end with ``dag.test()`` against the DataWorks emulator.

Each test asserts outcomes: the final task-instance states, the run ID the tasks published,
and what happened in (emulated) DataWorks: exactly one pipeline run per deployed object, its
final status and the object's deployed state.
"""

from __future__ import annotations

from typing import Any

import pytest
from compat.versions import xcom_values

BASIC_WORKSPACE = 10000
STANDARD_WORKSPACE = 20000


def task_states(dag_run) -> dict[str | tuple[str, int], str]:
    """``{task_id: state}``, keyed by ``(task_id, map_index)`` for mapped task instances."""
    states: dict[str | tuple[str, int], str] = {}
    for ti in dag_run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else (ti.task_id, ti.map_index)
        states[key] = str(ti.state)
    return states


def xcom(dag_run, task_id: str, key: str = "return_value") -> dict[int, Any]:
    """The XCom ``key`` of every task instance of ``task_id``, by map index (-1: not mapped)."""
    return xcom_values(dag_run, task_id, key)


def only_run(emu, object_id: str, project_id: int = BASIC_WORKSPACE) -> dict[str, Any]:
    runs = emu.runs(object_id=object_id, project_id=project_id)
    assert len(runs) == 1, f"expected exactly one pipeline run of {object_id}, got {len(runs)}"
    return runs[0]


def assert_published_run_id(dag_run, task_id: str, run_id: str, map_index: int = -1) -> None:
    assert xcom(dag_run, task_id)[map_index] == run_id
    assert xcom(dag_run, task_id, "pipeline_run_id")[map_index] == run_id


def test_release_window_deploys_the_workflow(run_example, emu):
    dag_run = run_example("dataworks_release_window")

    assert task_states(dag_run) == {"deploy_workflow": "success"}
    run = only_run(emu, "8600000000000000001")
    assert (run["type"], run["status"]) == ("Online", "Success")
    assert [stage["status"] for stage in run["stages"]] == ["Success"] * 3
    assert_published_run_id(dag_run, "deploy_workflow", run["id"])
    assert emu.get_object(BASIC_WORKSPACE, "8600000000000000001")["deployed"] is True
    assert str(dag_run.state) == "success"


@pytest.mark.min_airflow("3.0")
def test_release_window_also_runs_when_triggered_without_a_logical_date(run_example, emu):
    # Airflow 3 runs triggered through the API or UI may have no logical date: templates such
    # as {{ ds }} would fail to render, so the examples must not use them.
    dag_run = run_example("dataworks_release_window", logical_date=None)

    assert task_states(dag_run) == {"deploy_workflow": "success"}
    assert only_run(emu, "8600000000000000001")["status"] == "Success"


def test_quality_check_passing_lets_the_node_deploy(run_example, emu):
    dag_run = run_example("dataworks_deploy_after_quality_check")

    assert task_states(dag_run) == {
        "prepare_demo_table": "success",
        "check_row_count": "success",
        "check_columns": "success",
        "deploy_node": "success",
    }
    run = only_run(emu, "8600000000000000002")
    assert run["status"] == "Success"
    assert_published_run_id(dag_run, "deploy_node", run["id"])
    assert emu.get_object(BASIC_WORKSPACE, "8600000000000000002")["deployed"] is True


def test_quality_check_failing_creates_no_pipeline_run(run_example, emu):
    dag_run = run_example("dataworks_deploy_after_quality_check", conf={"min_rows": 1_000_000})

    states = task_states(dag_run)
    assert states["check_row_count"] == "failed"
    assert states["check_columns"] == "success"
    assert states["deploy_node"] == "upstream_failed"
    assert emu.runs(object_id="8600000000000000002") == []
    assert emu.get_object(BASIC_WORKSPACE, "8600000000000000002")["deployed"] is False
    assert str(dag_run.state) == "failed"


def test_quality_check_example_can_run_twice_on_the_same_database(run_example, emu):
    run_example("dataworks_deploy_after_quality_check")
    dag_run = run_example("dataworks_deploy_after_quality_check")

    assert set(task_states(dag_run).values()) == {"success"}
    assert len(emu.runs(object_id="8600000000000000002")) == 2


def test_create_then_sensor_waits_for_and_drives_the_same_run(run_example, emu):
    dag_run = run_example("dataworks_create_then_sensor")

    assert task_states(dag_run) == {"create_run": "success", "wait_for_run": "success"}
    run = only_run(emu, "8600000000000000003")
    assert run["status"] == "Success"
    assert_published_run_id(dag_run, "create_run", run["id"])
    assert emu.get_object(BASIC_WORKSPACE, "8600000000000000003")["deployed"] is True


def test_undeploy_takes_the_node_offline(run_example, emu):
    assert emu.get_object(BASIC_WORKSPACE, "8600000000000000004")["deployed"] is True

    dag_run = run_example("dataworks_undeploy")

    assert task_states(dag_run) == {"undeploy_node": "success"}
    run = only_run(emu, "8600000000000000004")
    assert (run["type"], run["status"]) == ("Offline", "Success")
    assert_published_run_id(dag_run, "undeploy_node", run["id"])
    assert emu.get_object(BASIC_WORKSPACE, "8600000000000000004")["deployed"] is False


def test_mapped_deploy_creates_one_run_per_object(run_example, emu):
    object_ids = ["8600000000000000006", "8600000000000000007", "8600000000000000008"]

    dag_run = run_example("dataworks_deploy_mapped")

    assert task_states(dag_run) == {("deploy", index): "success" for index in range(3)}
    assert len(emu.runs()) == 3
    for map_index, object_id in enumerate(object_ids):
        run = only_run(emu, object_id)
        assert run["object_ids"] == [object_id]
        assert run["status"] == "Success"
        assert_published_run_id(dag_run, "deploy", run["id"], map_index=map_index)
        assert emu.get_object(BASIC_WORKSPACE, object_id)["deployed"] is True


def test_standard_mode_promotes_the_run_checked_in_dev(run_example, emu):
    dag_run = run_example("dataworks_standard_dev_then_prod")

    assert task_states(dag_run) == {
        "deploy_to_dev": "success",
        "smoke_check_dev": "success",
        "promote_to_prod": "success",
    }
    run = only_run(emu, "8600000000000000021", project_id=STANDARD_WORKSPACE)
    assert run["status"] == "Success"
    assert [(stage["code"], stage["status"]) for stage in run["stages"]] == [
        ("BUILD_PACKAGE", "Success"),
        ("DEV_CHECK", "Success"),
        ("DEV", "Success"),
        ("PROD_CHECK", "Success"),
        ("PROD", "Success"),
    ]
    assert_published_run_id(dag_run, "deploy_to_dev", run["id"])
    assert emu.get_object(STANDARD_WORKSPACE, "8600000000000000021")["deployed"] is True
    assert emu.runs() == [run]


def test_standard_mode_leaves_prod_untouched_until_the_dev_check_passes(run_example, emu):
    dag_run = run_example("dataworks_standard_dev_then_prod")

    run = only_run(emu, "8600000000000000021", project_id=STANDARD_WORKSPACE)
    stages = {stage["code"]: stage for stage in run["stages"]}
    # the production stages started only after the check task, i.e. after DEV had finished
    smoke_check = dag_run.get_task_instance("smoke_check_dev")
    assert stages["DEV"]["finish_time"] / 1000 <= smoke_check.end_date.timestamp()
    assert stages["PROD_CHECK"]["start_time"] / 1000 >= smoke_check.end_date.timestamp()


def test_check_release_candidate_checks_without_deploying(run_example, emu):
    dag_run = run_example("dataworks_check_release_candidate")

    assert task_states(dag_run) == {"check_release_candidate": "success"}
    run = only_run(emu, "8600000000000000013")
    assert run["status"] in {"Termination", "Cancel"}  # abolished once the checks passed
    assert [(s["code"], s["status"]) for s in run["stages"]] == [
        ("BUILD_PACKAGE", "Success"),
        ("PROD_CHECK", "Success"),
        ("PROD", "Init"),
    ]
    assert emu.get_object(BASIC_WORKSPACE, "8600000000000000013")["deployed"] is False
    assert_published_run_id(dag_run, "check_release_candidate", run["id"])
    items = xcom(dag_run, "check_release_candidate", "pipeline_run_items")[-1]
    assert [item["name"] for item in items] == ["release_candidate_workflow", "rc_orders"]
    summary = xcom(dag_run, "check_release_candidate", "pipeline_run_summary")[-1]
    assert (summary["check_only"], summary["failed_stage"]) == (True, None)


def test_check_release_candidate_fails_on_a_failing_check(run_example, emu):
    emu.add_object(
        BASIC_WORKSPACE,
        "8600000000000000013",
        "release_candidate_workflow",
        fail_at_stage="PROD_CHECK",
        fail_message="生产检查未通过: table dws_orders has no owner",
    )
    dag_run = run_example("dataworks_check_release_candidate")

    assert task_states(dag_run) == {"check_release_candidate": "failed"}
    run = only_run(emu, "8600000000000000013")
    assert run["status"] == "Fail"
    assert emu.get_object(BASIC_WORKSPACE, "8600000000000000013")["deployed"] is False


def test_quality_gate_passes_then_deploys(run_example, emu):
    dag_run = run_example("dataworks_quality_gate")

    assert task_states(dag_run) == {"quality_gate": "success", "deploy_node": "success"}
    (instance,) = emu.data_quality_instances()
    assert (instance["task_id"], instance["status"]) == (70001, "Passed")
    assert xcom(dag_run, "quality_gate")[-1] == instance["id"]
    # triggerTime: the data interval's end
    assert instance["parameters"]["triggerTime"] == int(dag_run.data_interval_end.timestamp() * 1000)
    run = only_run(emu, "8600000000000000014")
    assert run["status"] == "Success"
    assert str(instance["id"]) in run["description"]
    assert emu.get_object(BASIC_WORKSPACE, "8600000000000000014")["deployed"] is True


def test_quality_gate_critical_blocks_the_deployment(run_example, emu):
    emu.add_data_quality_task(
        BASIC_WORKSPACE,
        70001,
        [
            {
                "id": 1,
                "name": "amount_not_negative",
                "outcome": "Critical",
                "checked_value": "3",
                "critical": {"operator": ">", "value": "0"},
            }
        ],
        name="daily_sales_checks",
    )
    dag_run = run_example("dataworks_quality_gate")

    assert task_states(dag_run) == {"quality_gate": "failed", "deploy_node": "upstream_failed"}
    assert emu.runs(object_id="8600000000000000014") == []
    results = xcom(dag_run, "quality_gate", "data_quality_results")[-1]
    assert [(r["rule_name"], r["status"], r["threshold"], r["checked_value"]) for r in results] == [
        ("amount_not_negative", "Critical", "> 0", "3")
    ]
