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
    │   └── PipelineRunStoppedError      ... Termination / Cancel by someone else: no retry
    ├── PipelineRunGaveUpError           the provider stopped waiting: waiting cannot heal it; no retry
    ├── PipelineRunTimeoutError          the run did not finish in time
    ├── InvalidTriggerEventError         the trigger's event is missing or malformed
    ├── DataQualityAmbiguousCreateError  a Data Quality evaluation may or may not have started
    ├── DataQualityFailedError           the evaluation ended Critical / Error (or Warned, fail_on_warn)
    └── DataQualityTimeoutError          the evaluation did not finish in time

How an error is met (:func:`error_remedy`, the one answer to "is this error worth waiting for"):
permission and credential errors fail at once, transient ones are retried with backoff for as long
as a wait's deadline allows, "not yet" answers are retried a bounded number of times, and any other
client error a few times at most.

Bad arguments and bad connection settings raise :class:`ValueError` (or ``TypeError``)
before any remote call, with a message naming the field.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

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


class PipelineRunStoppedError(PipelineRunFailedError, AirflowFailException):
    """The run ended ``Termination`` or ``Cancel`` and this task did not abolish it: a person (or
    another client) stopped it. The task fails without retry, so no retry deploys again what was
    stopped on purpose; a clear, a person's explicit new attempt, deploys anew.
    """

    def __init__(self, run: PipelineRun) -> None:
        self.run = run
        stage = run.failed_stage or run.current_stage
        where = f" at stage {stage.code} (type {stage.type}, step {stage.step})" if stage is not None else ""
        text = (
            f"DataWorks pipeline run {run.id} ended with status {run.status}{where} without this task abolishing "
            "it: it was stopped outside this task (in the DataWorks console or by another client). Not retried, "
            "so it is not deployed again; clear the task to deploy anew."
        )
        DataWorksError.__init__(self, text + run.messages(stage))


def failure_error(run: PipelineRun) -> PipelineRunFailedError:
    """The error for a run that ended without success: stopped by someone (no retry), or failed."""
    if run.was_stopped:
        return PipelineRunStoppedError(run)
    return PipelineRunFailedError(run)


class PipelineRunGaveUpError(DataWorksError, AirflowFailException):
    """The provider decided that the run cannot reach what the task asked for, and stopped waiting.

    Raised for what waiting cannot heal: a permission error, an ``advance_until_stage`` that is not
    a stage of the run, a check-only run without a check stage, a stage DataWorks keeps refusing.
    The run is abolished first (with ``cancel_on_timeout``); the message says what a read confirmed.
    The task fails without retry: a retry would meet the same answer.
    """

    def __init__(self, message: str, *, run: PipelineRun | None = None, cause: BaseException | None = None) -> None:
        self.run = run
        self.cause = cause
        super().__init__(message)


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


class Remedy(StrEnum):
    """What helps against an error: the one classification create, exec, reads and abolish share."""

    #: credentials or RAM permissions: waiting never heals it; fail at once and say what is missing
    PERMISSION = "permission"
    #: throttling, 5xx, transport: retry with backoff, as long as the deadline allows
    TRANSIENT = "transient"
    #: DataWorks is not ready for it yet (a stage still being prepared): a bounded number of retries
    NOT_YET = "not_yet"
    #: the object or run does not exist (HTTP 404, any code of the not-found family)
    NOT_FOUND = "not_found"
    #: any other client error: a few retries at most, then fail
    PERMANENT = "permanent"


#: codes and messages of "not ready yet" answers (a stage still being prepared, a run still starting).
#: DataWorks documents none of them; the messages are attested (dataworks-api.md §2.2, §3.2).
_NOT_YET = re.compile(r"NotReady|NotRunning|Not\.?Ready|未准备好|不是正在运行|准备中", re.IGNORECASE)


def error_remedy(error: BaseException) -> Remedy:
    """Return what helps against ``error`` (see :class:`Remedy`)."""
    if is_transient(error):
        return Remedy.TRANSIENT
    if isinstance(error, DataWorksAuthError):
        return Remedy.PERMISSION
    if isinstance(error, DataWorksNotFoundError):
        return Remedy.NOT_FOUND
    if isinstance(error, DataWorksApiError):
        text = f"{error.code or ''} {error.message}"
        if _NOT_YET.search(text):
            return Remedy.NOT_YET
    return Remedy.PERMANENT


def describe_permission_error(error: DataWorksError) -> str:
    """Say which action was refused, with the code and RequestId, and what to grant."""
    action = getattr(error, "action", None) or "the call"
    code = getattr(error, "code", None) or "an access error"
    request_id = getattr(error, "request_id", None)
    text = (
        f"DataWorks refused {action} with {code}"
        + (f" (RequestId {request_id})" if request_id else "")
        + f": {getattr(error, 'message', error)}. The credentials may not call {action}: grant the RAM "
        f"action dataworks:{action} on this workspace (or the AliyunDataWorksFullAccess policy), and check the "
        "AccessKey, its secret and any STS token. Waiting does not heal this, so the task stops now."
    )
    return text
