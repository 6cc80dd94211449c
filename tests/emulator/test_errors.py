"""Every error answer, as the real SDK raises it (code, HTTP status, original message)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models
from Tea.exceptions import TeaException

from airflow_provider_dataworks.testing import DataWorksEmulator

from .helpers import (
    APPROVAL_NODE,
    BASIC_PROJECT,
    NODE,
    WORKFLOW_CHILD,
    Sdk,
    make_client,
)


def raised(call: Any, *args: Any) -> TeaException:
    with pytest.raises(TeaException) as info:
        call(*args)
    return info.value


def assert_error(err: TeaException, status: int, code: str, message: str) -> None:
    assert (err.status_code, err.code) == (status, code)
    assert message in err.data["Message"], err.data["Message"]
    assert err.data["RequestId"] == err.request_id
    assert {"HostId", "Recommend"} <= set(err.data)


def test_unknown_action_is_404(sdk: Sdk) -> None:
    err = raised(sdk.raw, "DeleteEverything", "POST", None, {"ProjectId": BASIC_PROJECT})
    assert_error(err, 404, "InvalidAction.NotFound", "Specified api is not found")


@pytest.mark.parametrize(
    ("request_", "missing"),
    [
        (models.CreatePipelineRunRequest(type="Online", object_ids=[NODE]), "ProjectId"),
        (models.CreatePipelineRunRequest(project_id=BASIC_PROJECT, object_ids=[NODE]), "Type"),
        (models.CreatePipelineRunRequest(project_id=BASIC_PROJECT, type="Online"), "ObjectIds"),
    ],
    ids=["ProjectId", "Type", "ObjectIds"],
)
def test_missing_parameter_is_named(sdk: Sdk, request_: Any, missing: str) -> None:
    err = raised(sdk, "create_pipeline_run", request_)
    assert_error(
        err,
        400,
        "MissingParameter",
        f'The input parameter "{missing}" that is mandatory for processing this request is not supplied.',
    )


def test_missing_run_id_is_named(sdk: Sdk) -> None:
    err = raised(sdk, "get_pipeline_run", models.GetPipelineRunRequest(project_id=BASIC_PROJECT))
    assert_error(err, 400, "MissingParameter", '"Id"')


@pytest.mark.parametrize(
    ("fields", "value"),
    [
        ({"type": "Deploy"}, "Deploy"),
        ({"type": "Online", "run_mode": "Fast"}, "Fast"),
        ({"type": "Online", "run_mode": "Auto", "auto_run_until_stage": "NOPE"}, "NOPE"),
    ],
    ids=["Type", "RunMode", "AutoRunUntilStage-unknown"],
)
def test_invalid_value_is_named(sdk: Sdk, fields: dict[str, str], value: str) -> None:
    request = models.CreatePipelineRunRequest(project_id=BASIC_PROJECT, object_ids=[NODE], **fields)
    err = raised(sdk, "create_pipeline_run", request)
    assert_error(err, 400, "InvalidParameter", f'value "{value}"')


def test_auto_mode_without_auto_run_until_stage_is_a_missing_parameter(sdk: Sdk, emu: DataWorksEmulator) -> None:
    # The SDK's model: RunMode Auto "must be used together with the AutoRunUntilStage parameter".
    request = models.CreatePipelineRunRequest(
        project_id=BASIC_PROJECT, type="Online", object_ids=[NODE], run_mode="Auto"
    )
    err = raised(sdk, "create_pipeline_run", request)
    assert_error(err, 400, "MissingParameter", 'The input parameter "AutoRunUntilStage" that is mandatory')
    assert "RunMode Auto" in err.data["Message"]
    assert emu.runs() == []


def test_auto_run_until_stage_of_another_template_is_invalid(sdk: Sdk, emu: DataWorksEmulator) -> None:
    # DEV is a stage of standard-mode runs; this basic-mode run has none.
    request = models.CreatePipelineRunRequest(
        project_id=BASIC_PROJECT, type="Online", object_ids=[NODE], run_mode="Auto", auto_run_until_stage="DEV"
    )
    err = raised(sdk, "create_pipeline_run", request)
    assert_error(err, 400, "InvalidParameter", '"AutoRunUntilStage" value "DEV"')
    assert emu.runs() == []


def test_auto_run_until_stage_without_auto_mode_is_ignored(sdk: Sdk, emu: DataWorksEmulator) -> None:
    # The SDK's field doc: AutoRunUntilStage "takes effect only when RunMode=Auto" (ignored, not refused).
    for until in ("PROD", "NOPE"):
        request = models.CreatePipelineRunRequest(
            project_id=BASIC_PROJECT, type="Online", object_ids=[NODE], auto_run_until_stage=until
        )
        run_id = sdk("create_pipeline_run", request).body.id
        pipeline = sdk.get(run_id)
        assert [(s.code, s.status) for s in pipeline.stages][1:] == [("PROD_CHECK", "Init"), ("PROD", "Init")]
        record = emu.run(run_id)
        assert record["run_mode"] == "Normal" and record["auto_run_until_stage"] is None
    assert emu.calls("ExecPipelineRunStage") == []


def test_invalid_status_filter_and_page_size(sdk: Sdk) -> None:
    err = raised(sdk, "list_pipeline_runs", models.ListPipelineRunsRequest(project_id=BASIC_PROJECT, status="Done"))
    assert_error(err, 400, "InvalidParameter", '"Status" value "Done"')
    err = raised(sdk, "list_pipeline_runs", models.ListPipelineRunsRequest(project_id=BASIC_PROJECT, page_size=101))
    assert_error(err, 400, "InvalidParameter", '"PageSize" value "101"')


def test_unknown_project_is_forbidden(sdk: Sdk) -> None:
    request = models.CreatePipelineRunRequest(project_id=424242, type="Online", object_ids=[NODE])
    assert_error(raised(sdk, "create_pipeline_run", request), 403, "Forbidden.Access", "424242")
    assert_error(raised(sdk, "get_project", models.GetProjectRequest(id=424242)), 403, "Forbidden.Access", "424242")


def test_unknown_object_lists_ids_as_received(sdk: Sdk) -> None:
    request = models.CreatePipelineRunRequest(
        project_id=BASIC_PROJECT, type="Online", object_ids=['["7567482277219412494"]']
    )
    err = raised(sdk, "create_pipeline_run", request)
    assert_error(err, 400, "Invalid.Param.ObjectNotFound", "")
    assert err.data["Message"] == '未找到发布对象: [["7567482277219412494"]]'


def test_child_node_of_a_workflow_is_not_deployable(sdk: Sdk, emu: DataWorksEmulator) -> None:
    request = models.CreatePipelineRunRequest(project_id=BASIC_PROJECT, type="Online", object_ids=[WORKFLOW_CHILD])
    err = raised(sdk, "create_pipeline_run", request)
    assert err.data["Message"] == f"未找到发布对象: [{WORKFLOW_CHILD}]"
    assert emu.runs() == []


def test_object_not_found_code_is_configurable() -> None:
    with DataWorksEmulator(object_not_found_code="InvalidParameter.NotExists") as emu:
        client = make_client(emu)
        request = models.CreatePipelineRunRequest(project_id=BASIC_PROJECT, type="Online", object_ids=["1"])
        err = raised(client.create_pipeline_run, request)
    assert (err.code, err.data["Message"]) == ("InvalidParameter.NotExists", "未找到发布对象: [1]")


def test_unknown_run_is_404(sdk: Sdk) -> None:
    err = raised(sdk.get, "no-such-run")
    assert_error(err, 404, "InvalidPipelineRun.NotFound", "no-such-run")


def test_run_of_another_project_is_not_found(sdk: Sdk) -> None:
    run_id = sdk.create()
    err = raised(sdk.get, run_id, 20000)
    assert_error(err, 404, "InvalidPipelineRun.NotFound", run_id)


def test_stage_out_of_order_or_repeated(sdk: Sdk) -> None:
    run_id = sdk.create()
    assert_error(raised(sdk.exec, run_id, "PROD"), 400, "Invalid.Stage.Order", "PROD")
    sdk.exec(run_id, "PROD_CHECK")
    assert_error(raised(sdk.exec, run_id, "PROD_CHECK"), 400, "Invalid.Stage.Order", "PROD_CHECK")
    assert_error(raised(sdk.exec, run_id, "BUILD_PACKAGE"), 400, "Invalid.Stage.Order", "BUILD_PACKAGE")


def test_exec_while_previous_stage_still_runs(emu: DataWorksEmulator, sdk: Sdk) -> None:
    emu.set_stage_seconds(30)
    run_id = sdk.create()
    assert_error(raised(sdk.exec, run_id, "PROD_CHECK"), 400, "Invalid.Stage.Order", "PROD_CHECK")


def test_unknown_stage_code_is_invalid(sdk: Sdk) -> None:
    run_id = sdk.create()
    assert_error(raised(sdk.exec, run_id, "QA"), 400, "InvalidParameter", '"Code" value "QA"')


def test_exec_and_abolish_of_finished_run(sdk: Sdk) -> None:
    run_id = sdk.create()
    sdk("abolish_pipeline_run", models.AbolishPipelineRunRequest(project_id=BASIC_PROJECT, id=run_id))
    err = raised(sdk.exec, run_id, "PROD_CHECK")
    assert_error(err, 400, "Invalid.Pipeline.NotRunning", "流水线不是正在运行")
    assert err.data["Message"] == "流水线不是正在运行"
    err = raised(sdk, "abolish_pipeline_run", models.AbolishPipelineRunRequest(project_id=BASIC_PROJECT, id=run_id))
    assert_error(err, 400, "Invalid.Pipeline.NotRunning", "流水线不是正在运行")


def test_manual_approval_stage_is_accepted_not_refused(sdk: Sdk) -> None:
    # Approval waits show in the run's stages (held Running), never as an error answer.
    run_id = sdk.create(APPROVAL_NODE)
    assert sdk.exec(run_id, "PROD_CHECK") is True
    assert sdk.get(run_id).stages[1].status == "Running"


def test_unknown_access_key(emu: DataWorksEmulator, sdk: Sdk) -> None:
    client = make_client(emu, sdk_algorithm(sdk), access_key_id="nobody")
    err = raised(Sdk(client, sdk.use_async).get, "x")
    assert_error(err, 404, "InvalidAccessKeyId.NotFound", "access key is not found")


def test_wrong_secret_is_signature_mismatch(emu: DataWorksEmulator, sdk: Sdk) -> None:
    client = make_client(emu, sdk_algorithm(sdk), access_key_secret="not-the-secret")
    err = raised(Sdk(client, sdk.use_async).get, "x")
    assert_error(err, 400, "SignatureDoesNotMatch", "signature is not matched")


def test_credential_limited_to_projects(emu: DataWorksEmulator) -> None:
    emu.add_credential("limited-ak", "limited-secret", account_id="2000000000000001", projects=[20000])
    sdk = Sdk(make_client(emu, access_key_id="limited-ak", access_key_secret="limited-secret"), False)
    request = models.CreatePipelineRunRequest(project_id=BASIC_PROJECT, type="Online", object_ids=[NODE])
    assert_error(raised(sdk, "create_pipeline_run", request), 403, "Forbidden.Access", str(BASIC_PROJECT))
    run_id = sdk.create("8600000000000000023", 20000)
    assert sdk.get(run_id, 20000).creator == "2000000000000001"
    listed = sdk("list_projects", models.ListProjectsRequest()).body.paging_info
    assert [p.id for p in listed.projects] == [20000]


def test_error_body_is_json_with_request_id_header(sdk: Sdk) -> None:
    err = raised(sdk.get, "missing")
    assert json.dumps(err.data)
    assert err.data["Recommend"].startswith("https://api.alibabacloud.com/troubleshoot?q=InvalidPipelineRun.NotFound")


def sdk_algorithm(sdk: Sdk) -> str | None:
    return sdk.client._signature_algorithm
