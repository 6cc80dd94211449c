"""Where the API pages speak, the emulator follows them: Init phase, exec faults, early approvals, STS.

Everything goes through the real SDK (or the real credentials library for STS) over HTTP.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from alibabacloud_credentials.exceptions import CredentialException
from alibabacloud_credentials.provider import OIDCRoleArnCredentialsProvider, RamRoleArnCredentialsProvider
from alibabacloud_dataworks_public20240518 import models
from Tea.exceptions import TeaException

from airflow_provider_dataworks.testing import DataWorksEmulator

from .helpers import APPROVAL_NODE, BASIC_PROJECT, NODE, Sdk, make_client

ROLE_ARN = "acs:ram::1379463177660000:role/deployer"


def exec_stage(sdk: Sdk, run_id: str, code: str) -> object:
    return sdk(
        "exec_pipeline_run_stage", models.ExecPipelineRunStageRequest(project_id=BASIC_PROJECT, id=run_id, code=code)
    )


def test_a_new_run_is_init_then_its_build_starts_by_itself(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    emu.set_init_seconds(0.3)
    run_id = sync_sdk.create(NODE)

    pipeline = sync_sdk.get(run_id)
    assert pipeline.status == "Init"
    assert [s.status for s in pipeline.stages] == ["Init", "Init", "Init"]
    # not running yet: an execution is refused as on a run that is not running
    with pytest.raises(TeaException) as raised:
        exec_stage(sync_sdk, run_id, "BUILD_PACKAGE")
    assert raised.value.statusCode == 400 and "流水线不是正在运行" in raised.value.message

    time.sleep(0.35)
    pipeline = sync_sdk.get(run_id)
    assert pipeline.status == "Running"
    assert [s.status for s in pipeline.stages] == ["Success", "Init", "Init"]
    assert emu.run(run_id)["stages"][0]["start_time"] >= emu.run(run_id)["create_time"] + 300


def test_an_init_run_can_be_abolished_and_reports_termination(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    emu.set_init_seconds(5)
    run_id = sync_sdk.create(NODE)
    sync_sdk("abolish_pipeline_run", models.AbolishPipelineRunRequest(project_id=BASIC_PROJECT, id=run_id))

    pipeline = sync_sdk.get(run_id)
    assert pipeline.status == "Termination"
    assert emu.run(run_id)["stages"][0]["start_time"] is None


def test_the_init_duration_is_part_of_the_info_and_reset_restores_it(emu: DataWorksEmulator) -> None:
    default = DataWorksEmulator().init_seconds
    emu.set_init_seconds(2.5)
    assert DataWorksEmulator.attach(emu.url).init_seconds == 2.5
    emu.reset()
    assert DataWorksEmulator.attach(emu.url).init_seconds == default


def test_not_started_fault_answers_success_false_and_leaves_the_stage(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    run_id = sync_sdk.create(NODE)
    emu.inject_fault("ExecPipelineRunStage", kind="not_started")

    assert exec_stage(sync_sdk, run_id, "PROD_CHECK").body.success is False
    assert sync_sdk.get(run_id).stages[1].status == "Init"
    assert exec_stage(sync_sdk, run_id, "PROD_CHECK").body.success is True
    assert sync_sdk.get(run_id).stages[1].status == "Success"
    assert [c["fault"] for c in emu.calls("ExecPipelineRunStage")] == ["not_started", None]


def test_a_one_off_400_on_exec_passes(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    run_id = sync_sdk.create(NODE)
    emu.inject_fault("ExecPipelineRunStage", status=400, code="Invalid.Stage.NotReady")

    with pytest.raises(TeaException) as raised:
        exec_stage(sync_sdk, run_id, "PROD_CHECK")
    assert raised.value.code == "Invalid.Stage.NotReady"
    assert exec_stage(sync_sdk, run_id, "PROD_CHECK").body.success is True


def test_an_approval_without_start_lifts_the_hold_only(sync_sdk: Sdk, emu: DataWorksEmulator) -> None:
    run_id = sync_sdk.create(APPROVAL_NODE)

    record = emu.approve(run_id, "PROD_CHECK", start=False)

    assert [s["status"] for s in record["stages"]][1] == "Init"
    assert record["stages"][1]["approved"] is True
    assert exec_stage(sync_sdk, run_id, "PROD_CHECK").body.success is True
    assert sync_sdk.get(run_id).stages[1].status == "Success"


def test_approve_through_the_http_control_api(emu: DataWorksEmulator) -> None:
    remote = DataWorksEmulator.attach(emu.url)
    sdk = Sdk(make_client(emu), False)
    run_id = sdk.create(APPROVAL_NODE)

    record = remote.approve(run_id, "PROD_CHECK", start=False)

    assert record["stages"][1]["approved"] is True and record["stages"][1]["status"] == "Init"
    assert remote.sts_state() == {
        "issued": 0,
        "lifetime_seconds": None,
        "calls": {"AssumeRole": 0, "AssumeRoleWithOIDC": 0},
    }


# --- the STS stand-in, through the real credentials library -------------------------------------------


def ram_role(emu: DataWorksEmulator, secret: str | None = None) -> RamRoleArnCredentialsProvider:
    return RamRoleArnCredentialsProvider(
        access_key_id=emu.access_key_id,
        access_key_secret=secret or emu.access_key_secret,
        role_arn=ROLE_ARN,
        role_session_name="test",
        sts_endpoint=emu.sts_endpoint,
    )


def test_assume_role_issues_an_sts_triple_the_dataworks_api_accepts(emu: DataWorksEmulator) -> None:
    credentials = ram_role(emu).get_credentials()

    assert credentials.get_access_key_id().startswith("STS.")
    assert credentials.get_expiration() > time.time() + 3000
    sdk = Sdk(
        make_client(
            emu,
            access_key_id=credentials.get_access_key_id(),
            access_key_secret=credentials.get_access_key_secret(),
            security_token=credentials.get_security_token(),
        ),
        False,
    )
    run_id = sdk.create(NODE)
    assert emu.run(run_id)["access_key_id"] == credentials.get_access_key_id()
    assert emu.sts_state()["calls"]["AssumeRole"] == 1


def test_assume_role_checks_the_signature(emu: DataWorksEmulator) -> None:
    with pytest.raises(CredentialException, match="http_code: 400.*SignatureDoesNotMatch"):
        ram_role(emu, secret="wrong-secret").get_credentials()
    assert emu.sts_state()["issued"] == 0


@pytest.mark.parametrize("status", [429, 503])
def test_assume_role_throttles_and_fails_on_demand_then_recovers(emu: DataWorksEmulator, status: int) -> None:
    emu.inject_fault("AssumeRole", status=status)
    provider = ram_role(emu)

    with pytest.raises(CredentialException, match=f"http_code: {status}"):
        provider.get_credentials()
    assert provider.get_credentials().get_access_key_id().startswith("STS.")
    assert [c["status"] for c in emu.calls("AssumeRole")] == [status, 200]


def test_assume_role_with_oidc_needs_a_token_and_honours_the_lifetime(emu: DataWorksEmulator, tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text("oidc.jwt.token")
    emu.set_sts_lifetime(1000)
    provider = OIDCRoleArnCredentialsProvider(
        role_arn=ROLE_ARN,
        oidc_provider_arn="acs:ram::1379463177660000:oidc-provider/ack",
        oidc_token_file_path=str(token),
        role_session_name="test",
        sts_endpoint=emu.sts_endpoint,
    )

    credentials = provider.get_credentials()

    assert time.time() + 900 < credentials.get_expiration() <= time.time() + 1001
    assert emu.sts_state()["calls"]["AssumeRoleWithOIDC"] == 1


def test_assume_role_without_role_arn_names_the_parameter(emu: DataWorksEmulator) -> None:
    url = f"{emu.url}/?Action=AssumeRoleWithOIDC&Version=2015-04-01&RoleSessionName=s&OIDCProviderArn=p&OIDCToken=t"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as raised:
        opener.open(url, timeout=10)
    body = json.loads(raised.value.read())
    assert raised.value.code == 400 and body["Code"] == "MissingParameter.RoleArn"
