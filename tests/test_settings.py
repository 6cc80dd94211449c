"""Connection validation: every bad setting is refused before any remote call, naming the field."""

from __future__ import annotations

import pytest

from airflow_provider_dataworks.hooks.dataworks import build_sdk_client
from airflow_provider_dataworks.hooks.settings import ConnectionSettings, parse_project_id


def settings(login="ak", password="secret-abc", **extra):
    extra.setdefault("region", "cn-hangzhou")
    return ConnectionSettings.from_connection_fields(conn_id="c", login=login, password=password, extra=extra)


def test_access_key_is_the_default_auth_when_a_key_is_present():
    assert settings().auth_type == "access_key"


def test_a_security_token_means_sts():
    assert settings(security_token="tok-123").auth_type == "sts"


def test_alibaba_provider_spelling_ak_is_accepted():
    assert settings(auth_type="AK").auth_type == "access_key"


def test_extras_from_the_old_ui_prefix_are_read():
    s = ConnectionSettings.from_connection_fields(
        conn_id="c", login="ak", password="s3cret", extra={"extra__dataworks__region": "cn-shanghai"}
    )
    assert s.region == "cn-shanghai"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"login": None, "password": None}, "has no credentials"),
        ({"auth_type": "magic"}, "unknown auth_type 'magic'"),
        ({"password": None}, "access_key_secret (password)"),
        ({"auth_type": "sts"}, "security_token"),
        ({"auth_type": "ram_role_arn"}, "role_arn"),
        ({"auth_type": "oidc_role_arn", "role_arn": "r"}, "oidc_provider_arn, oidc_token_file_path"),
        ({"auth_type": "credentials_uri"}, "credentials_uri"),
        ({"protocol": "ftp"}, "protocol must be"),
        ({"region": None}, "region extra"),
        ({"read_timeout": "soon"}, "'read_timeout' must be a number"),
        ({"connect_timeout": -1}, "'connect_timeout' must be greater than 0"),
        ({"project_id": "ten"}, "project_id"),
    ],
)
def test_bad_connection_settings_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=None) as err:
        settings(**kwargs)
    assert message in str(err.value)
    assert "secret-abc" not in str(err.value)


def test_endpoint_url_is_split_into_host_and_protocol():
    s = settings(endpoint="http://127.0.0.1:8080")
    assert (s.endpoint, s.protocol) == ("127.0.0.1:8080", "http")


def test_secrets_are_not_in_the_repr():
    text = repr(settings(password="secret-abc", security_token="token-xyz"))
    assert "secret-abc" not in text and "token-xyz" not in text


def test_region_without_endpoint_is_refused_before_any_call():
    with pytest.raises(ValueError, match="region 'mars-north-1' has no known DataWorks endpoint"):
        build_sdk_client(settings(region="mars-north-1"))


def test_vpc_endpoint_is_used_verbatim():
    client = build_sdk_client(settings(endpoint="dataworks-vpc.cn-hangzhou.aliyuncs.com"))
    assert client._endpoint == "dataworks-vpc.cn-hangzhou.aliyuncs.com"


@pytest.mark.parametrize("value", [None, "", "  ", "abc", "12.5", 0, -3, True])
def test_bad_project_ids(value):
    with pytest.raises(ValueError, match="project_id"):
        parse_project_id(value)


def test_console_link_uses_region_and_configurable_site():
    s = settings(console_url="https://dataworks.data.alibabacloud.com/", region="ap-southeast-1")
    assert s.console_link(10000) == "https://dataworks.data.alibabacloud.com/ap-southeast-1/ide?defaultProjectId=10000"
