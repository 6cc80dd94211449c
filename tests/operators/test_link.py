"""The extra link: built while the task runs, read back only from XCom."""

from __future__ import annotations

from unittest import mock

from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import TaskInstanceKey, XCom

from airflow_provider_dataworks.get_provider_info import get_provider_info
from airflow_provider_dataworks.operators.pipeline_run import CreatePipelineRunOperator, DataWorksPipelineRunLink

KEY = TaskInstanceKey(dag_id="d", task_id="deploy", run_id="r", try_number=1, map_index=-1)
URL = "https://dataworks.data.aliyun.com/cn-hangzhou/ide?defaultProjectId=10000"


def test_the_link_is_attached_to_the_operator_with_its_name():
    links = CreatePipelineRunOperator(task_id="deploy", object_id="1").operator_extra_links
    assert [type(link) for link in links] == [DataWorksPipelineRunLink]
    assert links[0].name == "DataWorks Pipeline Run"


def test_get_link_reads_only_the_url_xcom():
    # no connection is configured here: rendering the link must not need one
    with mock.patch.object(XCom, "get_value", autospec=True, return_value=URL) as get_value:
        assert DataWorksPipelineRunLink().get_link(mock.sentinel.operator, ti_key=KEY) == URL
    get_value.assert_called_once_with(ti_key=KEY, key="pipeline_run_url")


def test_get_link_is_empty_before_the_run_exists():
    with mock.patch.object(XCom, "get_value", autospec=True, return_value=None):
        assert DataWorksPipelineRunLink().get_link(mock.sentinel.operator, ti_key=KEY) == ""


def test_provider_info_names_the_link_and_modules():
    info = get_provider_info()
    assert [import_string(path) for path in info["extra-links"]] == [DataWorksPipelineRunLink]
    for section in ("operators", "sensors", "triggers"):
        for module in info[section][0]["python-modules"]:
            __import__(module)
