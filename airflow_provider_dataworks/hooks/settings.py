"""Read a DataWorks (or ``alibaba_cloud``) connection into validated, typed settings.

Validation happens here, before any remote call, and every error names the field. The
settings object never shows a secret: secret fields are excluded from its ``repr`` and no
message below ever includes a secret value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

AUTH_TYPES: tuple[str, ...] = (
    "access_key",
    "sts",
    "ram_role_arn",
    "ecs_ram_role",
    "oidc_role_arn",
    "credentials_uri",
    "default_chain",
)
#: spellings used by the Alibaba provider's connections, accepted for compatibility
_AUTH_TYPE_ALIASES = {"ak": "access_key", "accesskey": "access_key", "sts_token": "sts"}

DEFAULT_CONSOLE_URL = "https://dataworks.data.aliyun.com"
DEFAULT_REGION_FOR_LINKS = "cn-hangzhou"


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _seconds(extra: Mapping[str, Any], name: str) -> float | None:
    raw = extra.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"Connection extra {name!r} must be a number of seconds, got {raw!r}.") from None
    if value <= 0:
        raise ValueError(f"Connection extra {name!r} must be greater than 0 seconds, got {raw!r}.")
    return value


# ---- request budget (issue 12): connection extras read_qps / write_qps ----
#: Defaults that fit the Basic/Standard/Professional editions' 5 QPS for all APIs together.
DEFAULT_READ_QPS = 3.0
DEFAULT_WRITE_QPS = 2.0


def _qps(extra: Mapping[str, Any], name: str, default: float) -> float:
    raw = extra.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"Connection extra {name!r} must be a number of calls per second, got {raw!r}.") from None
    if not value > 0:
        raise ValueError(f"Connection extra {name!r} must be greater than 0 calls per second, got {raw!r}.")
    return value


# ---- end request budget ----


def parse_project_id(value: Any, field_name: str = "project_id") -> int:
    """Return a workspace ID as a positive int, or raise naming ``field_name``."""
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(
            f"{field_name} is required: the numeric DataWorks workspace ID (e.g. 10000), "
            "set on the operator or as the connection's project_id extra."
        )
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(
            f"{field_name} must be a numeric DataWorks workspace ID (e.g. 10000), got {value!r}."
        ) from None
    if number <= 0:
        raise ValueError(f"{field_name} must be a positive DataWorks workspace ID, got {value!r}.")
    return number


def parse_choice(enum: Any, value: Any, field_name: str) -> str:
    """Return ``value`` as one of ``enum``'s values, or raise naming the field and the accepted values."""
    allowed = [member.value for member in enum]
    text = getattr(value, "value", value)
    if text not in allowed:
        raise ValueError(f"{field_name} must be one of {', '.join(allowed)}; got {value!r}.")
    return str(text)


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything the hook needs from an Airflow connection, validated."""

    conn_id: str
    auth_type: str
    region: str | None = None
    endpoint: str | None = None
    protocol: str = "https"
    access_key_id: str | None = None
    access_key_secret: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    role_arn: str | None = None
    role_session_name: str | None = None
    external_id: str | None = None
    role_name: str | None = None
    oidc_provider_arn: str | None = None
    oidc_token_file_path: str | None = None
    credentials_uri: str | None = None
    sts_endpoint: str | None = None
    ca: str | None = None
    read_timeout: float | None = None
    connect_timeout: float | None = None
    project_id: int | None = None
    console_url: str = DEFAULT_CONSOLE_URL
    read_qps: float = DEFAULT_READ_QPS
    write_qps: float = DEFAULT_WRITE_QPS

    @classmethod
    def from_connection_fields(
        cls,
        *,
        conn_id: str,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any] | str | None,
        region_override: str | None = None,
    ) -> ConnectionSettings:
        """Validate connection fields; works for ``dataworks`` and ``alibaba_cloud`` connections."""
        if isinstance(extra, str):
            try:
                extra = json.loads(extra) if extra.strip() else {}
            except ValueError:
                raise ValueError(f"Connection {conn_id!r}: the extra field is not valid JSON.") from None
        extra = dict(extra or {})
        # Airflow's UI stores custom form fields as "extra__<conn_type>__<name>" on old connections.
        for key in list(extra):
            if key.startswith("extra__") and key.count("__") >= 2:
                extra.setdefault(key.split("__", 2)[2], extra[key])

        access_key_id = _clean(login) or _clean(extra.get("access_key_id"))
        access_key_secret = _clean(password) or _clean(extra.get("access_key_secret"))
        security_token = _clean(extra.get("security_token"))

        raw_auth = _clean(extra.get("auth_type"))
        if raw_auth is None:
            auth_type = "sts" if security_token else "access_key" if access_key_id else None
        else:
            auth_type = _AUTH_TYPE_ALIASES.get(raw_auth.lower(), raw_auth.lower())
        if auth_type is None:
            raise ValueError(
                f"Connection {conn_id!r} has no credentials: set the AccessKey ID (login) and AccessKey "
                f"Secret (password), or the auth_type extra to one of {', '.join(AUTH_TYPES)}."
            )
        if auth_type not in AUTH_TYPES:
            raise ValueError(
                f"Connection {conn_id!r}: unknown auth_type {raw_auth!r}; use one of {', '.join(AUTH_TYPES)}."
            )

        def require(*names: str) -> None:
            values = {
                "access_key_id": access_key_id,
                "access_key_secret": access_key_secret,
                "security_token": security_token,
            }
            missing = [name for name in names if not (values.get(name) or _clean(extra.get(name)))]
            if missing:
                labels = {
                    "access_key_id": "access_key_id (login)",
                    "access_key_secret": "access_key_secret (password)",
                }
                raise ValueError(
                    f"Connection {conn_id!r} with auth_type {auth_type!r} needs "
                    + ", ".join(labels.get(name, name) for name in missing)
                    + "."
                )

        if auth_type == "access_key":
            require("access_key_id", "access_key_secret")
        elif auth_type == "sts":
            require("access_key_id", "access_key_secret", "security_token")
        elif auth_type == "ram_role_arn":
            require("access_key_id", "access_key_secret", "role_arn")
        elif auth_type == "oidc_role_arn":
            require("role_arn", "oidc_provider_arn", "oidc_token_file_path")
        elif auth_type == "credentials_uri":
            require("credentials_uri")

        protocol = (_clean(extra.get("protocol")) or "https").lower()
        if protocol not in ("http", "https"):
            raise ValueError(f"Connection {conn_id!r}: protocol must be 'https' or 'http', got {protocol!r}.")

        endpoint = _clean(extra.get("endpoint"))
        if endpoint and "://" in endpoint:
            # The SDK wants host[:port]; a URL would end up verbatim in the Host header.
            parts = urlsplit(endpoint)
            endpoint, protocol = parts.netloc, parts.scheme.lower() or protocol
        region = _clean(region_override) or _clean(extra.get("region")) or _clean(extra.get("region_id"))
        if not region and not endpoint:
            raise ValueError(
                f"Connection {conn_id!r} needs the region extra (e.g. 'cn-hangzhou') or an explicit endpoint."
            )

        raw_project = extra.get("project_id")
        project_id = (
            parse_project_id(raw_project, f"connection {conn_id!r} extra 'project_id'")
            if raw_project not in (None, "")
            else None
        )

        return cls(
            conn_id=conn_id,
            auth_type=auth_type,
            region=region,
            endpoint=endpoint,
            protocol=protocol,
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
            role_arn=_clean(extra.get("role_arn")),
            role_session_name=_clean(extra.get("role_session_name")),
            external_id=_clean(extra.get("external_id")),
            role_name=_clean(extra.get("role_name")),
            oidc_provider_arn=_clean(extra.get("oidc_provider_arn")),
            oidc_token_file_path=_clean(extra.get("oidc_token_file_path")),
            credentials_uri=_clean(extra.get("credentials_uri")),
            sts_endpoint=_clean(extra.get("sts_endpoint")),
            ca=_clean(extra.get("ca")),
            read_timeout=_seconds(extra, "read_timeout"),
            connect_timeout=_seconds(extra, "connect_timeout"),
            project_id=project_id,
            console_url=(_clean(extra.get("console_url")) or DEFAULT_CONSOLE_URL).rstrip("/"),
            read_qps=_qps(extra, "read_qps", DEFAULT_READ_QPS),
            write_qps=_qps(extra, "write_qps", DEFAULT_WRITE_QPS),
        )

    @property
    def link_region(self) -> str:
        """The region to put in console links."""
        return self.region or DEFAULT_REGION_FOR_LINKS

    def console_link(self, project_id: int) -> str:
        """Return the Data Studio URL of a workspace, where its deployment panel lives."""
        return f"{self.console_url}/{self.link_region}/ide?defaultProjectId={project_id}"
