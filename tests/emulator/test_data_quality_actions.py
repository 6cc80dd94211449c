"""The emulator's Data Quality actions, read back through the SDK's own response models."""

from __future__ import annotations

import json
import time

import pytest
from alibabacloud_dataworks_public20240518 import models
from Tea.exceptions import TeaException

from .helpers import BASIC_PROJECT, STANDARD_PROJECT, Sdk

PASSING, WARNING, CRITICAL = 70001, 70002, 70003
TRIGGER_MS = 1_779_066_000_000


def _create(sdk: Sdk, task_id: int, parameters: dict | None = None, **extra) -> int:
    request = models.CreateDataQualityEvaluationTaskInstanceRequest(
        data_quality_evaluation_task_id=task_id,
        project_id=BASIC_PROJECT,
        parameters=json.dumps(parameters if parameters is not None else {"triggerTime": TRIGGER_MS}),
        **extra,
    )
    response = sdk("create_data_quality_evaluation_task_instance", request)
    assert response.body.request_id
    return response.body.id


def _get(sdk: Sdk, instance_id: int):
    request = models.GetDataQualityEvaluationTaskInstanceRequest(id=instance_id)
    return sdk("get_data_quality_evaluation_task_instance", request).body.data_quality_evaluation_task_instance


def test_instance_runs_then_takes_its_worst_rules_status(emu, sdk):
    emu.set_stage_seconds(0.2)
    instance_id = _create(sdk, CRITICAL)

    running = _get(sdk, instance_id)
    assert (running.id, running.status, running.results, running.finish_time) == (instance_id, "Running", [], None)
    time.sleep(0.25)
    done = _get(sdk, instance_id)

    assert done.status == "Critical"
    assert done.finish_time >= done.create_time
    assert json.loads(done.parameters) == {"triggerTime": TRIGGER_MS}
    assert (done.task.id, done.task.name, done.project_id) == (CRITICAL, "broken_sales_checks", BASIC_PROJECT)
    critical, passed = done.results
    assert (critical.status, critical.rule.name, critical.task_instance_id) == (
        "Critical",
        "amount_not_negative",
        instance_id,
    )
    thresholds = critical.rule.checking_config.thresholds
    assert (thresholds.critical.operator, thresholds.critical.value) == (">", "0")
    assert (thresholds.expected.operator, thresholds.expected.value) == ("=", "0")
    assert (critical.details[0].checked_value, critical.details[0].status) == ("17", "Critical")
    assert passed.status == "Passed"


@pytest.mark.parametrize(("task_id", "status"), [(PASSING, "Passed"), (WARNING, "Warned"), (CRITICAL, "Critical")])
def test_seeded_tasks_reach_their_status(emu, sdk, task_id, status):
    assert _get(sdk, _create(sdk, task_id)).status == status


def test_seedable_error_rule(emu, sdk):
    emu.add_data_quality_task(BASIC_PROJECT, 71000, [{"id": 1, "name": "r", "outcome": "Error"}], seconds=0)
    assert _get(sdk, _create(sdk, 71000)).status == "Error"


def test_runtime_resource_is_accepted_as_the_sdk_sends_it(emu, sdk):
    resource = models.CreateDataQualityEvaluationTaskInstanceRequestRuntimeResource(resource_group_id="rg-1", cu=1.5)
    _create(sdk, PASSING, runtime_resource=resource)
    (record,) = emu.data_quality_instances()
    assert record["runtime_resource"] == {"ResourceGroupId": "rg-1", "Cu": 1.5}


@pytest.mark.parametrize(
    ("parameters", "field"),
    [({}, "Parameters"), ({"triggerTime": "yesterday"}, "Parameters")],
)
def test_trigger_time_is_required(emu, sdk, parameters, field):
    with pytest.raises(TeaException) as raised:
        _create(sdk, PASSING, parameters)
    assert field in str(raised.value)
    assert emu.data_quality_instances() == []


def test_unknown_task_and_instance_are_not_found(emu, sdk):
    with pytest.raises(TeaException, match="NotFound"):
        _create(sdk, 79999)
    with pytest.raises(TeaException, match="NotFound"):
        _get(sdk, 123)


def test_a_task_of_another_workspace_is_not_found(emu, sdk):
    emu.add_data_quality_task(STANDARD_PROJECT, 72000, [{"id": 1, "name": "r"}])
    with pytest.raises(TeaException, match="NotFound"):
        _create(sdk, 72000)


def test_list_filters_by_task_and_create_time(emu, sdk):
    first = _create(sdk, PASSING)
    time.sleep(0.01)
    since = int(time.time() * 1000)
    time.sleep(0.01)
    second = _create(sdk, PASSING)
    _create(sdk, WARNING)

    request = models.ListDataQualityEvaluationTaskInstancesRequest(
        project_id=BASIC_PROJECT, data_quality_evaluation_task_id=PASSING, page_size=100, page_number=1
    )
    paging = sdk("list_data_quality_evaluation_task_instances", request).body.paging_info
    assert [i.id for i in paging.data_quality_evaluation_task_instances] == [second, first]
    assert paging.total_count == 2
    request.create_time_from = since
    paging = sdk("list_data_quality_evaluation_task_instances", request).body.paging_info
    assert [i.id for i in paging.data_quality_evaluation_task_instances] == [second]
