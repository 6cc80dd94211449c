"""The minimal RAM policy of docs/ram-policy.json names every DataWorks action the provider can send, and no other.

The source scan finds every call site of the hooks' one way out (``_call``/``_acall``) and insists
that each names its action as a literal, so an action added later cannot slip past the list. The
emulator test then sends each action through the real SDK and checks the calls DataWorks received.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

from airflow_provider_dataworks.hooks.data_quality import DataWorksDataQualityHook
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "airflow_provider_dataworks"
POLICY = ROOT / "docs" / "ram-policy.json"
#: the hooks' methods that send one DataWorks action, named by their first argument
SENDERS = {"_call", "_acall"}
DQ_TASK = 70001  # a Data Quality evaluation task of the emulator's default seed
WORKFLOW = "8600000000000000001"


def policy_actions() -> set[str]:
    document = json.loads(POLICY.read_text(encoding="utf-8"))
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == "*"
    actions = statement["Action"]
    assert len(actions) == len(set(actions)), "an action is listed twice"
    assert all(action.startswith("dataworks:") for action in actions)
    return {action.removeprefix("dataworks:") for action in actions}


def sent_actions() -> dict[str, list[str]]:
    """``{action: [where it is sent]}`` for every call of a sender outside the emulator (``testing/``)."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "testing" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in SENDERS:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            first = node.args[0] if node.args else None
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                f"{where} sends an action that is not a string literal: the policy check cannot see it"
            )
            found.setdefault(first.value, []).append(where)
    return found


def test_the_policy_lists_exactly_the_actions_the_hooks_send():
    sent = sent_actions()
    # the scan really sees the call sites (a renamed sender would otherwise make this pass on nothing)
    assert {"CreatePipelineRun", "ExecPipelineRunStage", "GetProject"} <= set(sent)
    missing = {action: sent[action] for action in set(sent) - policy_actions()}
    assert not missing, f"actions the provider sends but docs/ram-policy.json does not allow: {missing}"
    unused = policy_actions() - set(sent)
    assert not unused, f"docs/ram-policy.json allows actions the provider never sends: {sorted(unused)}"


def test_every_action_sent_to_the_emulator_is_in_the_policy(dataworks_emulator, monkeypatch):
    emulator = dataworks_emulator
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", emulator.connection_uri(project_id=10000))
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_NO_WORKSPACE", emulator.connection_uri(project_id=None))

    hook = DataWorksHook()
    assert hook.test_connection()[0]  # GetProject
    assert DataWorksHook(dataworks_conn_id="dataworks_no_workspace").test_connection()[0]  # ListProjects
    run_id = hook.create_pipeline_run(WORKFLOW, description="ram policy check")
    final = hook.wait_for_pipeline_run(run_id, poll_interval=0.05, deadline=time.time() + 30, advance_stages=True)
    assert final.status == "Success"
    assert hook.list_pipeline_runs(object_id=WORKFLOW)
    assert hook.list_pipeline_run_items(run_id)
    abolished = hook.create_pipeline_run(WORKFLOW, description="ram policy check, abolished")
    hook.abolish_pipeline_run(abolished)

    quality = DataWorksDataQualityHook()
    instance = quality.create_data_quality_evaluation_task_instance(DQ_TASK, trigger_time_ms=int(time.time() * 1000))
    quality.get_data_quality_evaluation_task_instance(instance)
    assert quality.list_data_quality_evaluation_task_instances(DQ_TASK)

    received = {call["action"] for call in emulator.calls()}
    assert received == set(sent_actions()), "this test should send every action the provider can send"
    assert received <= policy_actions()
