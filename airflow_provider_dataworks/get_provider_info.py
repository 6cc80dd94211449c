"""Provider metadata read by Airflow's providers manager (``apache_airflow_provider`` entry point).

Airflow 3.2+ builds the connection form from ``conn-fields`` and ``ui-field-behaviour``
without importing the hook, so opening the form never imports the Alibaba SDK.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_dataworks import __version__
from airflow_provider_dataworks.hooks.settings import AUTH_TYPES


def _text(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"], **schema}}


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata for Airflow."""
    return {
        "package-name": "airflow-provider-dataworks",
        "name": "Alibaba Cloud DataWorks",
        "description": "Deploy and undeploy DataWorks Data Studio nodes and workflows with pipeline runs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Alibaba Cloud DataWorks",
                "external-doc-url": "https://www.alibabacloud.com/help/en/dataworks/",
                "tags": ["alibaba"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Alibaba Cloud DataWorks",
                "python-modules": ["airflow_provider_dataworks.hooks.dataworks"],
            }
        ],
        "operators": [
            {
                "integration-name": "Alibaba Cloud DataWorks",
                "python-modules": ["airflow_provider_dataworks.operators.pipeline_run"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Alibaba Cloud DataWorks",
                "python-modules": ["airflow_provider_dataworks.sensors.pipeline_run"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Alibaba Cloud DataWorks",
                "python-modules": ["airflow_provider_dataworks.triggers.pipeline_run"],
            }
        ],
        "extra-links": ["airflow_provider_dataworks.operators.pipeline_run.DataWorksPipelineRunLink"],
        "connection-types": [
            {
                "connection-type": "dataworks",
                "hook-class-name": "airflow_provider_dataworks.hooks.dataworks.DataWorksHook",
                "hook-name": "Alibaba Cloud DataWorks",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port"],
                    "relabeling": {"login": "AccessKey ID", "password": "AccessKey Secret"},
                    "placeholders": {
                        "login": "LTAI… (leave empty for RAM/ECS/OIDC roles and the default chain)",
                        "password": "AccessKey Secret",
                    },
                },
                "conn-fields": {
                    "region": _text("Region", "Region ID of the workspace, e.g. cn-hangzhou."),
                    "project_id": {
                        "label": "Default workspace (project) ID",
                        "description": "Used when an operator does not set project_id.",
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "endpoint": _text(
                        "Endpoint",
                        "Overrides the regional endpoint: a VPC endpoint "
                        "(dataworks-vpc.<region>.aliyuncs.com) or a local emulator (127.0.0.1:PORT).",
                    ),
                    "protocol": {
                        "label": "Protocol",
                        "description": "https (default) or http (local emulator only).",
                        "schema": {"type": ["string", "null"], "enum": ["https", "http"]},
                    },
                    "auth_type": {
                        "label": "Authentication",
                        "description": "access_key (default when a key is set), sts, ram_role_arn, "
                        "ecs_ram_role, oidc_role_arn, credentials_uri or default_chain.",
                        "schema": {"type": ["string", "null"], "enum": list(AUTH_TYPES)},
                    },
                    "security_token": _text(
                        "STS security token", "Temporary STS token (auth_type sts).", format="password"
                    ),
                    "role_arn": _text("RAM role ARN", "For ram_role_arn and oidc_role_arn."),
                    "role_session_name": _text("Role session name", "For ram_role_arn and oidc_role_arn."),
                    "external_id": _text("External ID", "For ram_role_arn."),
                    "role_name": _text("ECS RAM role name", "For ecs_ram_role."),
                    "oidc_provider_arn": _text("OIDC provider ARN", "For oidc_role_arn (RRSA on ACK)."),
                    "oidc_token_file_path": _text("OIDC token file", "For oidc_role_arn (RRSA on ACK)."),
                    "credentials_uri": _text("Credentials URI", "For credentials_uri."),
                    "sts_endpoint": _text(
                        "STS endpoint", "For ram_role_arn and oidc_role_arn: e.g. sts-vpc.cn-hangzhou.aliyuncs.com."
                    ),
                    "ca": _text("CA bundle path", "PEM file of CAs to trust (TLS proxies, emulator TLS)."),
                    "read_timeout": {
                        "label": "Read timeout (s)",
                        "description": "Per-request read timeout in seconds (default 10).",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                    "connect_timeout": {
                        "label": "Connect timeout (s)",
                        "description": "Per-request connect timeout in seconds (default 5).",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                    # request budget (issue 12)
                    "read_qps": {
                        "label": "Read calls per second",
                        "description": "Request budget for Get/List calls of this AccessKey and region, shared by "
                        "every task and trigger of a process (default 3). DataWorks allows 5 QPS for all APIs "
                        "together on Basic/Standard/Professional, 50 read QPS on Enterprise.",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                    "write_qps": {
                        "label": "Write calls per second",
                        "description": "Request budget for Create/Exec/Abolish calls (default 2; Enterprise allows "
                        "20 write QPS). Throttled calls slow the budget down for a while.",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                    "console_url": _text(
                        "Console URL",
                        "Base of the DataWorks console for links; default https://dataworks.data.aliyun.com "
                        "(international site: https://dataworks.data.alibabacloud.com).",
                    ),
                },
            }
        ],
    }
