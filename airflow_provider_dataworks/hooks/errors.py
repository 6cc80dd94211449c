"""Translate Alibaba SDK exceptions into the provider's exception tree, once, at the hook.

The SDK's classes are only referenced by name here (no import), so translating an error
never imports the SDK and this module stays cheap to import.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_dataworks.exceptions import (
    DataWorksApiError,
    DataWorksAuthError,
    DataWorksClientError,
    DataWorksError,
    DataWorksNotFoundError,
    DataWorksServerError,
    DataWorksThrottlingError,
    DataWorksTransportError,
)

_AUTH_CODES = re.compile(
    r"^(InvalidAccessKeyId|SignatureDoesNotMatch|InvalidSecurityToken|InvalidTimeStamp|SignatureNonceUsed|"
    r"Forbidden|ResourceNotAuthorized|NoPermission|InvalidCredentials|IncompleteSignature)",
)
#: the not-found family, the one list: DataWorks documents no per-API not-found code (dataworks-api.md §10),
#: so any code naming a missing thing counts, and the attested message 未找到发布对象 ("object not found")
NOT_FOUND_CODE = re.compile(r"NotFound|NotExist|Not\.Found|Not\.Exist", re.IGNORECASE)
NOT_FOUND_MESSAGE = re.compile(r"^未找到|不存在")


def is_not_found(status: int | None, code: str | None, message: str) -> bool:
    """Whether an error answer says the object or run does not exist: HTTP 404 or the not-found family."""
    return status == 404 or bool(NOT_FOUND_CODE.search(code or "")) or bool(NOT_FOUND_MESSAGE.search(message))


# The SDK prefixes DataWorks' message: "code: 400, <original> request id: <id>".
_SDK_PREFIX = re.compile(r"^code: \d+, (?P<message>.*?)(?: request id: \S*)?$", re.DOTALL)
# Signs, in the exception chain, that the connection was never established, so the request
# cannot have reached DataWorks.
_NOT_SENT = (
    # requests / urllib3 (the sync SDK)
    "ConnectTimeout",
    "NewConnectionError",
    "Connection refused",
    "Name or service not known",
    "Temporary failure in name resolution",
    "nodename nor servname",
    "Failed to resolve",
    # aiohttp (the shared-session async transport)
    "Cannot connect to host",
    "Connect call failed",
    "Connection timeout to host",
)


def _class_names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or any(current is item for item in seen):
            continue
        seen.append(current)
        todo.extend([current.__cause__, current.__context__, getattr(current, "inner_exception", None)])
    return seen


def _request_certainly_not_sent(error: BaseException) -> bool:
    for item in _chain(error):
        text = f"{type(item).__name__}: {item}"
        if any(marker in text for marker in _NOT_SENT):
            return True
    return False


# The credentials library reports the STS / metadata answer as "... http_code: 429, result: ...".
_CREDENTIAL_HTTP_CODE = re.compile(r"http_code: (?P<status>\d{3})")
#: what the credentials library's fetch failures are marked with when STS could not be reached
CREDENTIALS_UNREACHABLE = "CredentialsUnreachable"
# A failed STS request's URL (in requests' and Tea's messages) carries the signed query.
_SECRET_QUERY_VALUE = re.compile(
    r"(?P<name>SecurityToken|Signature|AccessKeySecret|OIDCToken|AccessKeyId)=(?P<value>[^&\s'\")]+)"
)


def redact_credentials(text: str) -> str:
    """Replace the values of credential query parameters in ``text`` with ``***``."""
    return _SECRET_QUERY_VALUE.sub(lambda match: f"{match.group('name')}=***", text)


def _translate_credential_error(error: BaseException, action: str) -> DataWorksError:
    """A failure to obtain credentials: transient when STS (or the metadata service) was busy or unreachable.

    The DataWorks request was never sent, so even a create may be retried.
    """
    text = redact_credentials(f"Could not obtain Alibaba Cloud credentials: {error}")
    match = _CREDENTIAL_HTTP_CODE.search(str(error))
    status = int(match.group("status")) if match else None
    if status == 429 or "Throttling" in str(error):
        return DataWorksThrottlingError(text, code="Throttling.Credentials", status_code=status, action=action)
    unreachable = (
        getattr(error, "code", None) == CREDENTIALS_UNREACHABLE
        or any(
            isinstance(item, (OSError, TimeoutError)) or {"RetryError", "ConnectionError"} & _class_names(item)
            for item in _chain(error)
            if item is not error
        )
        or any(marker in str(error) for marker in _NOT_SENT)
    )
    if (status is not None and status >= 500) or unreachable:
        return DataWorksTransportError(text, action=action, request_sent=False)
    return DataWorksAuthError(text, code="InvalidCredentials", status_code=status, action=action)


def _original_message(error: Any, data: dict[str, Any]) -> str:
    message = data.get("Message") or data.get("message")
    if message:
        return str(message).strip()
    raw = str(getattr(error, "message", "") or "").strip()
    match = _SDK_PREFIX.match(raw)
    return (match.group("message") if match else raw) or type(error).__name__


def translate_sdk_error(error: BaseException, action: str) -> DataWorksError:
    """Return the provider error for an exception raised by an SDK call of ``action``."""
    if isinstance(error, DataWorksError):
        return error
    names = _class_names(error)
    credential_error = next((item for item in _chain(error) if "CredentialException" in _class_names(item)), None)
    if credential_error is not None:
        return _translate_credential_error(credential_error, action)
    if "UnretryableException" in names or "RetryError" in names or isinstance(error, (OSError, TimeoutError)):
        inner = getattr(error, "inner_exception", None) or error
        return DataWorksTransportError(
            f"No usable response from DataWorks: {type(inner).__name__}: {inner}",
            action=action,
            request_sent=not _request_certainly_not_sent(error),
        )
    if "TeaException" not in names:
        # Anything else is a bug or an SDK change; keep it visible rather than guessing.
        return DataWorksError(f"Unexpected error calling DataWorks {action}: {type(error).__name__}: {error}")

    data = getattr(error, "data", None)
    data = data if isinstance(data, dict) else {}
    status = getattr(error, "status_code", None) or getattr(error, "statusCode", None) or data.get("statusCode")
    status = int(status) if status is not None else None
    code = getattr(error, "code", None) or data.get("Code")
    code = str(code) if code else None
    request_id = data.get("RequestId") or getattr(error, "request_id", None)
    retry_after_ms = getattr(error, "retry_after", None)
    kwargs: dict[str, Any] = {
        "code": code,
        "request_id": str(request_id) if request_id else None,
        "status_code": status,
        "action": action,
        "retry_after": retry_after_ms / 1000.0 if retry_after_ms else None,
    }
    message = _original_message(error, data)
    cls: type[DataWorksApiError]
    if status == 429 or "ThrottlingException" in names or (code or "").startswith("Throttling"):
        cls = DataWorksThrottlingError
    elif status is not None and status >= 500:
        cls = DataWorksServerError
    elif status in (401, 403) or _AUTH_CODES.match(code or ""):
        cls = DataWorksAuthError
    elif is_not_found(status, code, message):
        cls = DataWorksNotFoundError
    else:
        cls = DataWorksClientError
    return cls(message, **kwargs)
