"""The one definition of the DataWorks connection form, rendered for every Airflow version.

Airflow 3.2+ reads the form from the provider info (``conn-fields`` / ``ui-field-behaviour``) and
never imports the hook for it. Airflow 2.11, 3.0 and 3.1 call the hook's
``get_connection_form_widgets`` / ``get_ui_field_behaviour`` instead. Both are built here from
:data:`FIELDS` and :data:`FIELD_BEHAVIOUR`, so the two can not drift: adding a field is one line.

This module imports nothing heavy; the wtforms classes the widgets need are imported only when
an Airflow below 3.2 asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_dataworks.hooks.settings import AUTH_TYPES

Kind = Literal["text", "secret", "integer", "number"]


@dataclass(frozen=True)
class FormField:
    """One extra field of the connection form (stored in the connection's ``extra``)."""

    name: str
    label: str
    description: str
    kind: Kind = "text"
    choices: tuple[str, ...] = ()
    #: integers: the smallest value allowed; numbers: the value must be greater than it
    bound: float | None = None


FIELDS: tuple[FormField, ...] = (
    FormField("region", "Region", "Region ID of the workspace, e.g. cn-hangzhou."),
    FormField(
        "project_id",
        "Default workspace (project) ID",
        "Used when an operator does not set project_id.",
        "integer",
        bound=1,
    ),
    FormField(
        "endpoint",
        "Endpoint",
        "Overrides the regional endpoint: a VPC endpoint (dataworks-vpc.<region>.aliyuncs.com) "
        "or a local emulator (127.0.0.1:PORT).",
    ),
    FormField("protocol", "Protocol", "https (default) or http (local emulator only).", choices=("https", "http")),
    FormField(
        "auth_type",
        "Authentication",
        "access_key (default when a key is set), sts, ram_role_arn, ecs_ram_role, oidc_role_arn, "
        "credentials_uri or default_chain.",
        choices=AUTH_TYPES,
    ),
    FormField("security_token", "STS security token", "Temporary STS token (auth_type sts).", "secret"),
    FormField("role_arn", "RAM role ARN", "For ram_role_arn and oidc_role_arn."),
    FormField("role_session_name", "Role session name", "For ram_role_arn and oidc_role_arn."),
    FormField("external_id", "External ID", "For ram_role_arn."),
    FormField("role_name", "ECS RAM role name", "For ecs_ram_role."),
    FormField("oidc_provider_arn", "OIDC provider ARN", "For oidc_role_arn (RRSA on ACK)."),
    FormField("oidc_token_file_path", "OIDC token file", "For oidc_role_arn (RRSA on ACK)."),
    FormField("credentials_uri", "Credentials URI", "For credentials_uri."),
    FormField(
        "sts_endpoint", "STS endpoint", "For ram_role_arn and oidc_role_arn: e.g. sts-vpc.cn-hangzhou.aliyuncs.com."
    ),
    FormField("ca", "CA bundle path", "PEM file of CAs to trust (TLS proxies, emulator TLS)."),
    FormField(
        "read_timeout", "Read timeout (s)", "Per-request read timeout in seconds (default 10).", "number", bound=0
    ),
    FormField(
        "connect_timeout",
        "Connect timeout (s)",
        "Per-request connect timeout in seconds (default 5).",
        "number",
        bound=0,
    ),
    # the request budget (hooks/budget.py): one token bucket per AccessKey and region, per process or,
    # with [dataworks] quota_store, for the whole deployment (hooks/quota_share.py)
    FormField(
        "read_qps",
        "Read calls per second",
        "Request budget for Get/List calls of this AccessKey and region (default 3): the whole "
        "deployment's when [dataworks] quota_store is set, each process's otherwise. DataWorks "
        "allows 5 QPS for all APIs together on Basic/Standard/"
        "Professional, 50 read QPS on Enterprise.",
        "number",
        bound=0,
    ),
    FormField(
        "write_qps",
        "Write calls per second",
        "Request budget for Create/Exec/Abolish calls (default 2; Enterprise allows 20 write QPS). "
        "Throttled calls slow the budget down for a while.",
        "number",
        bound=0,
    ),
    FormField(
        "console_url",
        "Console URL",
        "Base of the DataWorks console for links; default https://dataworks.data.aliyun.com "
        "(international site: https://dataworks.data.alibabacloud.com).",
    ),
)

#: the standard fields: hidden, relabelled, given placeholders
HIDDEN_FIELDS: tuple[str, ...] = ("host", "schema", "port")
RELABELING: dict[str, str] = {"login": "AccessKey ID", "password": "AccessKey Secret"}
PLACEHOLDERS: dict[str, str] = {
    "login": "LTAI… (leave empty for RAM/ECS/OIDC roles and the default chain)",
    "password": "AccessKey Secret",
}


def _schema(field: FormField) -> dict[str, Any]:
    json_type = {"text": "string", "secret": "string", "integer": "integer", "number": "number"}[field.kind]
    schema: dict[str, Any] = {"type": [json_type, "null"]}
    if field.kind == "secret":
        schema["format"] = "password"
    if field.choices:
        schema["enum"] = list(field.choices)
    if field.bound is not None:
        schema["minimum" if field.kind == "integer" else "exclusiveMinimum"] = field.bound
    return schema


def conn_fields() -> dict[str, dict[str, Any]]:
    """``conn-fields`` of the provider info (Airflow 3.2+)."""
    return {f.name: {"label": f.label, "description": f.description, "schema": _schema(f)} for f in FIELDS}


def ui_field_behaviour_info() -> dict[str, Any]:
    """``ui-field-behaviour`` of the provider info (Airflow 3.2+; hyphenated keys)."""
    return {"hidden-fields": list(HIDDEN_FIELDS), "relabeling": dict(RELABELING), "placeholders": dict(PLACEHOLDERS)}


def ui_field_behaviour() -> dict[str, Any]:
    """What ``get_ui_field_behaviour`` returns (Airflow below 3.2; underscored keys)."""
    return {"hidden_fields": list(HIDDEN_FIELDS), "relabeling": dict(RELABELING), "placeholders": dict(PLACEHOLDERS)}


def connection_form_widgets() -> dict[str, Any]:
    """What ``get_connection_form_widgets`` returns (Airflow below 3.2).

    Airflow 2.11 renders these wtforms fields in its FAB UI. Airflow 3.0 and 3.1 swap the wtforms
    classes for stand-ins that turn them into the same JSON schema as ``conn-fields``; 3.0 needs
    ``wtforms`` importable for that (the ``connection-form`` extra), 3.1 needs nothing.
    Only the field classes those stand-ins know are used (string, integer, password): a number
    is a string field here, and the hook parses it.
    """
    from wtforms import IntegerField, PasswordField, StringField
    from wtforms.validators import NumberRange, Optional, any_of

    try:  # the FAB UI of Airflow 2.11 styles the inputs with these; Airflow 3 ignores widgets
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    except ImportError:
        text_widget: Any = None
        secret_widget: Any = None
    else:
        text_widget, secret_widget = BS3TextFieldWidget(), BS3PasswordFieldWidget()

    widgets: dict[str, Any] = {}
    for field in FIELDS:
        validators: list[Any] = [Optional()]
        if field.choices:
            validators.append(any_of(list(field.choices)))
        if field.kind == "integer":
            if field.bound is not None:
                validators.append(NumberRange(min=field.bound))
            widgets[field.name] = IntegerField(
                field.label, validators=validators, description=field.description, widget=text_widget
            )
        elif field.kind == "secret":
            widgets[field.name] = PasswordField(
                field.label, validators=validators, description=field.description, widget=secret_widget
            )
        else:
            widgets[field.name] = StringField(
                field.label, validators=validators, description=field.description, widget=text_widget
            )
    return widgets
