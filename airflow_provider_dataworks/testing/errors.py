"""The error answers the emulator gives, one factory per DataWorks error it imitates.

Every failure inside the emulator is an :class:`ApiError`; the server turns it into the
gateway's error body ``{"RequestId", "HostId", "Code", "Message", "Recommend"}`` with the
HTTP status it carries. Keeping the codes and texts here means tests and docs can name
them from one place.
"""

from __future__ import annotations

#: Default code of the "object not found" answer; real DataWorks documents no code for it.
OBJECT_NOT_FOUND_CODE = "Invalid.Param.ObjectNotFound"


class ApiError(Exception):
    """A DataWorks error answer: HTTP status, error code and message.

    :param status: HTTP status code of the answer.
    :param code: the ``Code`` field, e.g. ``Throttling.User``.
    :param message: the ``Message`` field, shown verbatim by the SDK in ``data['Message']``.
    :param headers: extra response headers, e.g. ``x-acs-retry-after``.
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def invalid_action(action: str) -> ApiError:
    """Return the answer to an action the emulator does not know."""
    return ApiError(
        404,
        "InvalidAction.NotFound",
        f"Specified api is not found, please check your url and method. (action: {action or '<none>'})",
    )


def missing_parameter(name: str, reason: str = "") -> ApiError:
    """Return the answer to a request that lacks the mandatory parameter ``name``.

    :param reason: why it is mandatory here, when only another parameter makes it so.
    """
    detail = f" {reason}" if reason else ""
    return ApiError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not supplied.{detail}',
    )


def invalid_parameter(name: str, value: object, reason: str = "") -> ApiError:
    """Return the answer to a parameter whose value is not allowed."""
    detail = f" {reason}" if reason else ""
    return ApiError(
        400,
        "InvalidParameter",
        f'The specified parameter "{name}" value "{value}" is not valid.{detail}',
    )


def forbidden_project(project_id: object) -> ApiError:
    """Return the answer to a caller that may not use (or cannot see) a workspace."""
    return ApiError(
        403,
        "Forbidden.Access",
        f"Access is forbidden. You have no permission on project {project_id}, or it does not exist.",
    )


def object_not_found(raw_ids: list[str], code: str = OBJECT_NOT_FOUND_CODE) -> ApiError:
    """Return DataWorks' "deployment object not found" answer, listing the IDs as received."""
    return ApiError(400, code, f"未找到发布对象: [{','.join(raw_ids)}]")


def run_not_found(run_id: str) -> ApiError:
    """Return the answer to a pipeline run ID that does not exist in the project."""
    return ApiError(
        404,
        "InvalidPipelineRun.NotFound",
        f"The specified pipeline run {run_id} does not exist.",
    )


def stage_order(code: str, expected: str | None) -> ApiError:
    """Return the answer to a stage executed out of order or a second time."""
    hint = f"; the next stage to execute is {expected}" if expected else ""
    return ApiError(
        400,
        "Invalid.Stage.Order",
        f"Stage {code} cannot be executed now: stages run in order and only once{hint}.",
    )


def not_running() -> ApiError:
    """Return the answer to exec/abolish on a run that is no longer running."""
    return ApiError(400, "Invalid.Pipeline.NotRunning", "流水线不是正在运行")


def throttled() -> ApiError:
    """Return DataWorks' QPS throttling answer."""
    return ApiError(429, "Throttling.User", "Your request is too frequent. Try again later.")


def default_code_for(status: int) -> tuple[str, str]:
    """Return a realistic (code, message) pair for an injected HTTP error of ``status``."""
    if status == 429:
        return "Throttling.User", "Your request is too frequent. Try again later."
    if status == 403:
        return "Forbidden.Access", "Access is forbidden. Try again later."
    if status == 503:
        return "ServiceUnavailable", "The request has failed due to a temporary failure of the server."
    if status >= 500:
        return "InternalError.System", "An internal system error occurred. Try again later."
    return "InvalidParameter", "The request is not valid."
