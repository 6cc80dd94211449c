"""An STS stand-in: ``AssumeRole`` and ``AssumeRoleWithOIDC``, served on the emulator's own port.

The credentials library (``alibabacloud_credentials``) sends its STS requests to
``sts_endpoint``; given ``http://127.0.0.1:PORT`` (it keeps a scheme it is given), they reach
this emulator, so ``ram_role_arn`` and ``oidc_role_arn`` connections run unpatched. Both
actions answer as STS does (``Credentials`` with ``AccessKeyId``, ``AccessKeySecret``,
``SecurityToken``, ``Expiration``) and register the issued triple with the emulator's
authenticator, so the DataWorks calls signed with it are accepted.

``AssumeRole`` is checked like any signed call (V2 HMAC-SHA1 signature of a known AccessKey,
timestamp, nonce). ``AssumeRoleWithOIDC`` is unsigned; it needs a non-empty ``OIDCToken``.
Failures and throttling come from the emulator's fault queue (``inject_fault("AssumeRole",
status=429)`` …); every call is in the call log, so tests count ``AssumeRole`` calls there.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .auth import Credential, SignedRequest
from .errors import ApiError

if TYPE_CHECKING:
    from .core import EmulatorCore

STS_VERSION = "2015-04-01"
#: what the STS API accepts for ``DurationSeconds``
MIN_DURATION_SECONDS = 900
MAX_DURATION_SECONDS = 43200
_ROLE_ARN = re.compile(r"^acs:ram::(?P<account>\d+):role/(?P<role>[\w.@+=,-]+)$", re.IGNORECASE)


@dataclass
class StsService:
    """What the STS stand-in remembers: how many credentials it issued, how long they last.

    :param lifetime_seconds: when set, issued credentials expire this many seconds from now,
        whatever ``DurationSeconds`` asked (a test of refreshing sets it short).
    """

    lifetime_seconds: float | None = None
    issued: int = 0

    def reset(self) -> None:
        self.lifetime_seconds = None
        self.issued = 0


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        message = f"The input parameter {name} that is mandatory is not supplied."
        raise ApiError(400, f"MissingParameter.{name}", message)
    return value


def _issue(core: EmulatorCore, params: Mapping[str, str]) -> dict[str, Any]:
    if params.get("Version", STS_VERSION) != STS_VERSION:
        raise ApiError(400, "InvalidVersion", f"Specified parameter Version {params.get('Version')} is not valid.")
    role_arn = _param(params, "RoleArn")
    session_name = _param(params, "RoleSessionName")
    match = _ROLE_ARN.match(role_arn)
    if match is None:
        raise ApiError(400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.")
    try:
        duration = int(params.get("DurationSeconds") or 3600)
    except ValueError:
        duration = -1
    if not MIN_DURATION_SECONDS <= duration <= MAX_DURATION_SECONDS:
        raise ApiError(400, "InvalidParameter.DurationSeconds", "The Min/Max value of DurationSeconds is 15min/12hr.")
    service = core.sts
    lifetime = service.lifetime_seconds if service.lifetime_seconds is not None else duration
    expiration = core.clock() + lifetime
    credential = Credential(
        access_key_id=f"STS.{secrets.token_hex(12)}",
        access_key_secret=secrets.token_urlsafe(24),
        security_token=secrets.token_urlsafe(48),
        account_id=match.group("account"),
    )
    core.auth.add(credential)
    service.issued += 1
    role_id = f"3{secrets.randbelow(10**17):017d}"
    return {
        "AssumedRoleUser": {
            "Arn": f"acs:ram::{match.group('account')}:role/{match.group('role')}/{session_name}",
            "AssumedRoleId": f"{role_id}:{session_name}",
        },
        "Credentials": {
            "AccessKeyId": credential.access_key_id,
            "AccessKeySecret": credential.access_key_secret,
            "SecurityToken": credential.security_token,
            "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiration)),
        },
    }


def assume_role(core: EmulatorCore, request: SignedRequest) -> dict[str, Any]:
    """``AssumeRole``: a signed request of a known AccessKey (or STS triple) gets a role's STS triple."""
    core.auth.verify(request)
    params = {**dict(request.form), **dict(request.query)}
    return _issue(core, params)


def assume_role_with_oidc(core: EmulatorCore, request: SignedRequest) -> dict[str, Any]:
    """``AssumeRoleWithOIDC``: an OIDC token (unsigned request) gets a role's STS triple."""
    params = {**dict(request.form), **dict(request.query)}
    _param(params, "OIDCProviderArn")
    _param(params, "OIDCToken")
    return _issue(core, params)


#: STS action -> handler; the server dispatches these before the DataWorks actions
ACTIONS: dict[str, Callable[[EmulatorCore, SignedRequest], dict[str, Any]]] = {
    "AssumeRole": assume_role,
    "AssumeRoleWithOIDC": assume_role_with_oidc,
}


def op_sts(core: EmulatorCore, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Control ``sts``: read (and with ``lifetime_seconds`` in the payload, set) the stand-in's state."""
    if "lifetime_seconds" in payload:
        value = payload["lifetime_seconds"]
        if value is not None and float(value) < 0:
            raise ValueError("lifetime_seconds must be >= 0")
        core.sts.lifetime_seconds = None if value is None else float(value)
    calls = {action: core.call_counts.get(action, 0) for action in ACTIONS}
    return {"issued": core.sts.issued, "lifetime_seconds": core.sts.lifetime_seconds, "calls": calls}


#: control operation -> handler, registered with the core
CONTROL_OPS: dict[str, Callable[[EmulatorCore, Mapping[str, Any]], Any]] = {"sts": op_sts, "sts_settings": op_sts}
#: control operation -> (HTTP method, path), registered with the server
CONTROL_ROUTES: dict[str, tuple[str, str]] = {
    "sts": ("GET", "/_emulator/sts"),
    "sts_settings": ("POST", "/_emulator/sts"),
}
