"""Errors raised by the DataWorks provider.

The hook translates every SDK error once, into this tree; nothing above the hook sees an
SDK exception. Each API error keeps what DataWorks said — ``code``, the original
``message`` (without the SDK's prefix), ``request_id`` and the HTTP status — so a failed
task log points straight at the request to quote to Alibaba Cloud support::

    DataWorksError                       base of everything below (an AirflowException)
    ├── DataWorksApiError                DataWorks answered with an error
    │   ├── DataWorksThrottlingError     429 / Throttling.*            — transient
    │   ├── DataWorksServerError         5xx                           — transient
    │   └── DataWorksClientError         any other 4xx                 — permanent
    │       ├── DataWorksAuthError       bad key, signature, token; access denied
    │       └── DataWorksNotFoundError   unknown object or run
    ├── DataWorksTransportError          no usable answer: refused, reset, timeout, not JSON — transient
    ├── PipelineRunAmbiguousCreateError  a create may or may not have happened
    ├── PipelineRunFailedError           the run ended Fail / Termination / Cancel
    ├── PipelineRunTimeoutError          the run did not finish in time
    ├── InvalidTriggerEventError         the trigger's event is missing or malformed
    ├── DataQualityAmbiguousCreateError  a Data Quality evaluation may or may not have started
    ├── DataQualityFailedError           the evaluation ended Critical / Error (or Warned, fail_on_warn)
    └── DataQualityTimeoutError          the evaluation did not finish in time

Bad arguments and bad connection settings raise :class:`ValueError` (or ``TypeError``)
before any remote call, with a message naming the field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import AirflowException

if TYPE_CHECKING:
    from airflow_provider_dataworks.status import DataQualityEvaluation, PipelineRun, Stage


class DataWorksError(AirflowException):
    """Base class of every error this provider raises about DataWorks."""


class DataWorksApiError(DataWorksError):
    """DataWorks (or its gateway) answered a call with an error."""

    transient = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
        action: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.request_id = request_id
        self.http_status = status_code
        self.action = action
        #: seconds DataWorks asked us to wait (``x-acs-retry-after``), if it did
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        where = ", ".join(
            part
            for part in (
                f"HTTP {self.http_status}" if self.http_status else "",
                f"action {self.action}" if self.action else "",
                f"RequestId {self.request_id}" if self.request_id else "",
            )
            if part
        )
        head = f"[{self.code}] " if self.code else ""
        return f"{head}{self.message}" + (f" ({where})" if where else "")


class DataWorksThrottlingError(DataWorksApiError):
    """DataWorks throttled the call (HTTP 429 or a ``Throttling.*`` code)."""

    transient = True


class DataWorksServerError(DataWorksApiError):
    """DataWorks failed on its side (HTTP 5xx)."""

    transient = True


class DataWorksClientError(DataWorksApiError):
    """DataWorks rejected the call (HTTP 4xx other than throttling); retrying will not help."""


class DataWorksAuthError(DataWorksClientError):
    """The credentials were rejected, or they may not access this workspace or action."""


class DataWorksNotFoundError(DataWorksClientError):
    """The object or pipeline run does not exist in the workspace."""


class DataWorksTransportError(DataWorksError):
    """No usable answer reached us: connection refused or reset, timeout, or a body that is not JSON.

    :param request_sent: ``False`` only when the request certainly never reached DataWorks
        (for example the connection was refused), so even a non-idempotent call may be retried.
    """

    transient = True

    def __init__(self, message: str, *, action: str | None = None, request_sent: bool = True) -> None:
        self.message = message
        self.action = action
        self.request_sent = request_sent
        self.code: str | None = None
        self.request_id: str | None = None
        self.http_status: int | None = None
        self.retry_after: float | None = None
        super().__init__(f"{message}" + (f" (action {action})" if action else ""))


class PipelineRunAmbiguousCreateError(DataWorksError):
    """``CreatePipelineRun`` failed in a way that does not tell whether the run was created.

    DataWorks has no idempotency token, so the call must not simply be repeated: list the
    object's runs first and adopt the one this task created, if any.
    """

    def __init__(self, message: str, *, cause: DataWorksError) -> None:
        self.cause = cause
        super().__init__(message)


class PipelineRunFailedError(DataWorksError):
    """The pipeline run finished without success."""

    def __init__(self, run: PipelineRun) -> None:
        self.run = run
        super().__init__(run.describe_failure())


class PipelineRunTimeoutError(DataWorksError):
    """The pipeline run was still active when the wait ran out of time."""

    def __init__(self, message: str, *, run: PipelineRun | None = None, stage: Stage | None = None) -> None:
        self.run = run
        self.stage = stage
        super().__init__(message)


class InvalidTriggerEventError(DataWorksError):
    """The event that resumed the task is missing or does not follow the documented schema."""


class DataQualityAmbiguousCreateError(DataWorksError):
    """``CreateDataQualityEvaluationTaskInstance`` failed without telling whether the instance exists."""

    def __init__(self, message: str, *, cause: DataWorksError) -> None:
        self.cause = cause
        super().__init__(message)


class DataQualityFailedError(DataWorksError):
    """The Data Quality evaluation did not let the gate open; the message names the rules."""

    def __init__(self, evaluation: DataQualityEvaluation) -> None:
        self.evaluation = evaluation
        super().__init__(evaluation.describe_failure())


class DataQualityTimeoutError(DataWorksError):
    """The Data Quality evaluation was still running when the wait ran out of time."""

    def __init__(self, message: str, *, evaluation: DataQualityEvaluation | None = None) -> None:
        self.evaluation = evaluation
        super().__init__(message)


TRANSIENT_ERRORS: tuple[type[DataWorksError], ...] = (
    DataWorksThrottlingError,
    DataWorksServerError,
    DataWorksTransportError,
)


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same call later may succeed: throttling, 5xx and transport errors only."""
    return isinstance(error, TRANSIENT_ERRORS)
