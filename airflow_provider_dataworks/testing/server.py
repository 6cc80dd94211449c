"""The emulator's HTTP face: the OpenAPI endpoint ``/`` and the control API ``/_emulator/``.

``/`` behaves like the DataWorks POP gateway: it dispatches on ``x-acs-action`` (V3) or the
``Action`` query parameter (V2), merges query and form parameters, checks the signature,
answers JSON with ``RequestId`` and ``x-acs-request-id``, and turns every :class:`ApiError` into
the gateway error body. The request path is kept cheap: no per-request logging, no tasks.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from . import errors, faults, quota, sts
from .actions import ACTIONS, Call
from .auth import SignedRequest
from .core import EmulatorCore
from .errors import ApiError

API_VERSION = "2024-05-18"
JSON_CONTENT_TYPE = "application/json;charset=utf-8"
_LOOPBACK = ("127.", "::1", "::ffff:127.")
_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n"
)

CORE_KEY = web.AppKey("core", EmulatorCore)


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _error_body(error: ApiError, request_id: str, host: str) -> bytes:
    return _json(
        {
            "RequestId": request_id,
            "HostId": host,
            "Code": error.code,
            "Message": error.message,
            "Recommend": (
                f"https://api.alibabacloud.com/troubleshoot?q={error.code}"
                f"&product=dataworks-public&requestId={request_id}"
            ),
        }
    )


def _drop(request: web.Request) -> web.Response:
    """Close the connection so the client gets no answer at all.

    aiohttp then fails to write the returned response and lets it go silently.
    """
    protocol = request.protocol
    if protocol is not None:
        protocol.force_close()
    elif request.transport is not None:
        request.transport.close()
    return web.Response(status=499)


def _header_values(request: web.Request) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        values.setdefault(name.lower(), []).append(value)
    return values


async def handle_api(request: web.Request) -> web.StreamResponse:
    """Answer one DataWorks OpenAPI request on ``/``."""
    core = request.app[CORE_KEY]
    request_id = str(uuid.uuid4()).upper()
    body = await request.read() if request.can_read_body else b""
    query = list(request.query.items())
    form = (
        parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        if body and request.content_type == "application/x-www-form-urlencoded"
        else []
    )
    headers = _header_values(request)
    action = (headers.get("x-acs-action") or [""])[0] or request.query.get("Action", "")

    # STS is another service with its own limits: the DataWorks quota counts DataWorks actions only.
    if action not in sts.ACTIONS and not core.quota.admit(action, now := core.clock()):
        retry_after = {"x-acs-retry-after": str(quota.Quota.retry_after_ms(now))}
        error = ApiError(429, quota.THROTTLING_CODE, quota.THROTTLING_MESSAGE, retry_after)
        return _error_response(core, error, action, request_id, request.host, None)
    fault = core.faults.take(action, core.clock())
    fault_kind = fault.kind if fault else None
    if fault is not None:
        if fault.kind == faults.DROP:
            core.record_call(action, 0, None, request_id, fault_kind)
            return _drop(request)
        if fault.kind == faults.HTML_502:
            core.record_call(action, 502, None, request_id, fault_kind)
            return web.Response(status=502, text=_HTML_502, content_type="text/html")
        if fault.kind == faults.HTTP_ERROR:
            status = fault.status or 429
            code, message = errors.default_code_for(status)
            extra = {"x-acs-retry-after": str(fault.retry_after_ms)} if fault.retry_after_ms else None
            error = ApiError(status, fault.code or code, fault.message or message, extra)
            return _error_response(core, error, action, request_id, request.host, fault_kind)
        if fault.kind == faults.NOT_STARTED:
            core.record_call(action, 200, None, request_id, fault_kind)
            return web.Response(
                body=_json({"Success": False, "RequestId": request_id}),
                headers={"Content-Type": JSON_CONTENT_TYPE, "x-acs-request-id": request_id},
            )
        if fault.kind == faults.DELAY:
            await asyncio.sleep(fault.seconds or 0.0)

    try:
        signed = SignedRequest(request.method, request.path, query, form, headers, body)
        if action in sts.ACTIONS:
            result = sts.ACTIONS[action](core, signed)
        else:
            version = (headers.get("x-acs-version") or [""])[0] or request.query.get("Version", "")
            if action not in ACTIONS:
                raise errors.invalid_action(action)
            if version and version != API_VERSION:
                raise ApiError(400, "InvalidVersion", f"Specified parameter Version {version} is not valid.")
            credential = core.auth.verify(signed)
            params = dict(query)
            params.update(form)
            call = Call(
                action, params, credential, request_id, core.state, core.settings.object_not_found_code, core.shapes
            )
            result = ACTIONS[action](call)
    except ApiError as error:
        return _error_response(core, error, action, request_id, request.host, fault_kind)

    result["RequestId"] = request_id
    core.record_call(action, 200, None, request_id, fault_kind)
    if fault is not None and fault.kind == faults.COMMIT_THEN_DROP:
        return _drop(request)
    return web.Response(
        body=_json(result),
        headers={"Content-Type": JSON_CONTENT_TYPE, "x-acs-request-id": request_id},
    )


def _error_response(
    core: EmulatorCore, error: ApiError, action: str, request_id: str, host: str, fault: str | None
) -> web.Response:
    core.record_call(action, error.status, error.code, request_id, fault)
    return web.Response(
        status=error.status,
        body=_error_body(error, request_id, host),
        headers={"Content-Type": JSON_CONTENT_TYPE, "x-acs-request-id": request_id, **error.headers},
    )


# --- control API ----------------------------------------------------------------------------------


def _control(operation: str, *, with_query: bool = False) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        if not (request.remote or "").startswith(_LOOPBACK):
            return web.json_response({"error": "Forbidden", "message": "loopback clients only"}, status=403)
        payload: dict[str, Any] = dict(request.query) if with_query else {}
        if request.can_read_body:
            try:
                payload.update(await request.json())
            except (ValueError, TypeError):
                return web.json_response({"error": "InvalidJSON", "message": "body must be JSON"}, status=400)
        try:
            result = request.app[CORE_KEY].control(operation, payload)
        except ApiError as error:
            return web.json_response({"error": error.code, "message": error.message}, status=error.status)
        except (KeyError, TypeError, ValueError) as err:
            return web.json_response({"error": "InvalidRequest", "message": repr(err)}, status=400)
        return web.Response(body=_json(result), content_type="application/json")

    return handler


#: Control operation name -> (HTTP method, path). The in-process and the HTTP client share it.
CONTROL_ROUTES: dict[str, tuple[str, str]] = {
    "info": ("GET", "/_emulator/info"),
    "runs": ("GET", "/_emulator/runs"),
    "calls": ("GET", "/_emulator/calls"),
    "faults": ("GET", "/_emulator/faults"),
    "add_fault": ("POST", "/_emulator/faults"),
    "clear_faults": ("DELETE", "/_emulator/faults"),
    "objects": ("GET", "/_emulator/objects"),
    "add_objects": ("POST", "/_emulator/objects"),
    "approve": ("POST", "/_emulator/approve"),
    "console_abolish": ("POST", "/_emulator/console-abolish"),
    "reset": ("POST", "/_emulator/reset"),
    "add_credential": ("POST", "/_emulator/credentials"),
    "settings": ("POST", "/_emulator/settings"),
    **sts.CONTROL_ROUTES,
    "quota": ("POST", "/_emulator/quota"),
    "quota_counts": ("GET", "/_emulator/quota"),
    "add_data_quality_task": ("POST", "/_emulator/data-quality/tasks"),
    "data_quality_instances": ("GET", "/_emulator/data-quality/instances"),
}


def make_app(core: EmulatorCore) -> web.Application:
    """Return the aiohttp application serving ``core``."""
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[CORE_KEY] = core
    for operation, (method, path) in CONTROL_ROUTES.items():
        app.router.add_route(method, path, _control(operation, with_query=method == "GET"))
    app.router.add_route("*", "/", handle_api)
    return app
