"""Bad arguments and bad connections fail in execute, before any remote call, naming the field."""

from __future__ import annotations

import pytest

from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator

from .support import BASIC, NODE, POLL, only_run

BAD_ARGUMENTS = {
    "empty project_id": ({"project_id": ""}, "project_id is required"),
    "blank project_id": ({"project_id": "   "}, "project_id is required"),
    "non-numeric project_id": ({"project_id": "my-workspace"}, "project_id must be a numeric"),
    "negative project_id": ({"project_id": -3}, "project_id must be a positive"),
    "missing object_id": ({"object_id": None}, "object_id is required"),
    "empty object_id": ({"object_id": ""}, "object_id is required"),
    "several object ids": ({"object_id": [NODE, "8600000000000000003"]}, r"\.expand\(object_id=\[\.\.\.\]\)"),
    "empty object id list": ({"object_id": []}, "object_id takes ONE"),
    "object id as a JSON array string": ({"object_id": f'["{NODE}"]'}, "Do not pass a JSON array as a string"),
    "comma-separated object ids": ({"object_id": f"{NODE},8600000000000000003"}, "single object ID"),
    "unknown type": ({"type": "Deploy"}, "type must be one of Online, Offline"),
    "lower-case type": ({"type": "online"}, "type must be one of Online, Offline"),
    "unknown run_mode": ({"run_mode": "Fast"}, "run_mode must be one of Normal, Auto"),
    "auto_run_until_stage without Auto": (
        {"auto_run_until_stage": "DEV"},
        "auto_run_until_stage needs run_mode='Auto'",
    ),
    "auto_run_until_stage with Normal": (
        {"auto_run_until_stage": "DEV", "run_mode": "Normal"},
        "auto_run_until_stage needs run_mode='Auto'",
    ),
    "Auto without auto_run_until_stage": ({"run_mode": "Auto"}, "run_mode='Auto' needs auto_run_until_stage"),
    "zero poll_interval": ({"poll_interval": 0}, "poll_interval must be greater than 0"),
    "negative poll_interval": ({"poll_interval": -1}, "poll_interval must be greater than 0"),
    "text poll_interval": ({"poll_interval": "10"}, "poll_interval must be a number of seconds"),
    "zero timeout": ({"timeout": 0}, "timeout must be greater than 0"),
    "negative timeout": ({"timeout": -60}, "timeout must be greater than 0"),
    "advance_until_stage not a string": ({"advance_until_stage": 3}, "advance_until_stage must be a stage code"),
    "unknown retry_policy key": ({"dataworks_retry_policy": {"retries": 3}}, "retry_policy has unknown keys"),
}


def make(**overrides):
    kwargs = {"task_id": "deploy", "object_id": NODE, "poll_interval": POLL, "deferrable": False}
    kwargs.update(overrides)
    return CreatePipelineRunOperator(**kwargs)


@pytest.mark.parametrize("mode", ["sync", "deferrable"])
@pytest.mark.parametrize(("overrides", "message"), BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_bad_argument_is_refused_before_any_call(emu, conn, task_instance, overrides, message, mode):
    with pytest.raises(ValueError, match=message):
        make(deferrable=mode == "deferrable", **overrides).execute(task_instance.context())
    assert emu.calls() == []


BAD_CONNECTIONS = {
    "missing credentials": ({"login": False}, "has no credentials"),
    "unknown auth_type": ({"auth_type": "password"}, "unknown auth_type 'password'"),
    "region without endpoint": ({"endpoint": None, "region": "xx-nowhere-1"}, "has no known DataWorks endpoint"),
    "no workspace anywhere": ({"project_id": None}, "project_id is required"),
    "sts without token": ({"auth_type": "sts"}, "needs security_token"),
}


@pytest.mark.parametrize(("change", "message"), BAD_CONNECTIONS.values(), ids=BAD_CONNECTIONS.keys())
def test_bad_connection_is_refused_before_any_call(emu, monkeypatch, task_instance, change, message):
    change = dict(change)
    project = change.pop("project_id", BASIC)
    uri = emu.connection_uri(project_id=project, **{k: v for k, v in change.items() if k != "login"})
    if change.get("login") is False:
        uri = "dataworks://@/?" + uri.split("/?", 1)[1]
    monkeypatch.setenv("AIRFLOW_CONN_DATAWORKS_DEFAULT", uri)

    with pytest.raises(ValueError, match=message) as raised:
        make().execute(task_instance.context())
    assert emu.calls() == []
    assert emu.access_key_secret not in str(raised.value)


def test_a_one_element_list_is_accepted(emu, conn, task_instance):
    result = make(object_id=[NODE]).execute(task_instance.context())
    assert result == only_run(emu, NODE)["id"]


def test_project_id_falls_back_to_the_connection(emu, conn, task_instance):
    make(project_id=None).execute(task_instance.context())
    assert only_run(emu, NODE, BASIC)["project_id"] == BASIC


def test_timedelta_timeout_and_poll_interval_are_accepted(emu, conn, task_instance):
    from datetime import timedelta

    make(poll_interval=timedelta(milliseconds=50), timeout=timedelta(minutes=1)).execute(task_instance.context())
    assert only_run(emu, NODE)["status"] == "Success"


def test_constructor_only_assigns(emu, conn):
    # nothing is validated or looked up at DAG-parse time: templates are not rendered yet
    op = make(object_id="{{ params.object_id }}", project_id="{{ params.project }}", type="{{ params.type }}")
    assert op.object_id == "{{ params.object_id }}"
    assert emu.calls() == []


def test_every_identifier_is_a_template_field():
    assert set(CreatePipelineRunOperator.template_fields) == {
        "object_id",
        "project_id",
        "type",
        "description",
        "run_mode",
        "auto_run_until_stage",
        "advance_until_stage",
        "dataworks_conn_id",
        "region",
    }


@pytest.mark.min_airflow("3.3")  # Airflow's task retry_policy
def test_airflows_own_retry_policy_is_left_to_airflow():
    from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

    from airflow_provider_dataworks.exceptions import PipelineRunFailedError

    task_policy = ExceptionRetryPolicy(rules=[RetryRule(exception=PipelineRunFailedError, action=RetryAction.FAIL)])
    op = make(retry_policy=task_policy, dataworks_retry_policy={"max_attempts": 2})
    assert op.retry_policy is task_policy
    assert op.dataworks_retry_policy == {"max_attempts": 2}


@pytest.mark.min_airflow("3.3")  # Airflow's task retry_policy
def test_our_api_policy_is_not_taken_from_retry_policy():
    # ``retry_policy`` belongs to Airflow; in default_args it reaches every operator of the DAG,
    # so the DataWorks policy is only ever read from ``dataworks_retry_policy``.
    op = make(dataworks_retry_policy=DataWorksRetryPolicy(max_attempts=3))
    assert op.dataworks_retry_policy == DataWorksRetryPolicy(max_attempts=3)
    assert op.retry_policy is None
