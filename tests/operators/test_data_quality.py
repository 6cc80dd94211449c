"""The DataWorks Data Quality gate, through the real SDK against the emulator, blocking and deferred."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from airflow_provider_dataworks.exceptions import (
    DataQualityAmbiguousCreateError,
    DataQualityFailedError,
    DataQualityTimeoutError,
    DataWorksError,
    InvalidTriggerEventError,
)
from airflow_provider_dataworks.operators.data_quality import STATE_KEY, DataQualityEvaluationOperator
from airflow_provider_dataworks.testing.faults import COMMIT_THEN_DROP, DROP, HTML_502, HTTP_ERROR
from airflow_provider_dataworks.triggers.data_quality import (
    DataQualityEvaluationTrigger,
    resolve_data_quality_event,
)

from .support import BASIC, FAST_RETRIES, POLL, count_calls, only_event, rebuild, run_task

PASSING, WARNING, CRITICAL = 70001, 70002, 70003  # seeded in default_seed.json
ERRORING = 70009
TRIGGER_TIME = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)
CREATE = "CreateDataQualityEvaluationTaskInstance"
GET = "GetDataQualityEvaluationTaskInstance"
LIST = "ListDataQualityEvaluationTaskInstances"
MODES = pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferrable"])


def gate(**kwargs):
    kwargs.setdefault("task_id", "quality_gate")
    kwargs.setdefault("poll_interval", POLL)
    kwargs.setdefault("trigger_time", TRIGGER_TIME)
    kwargs.setdefault("dataworks_retry_policy", FAST_RETRIES)
    return DataQualityEvaluationOperator(**kwargs)


@pytest.fixture
def slow(emu):
    """Instances run 0.3 s, so the gate waits (and defers) before they finish."""
    emu.set_stage_seconds(0.3)


@pytest.fixture
def erroring_task(emu):
    emu.add_data_quality_task(
        BASIC,
        ERRORING,
        [
            {
                "id": 1,
                "name": "freshness",
                "outcome": "Error",
                "checked_value": "n/a",
                "critical": {"operator": ">", "value": "24"},
            },
            {
                "id": 2,
                "name": "row_count",
                "outcome": "Warned",
                "checked_value": "9",
                "warned": {"operator": "<", "value": "10"},
            },
        ],
        name="erroring_checks",
    )
    return ERRORING


@MODES
def test_passed_evaluation_opens_the_gate(emu, conn, task_instance, slow, deferrable):
    events: list[dict] = []
    result = run_task(
        lambda: gate(data_quality_evaluation_task_id=PASSING, deferrable=deferrable),
        task_instance.context(),
        events=events,
    )

    # deferred: exactly one trigger event, about this instance; blocking: none
    assert [e["status"] for e in events] == (["success"] if deferrable else [])

    (instance,) = emu.data_quality_instances()
    assert result == instance["id"] == task_instance.state.xcom["data_quality_instance_id"]
    assert instance["task_id"] == PASSING and instance["status"] == "Passed"
    assert instance["parameters"] == {"triggerTime": int(TRIGGER_TIME.timestamp() * 1000)}
    results = task_instance.state.xcom["data_quality_results"]
    assert [(r["rule_name"], r["status"]) for r in results] == [
        ("sales_row_count", "Passed"),
        ("order_id_unique", "Passed"),
    ]
    assert count_calls(emu, CREATE) == 1


@MODES
def test_warned_evaluation_opens_the_gate_by_default(emu, conn, task_instance, slow, deferrable, capsys):
    run_task(lambda: gate(data_quality_evaluation_task_id=WARNING, deferrable=deferrable), task_instance.context())

    assert emu.data_quality_instances()[0]["status"] == "Warned"
    (rule,) = task_instance.state.xcom["data_quality_results"]
    assert (rule["rule_name"], rule["threshold"], rule["checked_value"]) == ("sales_row_count", "< 100", "42")


@MODES
def test_warned_evaluation_fails_with_fail_on_warn(emu, conn, task_instance, slow, deferrable):
    with pytest.raises(DataQualityFailedError) as raised:
        run_task(
            lambda: gate(data_quality_evaluation_task_id=WARNING, fail_on_warn=True, deferrable=deferrable),
            task_instance.context(),
        )

    text = str(raised.value)
    assert "ended Warned" in text
    assert "rule 'sales_row_count' (7000201) Warned: actual value 42, warned threshold < 100" in text


@MODES
def test_critical_evaluation_fails_naming_the_rules_that_did_not_pass(emu, conn, task_instance, slow, deferrable):
    with pytest.raises(DataQualityFailedError) as raised:
        run_task(lambda: gate(data_quality_evaluation_task_id=CRITICAL, deferrable=deferrable), task_instance.context())

    text = str(raised.value)
    assert "of task 70003 (broken_sales_checks) ended Critical" in text
    assert "rule 'amount_not_negative' (7000301) Critical: actual value 17, critical threshold > 0" in text
    assert "expected = 0" in text
    assert "sales_row_count" not in text  # it passed
    assert [r["status"] for r in task_instance.state.xcom["data_quality_results"]] == ["Critical", "Passed"]


@MODES
def test_error_evaluation_fails_even_when_a_rule_only_warned(emu, conn, task_instance, slow, erroring_task, deferrable):
    with pytest.raises(DataQualityFailedError) as raised:
        run_task(
            lambda: gate(data_quality_evaluation_task_id=erroring_task, deferrable=deferrable), task_instance.context()
        )

    text = str(raised.value)
    assert "ended Error" in text
    assert "rule 'freshness' (1) Error: actual value n/a" in text
    assert "rule 'row_count' (2) Warned: actual value 9, warned threshold < 10" in text


TRANSIENT = pytest.mark.parametrize(
    "fault",
    [
        {"kind": HTTP_ERROR, "status": 429},
        {"kind": HTTP_ERROR, "status": 503},
        {"kind": HTML_502},
        {"kind": DROP},
    ],
    ids=["throttled", "503", "html-502", "dropped"],
)


@TRANSIENT
@MODES
def test_transient_read_faults_are_retried(emu, conn, task_instance, slow, fault, deferrable):
    emu.inject_fault(GET, count=2, **fault)

    run_task(lambda: gate(data_quality_evaluation_task_id=PASSING, deferrable=deferrable), task_instance.context())

    assert len(emu.data_quality_instances()) == 1
    assert count_calls(emu, CREATE) == 1


def test_a_throttled_create_is_repeated_it_certainly_did_not_run(emu, conn, task_instance):
    emu.inject_fault(CREATE, HTTP_ERROR, count=2, status=429)

    gate(data_quality_evaluation_task_id=PASSING).execute(task_instance.context())

    assert len(emu.data_quality_instances()) == 1
    assert count_calls(emu, CREATE) == 3


@pytest.mark.parametrize(
    "fault",
    [{"kind": HTTP_ERROR, "status": 503}, {"kind": HTML_502}, {"kind": DROP}],
    ids=["503", "html-502", "dropped"],
)
def test_an_ambiguous_create_that_did_not_run_fails_the_try_and_the_retry_starts_once(emu, conn, task_instance, fault):
    # 5xx or no answer after the request was sent: it may have run, so it is not repeated blindly.
    emu.inject_fault(CREATE, **fault)
    with pytest.raises(DataQualityAmbiguousCreateError, match="may or may not have started"):
        gate(data_quality_evaluation_task_id=PASSING).execute(task_instance.context(1))
    assert emu.data_quality_instances() == []

    gate(data_quality_evaluation_task_id=PASSING).execute(task_instance.context(2))

    assert len(emu.data_quality_instances()) == 1


def test_a_spent_retry_budget_fails_the_try_without_starting_twice(emu, conn, task_instance):
    emu.inject_fault(GET, HTTP_ERROR, count=0, status=503)
    with pytest.raises(DataWorksError, match="503|ServiceUnavailable"):
        gate(data_quality_evaluation_task_id=PASSING).execute(task_instance.context())
    assert len(emu.data_quality_instances()) == 1


def test_a_lost_create_is_found_again_not_repeated(emu, conn, task_instance):
    # DataWorks starts the evaluation but the answer is lost: the client cannot know, so it must look.
    emu.inject_fault(CREATE, COMMIT_THEN_DROP)

    result = gate(data_quality_evaluation_task_id=PASSING).execute(task_instance.context())

    (instance,) = emu.data_quality_instances()
    assert result == instance["id"]
    assert count_calls(emu, CREATE) == 1
    assert count_calls(emu, LIST) >= 1


@pytest.mark.min_airflow("3.3")  # the gate's only run memory is the task state store (README: Compatibility)
def test_a_retry_after_a_lost_create_adopts_the_evaluation(emu, conn, task_instance):
    # The lost create and every lookup of the first try fail; the retry finds the instance.
    emu.inject_fault(CREATE, COMMIT_THEN_DROP)
    emu.inject_fault(LIST, HTTP_ERROR, count=5, status=400, code="InvalidParameter")
    with pytest.raises(DataQualityAmbiguousCreateError, match="may or may not have started"):
        gate(data_quality_evaluation_task_id=PASSING).execute(task_instance.context(1))
    assert task_instance.state.store[STATE_KEY]["instance_id"] is None

    result = gate(data_quality_evaluation_task_id=PASSING).execute(task_instance.context(2))

    (instance,) = emu.data_quality_instances()
    assert result == instance["id"]
    assert count_calls(emu, CREATE) == 1
    assert task_instance.state.store[STATE_KEY]["instance_id"] == instance["id"]


@pytest.mark.min_airflow("3.3")  # the gate's only run memory is the task state store (README: Compatibility)
def test_a_retry_while_the_evaluation_runs_reattaches(emu, conn, task_instance):
    emu.set_stage_seconds(0.6)
    with pytest.raises(DataQualityTimeoutError, match="still Running"):
        gate(data_quality_evaluation_task_id=PASSING, timeout=0.1).execute(task_instance.context(1))

    result = gate(data_quality_evaluation_task_id=PASSING).execute(task_instance.context(2))

    (instance,) = emu.data_quality_instances()
    assert result == instance["id"] and instance["status"] == "Passed"


def test_a_retry_after_a_failed_evaluation_starts_a_new_one(emu, conn, task_instance):
    with pytest.raises(DataQualityFailedError):
        gate(data_quality_evaluation_task_id=CRITICAL).execute(task_instance.context(1))
    with pytest.raises(DataQualityFailedError):
        gate(data_quality_evaluation_task_id=CRITICAL).execute(task_instance.context(2))

    assert len(emu.data_quality_instances()) == 2


def test_resource_group_and_parameters_reach_dataworks(emu, conn, task_instance):
    gate(
        data_quality_evaluation_task_id=str(PASSING),
        parameters={"bizdate": "20260517"},
        resource_group_id="Serverless_res_group_524257424564736_6831777003XXXXX",
        cu=2.0,
    ).execute(task_instance.context())

    (instance,) = emu.data_quality_instances()
    assert instance["parameters"] == {"bizdate": "20260517", "triggerTime": int(TRIGGER_TIME.timestamp() * 1000)}
    assert instance["runtime_resource"] == {
        "ResourceGroupId": "Serverless_res_group_524257424564736_6831777003XXXXX",
        "Cu": 2.0,
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"data_quality_evaluation_task_id": None}, "data_quality_evaluation_task_id"),
        ({"data_quality_evaluation_task_id": "sales"}, "data_quality_evaluation_task_id"),
        ({"data_quality_evaluation_task_id": PASSING, "trigger_time": "yesterday"}, "trigger_time"),
        ({"data_quality_evaluation_task_id": PASSING, "poll_interval": 0}, "poll_interval"),
        ({"data_quality_evaluation_task_id": PASSING, "parameters": "x=1"}, "parameters"),
        ({"data_quality_evaluation_task_id": PASSING, "project_id": "abc"}, "project_id"),
    ],
)
def test_bad_input_names_the_field_before_any_call(emu, conn, task_instance, kwargs, field):
    with pytest.raises(ValueError, match=field):
        gate(**kwargs).execute(task_instance.context())
    assert emu.calls() == []


def test_unknown_task_fails_with_dataworks_message(emu, conn, task_instance):
    with pytest.raises(DataWorksError, match="70404 does not exist"):
        gate(data_quality_evaluation_task_id=70404).execute(task_instance.context())


# --------------------------------------------------------------------- the trigger and its event


def test_trigger_round_trips_and_yields_one_event(emu, conn, slow):
    instance_id = _start(emu, conn, PASSING)
    trigger = DataQualityEvaluationTrigger(instance_id, poll_interval=POLL, retry_policy=FAST_RETRIES)
    classpath, kwargs = rebuild(trigger).serialize()
    assert (classpath, kwargs) == trigger.serialize()
    json.dumps(kwargs)  # JSON primitives only

    event = only_event(trigger)
    assert (event["status"], event["instance_id"]) == ("success", instance_id)
    assert resolve_data_quality_event(event, instance_id=instance_id).status == "Passed"
    with pytest.raises(InvalidTriggerEventError, match="reported failed, but evaluation"):
        resolve_data_quality_event({**event, "status": "failed"}, instance_id=instance_id)
    assert count_calls(emu, GET) >= 1


def test_trigger_times_out_naming_the_instance(emu, conn):
    emu.set_stage_seconds(30)
    instance_id = _start(emu, conn, PASSING)
    import time

    event = only_event(DataQualityEvaluationTrigger(instance_id, poll_interval=POLL, end_time=time.time() + 0.2))
    assert event["status"] == "timeout"
    with pytest.raises(DataQualityTimeoutError, match=f"{instance_id} was still Running"):
        resolve_data_quality_event(event, instance_id=instance_id)


def test_trigger_reports_a_spent_retry_budget_as_error(emu, conn):
    instance_id = _start(emu, conn, PASSING)
    emu.inject_fault(GET, HTTP_ERROR, count=0, status=500)
    event = only_event(DataQualityEvaluationTrigger(instance_id, poll_interval=POLL, retry_policy=FAST_RETRIES))
    assert event["status"] == "error"
    with pytest.raises(DataWorksError, match=f"Could not read Data Quality evaluation {instance_id}"):
        resolve_data_quality_event(event, instance_id=instance_id)


@pytest.mark.parametrize(
    "event",
    [
        None,
        "success",
        {"status": "success", "instance_id": 1, "message": ""},
        {"status": "done", "instance_id": 1, "message": "", "evaluation": None},
        {"status": "success", "instance_id": 2, "message": "", "evaluation": None},
        {"status": "success", "instance_id": 1, "message": "", "evaluation": None},
        {
            "status": "success",
            "instance_id": 1,
            "message": "",
            "evaluation": {"id": 1, "status": "Critical", "results": []},
        },
        {
            "status": "failed",
            "instance_id": 1,
            "message": "",
            "evaluation": {"id": 1, "status": "Passed", "results": []},
        },
        {
            "status": "success",
            "instance_id": 1,
            "message": "",
            "evaluation": {"id": 1, "status": "Running", "results": []},
        },
    ],
    ids=[
        "none",
        "not-a-mapping",
        "no-evaluation-key",
        "unknown-status",
        "other-instance",
        "success-without-proof",
        "success-but-critical",
        "failed-but-passed",
        "success-but-running",
    ],
)
def test_invalid_events_are_never_read_as_success(event):
    with pytest.raises(InvalidTriggerEventError):
        resolve_data_quality_event(event, instance_id=1)


def test_a_warned_success_event_is_refused_under_fail_on_warn():
    event = {
        "status": "success",
        "instance_id": 1,
        "message": "",
        "evaluation": {"id": 1, "status": "Warned", "results": []},
    }
    assert resolve_data_quality_event(event, instance_id=1).status == "Warned"
    with pytest.raises(InvalidTriggerEventError, match="fail_on_warn=True"):
        resolve_data_quality_event(event, instance_id=1, fail_on_warn=True)


def _start(emu, conn, task_id: int) -> int:
    from airflow_provider_dataworks.hooks.data_quality import DataWorksDataQualityHook

    return DataWorksDataQualityHook(conn).create_data_quality_evaluation_task_instance(
        task_id, trigger_time_ms=int(TRIGGER_TIME.timestamp() * 1000)
    )
