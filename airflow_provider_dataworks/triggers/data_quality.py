"""Wait for a DataWorks Data Quality evaluation on the triggerer, and the one place that reads its event.

The same machinery as the pipeline-run wait: the hook's ``*_async`` calls (shared session,
retry policy), the outcome rules of :class:`~airflow_provider_dataworks.status.DataQualityEvaluation`,
the event envelope checked by :func:`~airflow_provider_dataworks.triggers.events.check_event`,
and exactly one event per trigger run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypedDict

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_dataworks.exceptions import (
    DataQualityFailedError,
    DataQualityTimeoutError,
    DataWorksError,
    InvalidTriggerEventError,
)
from airflow_provider_dataworks.hooks.data_quality import DataWorksDataQualityHook
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.pacing import delay_before_first_read, pause_before_next_read
from airflow_provider_dataworks.status import DataQualityEvaluation
from airflow_provider_dataworks.triggers.events import EventStatus, check_event


class DataQualityEvent(TypedDict):
    """The payload of the one event a :class:`DataQualityEvaluationTrigger` yields.

    ``status``: ``success`` (the gate opens: ``Passed``, or ``Warned`` without ``fail_on_warn``),
    ``failed`` (``Critical``, ``Error``, or ``Warned`` with ``fail_on_warn``), ``timeout`` (still
    running at ``end_time``) or ``error`` (the instance could not be read: the retry budget was
    spent, or the connection is invalid).
    """

    status: EventStatus
    instance_id: int
    message: str
    #: :meth:`DataQualityEvaluation.to_json` of the last read, or ``None``
    evaluation: dict[str, Any] | None


def resolve_data_quality_event(
    event: Any, *, instance_id: int | None = None, fail_on_warn: bool = False
) -> DataQualityEvaluation:
    """Validate the event that resumed a task and turn it into the evaluation or an exception.

    :return: the finished evaluation, for a ``success`` event the evaluation itself confirms.
    :raises InvalidTriggerEventError: a malformed event, one about another instance, or an outcome
        the evaluation it carries contradicts.
    :raises DataQualityFailedError: ``failed``.
    :raises DataQualityTimeoutError: ``timeout``.
    :raises DataWorksError: ``error``.
    """
    event = check_event(
        event,
        id_key="instance_id",
        expected_id=instance_id,
        subject="Data Quality evaluation",
        record="evaluation",
    )
    status, message, data = event["status"], event["message"], event["evaluation"]
    try:
        evaluation = DataQualityEvaluation.from_json(data) if data else None
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidTriggerEventError(f"The trigger event's evaluation is malformed: {err!r}.") from None
    if evaluation is not None and str(evaluation.id) != str(event["instance_id"]):
        raise InvalidTriggerEventError(
            f"The trigger event's evaluation {evaluation.id} is not instance {event['instance_id']}."
        )
    if status in ("success", "failed"):
        if evaluation is None or not evaluation.is_terminal:
            raise InvalidTriggerEventError(
                f"The trigger reported {status}, but the evaluation it sent is "
                f"{evaluation.status if evaluation else 'missing'}: {message}"
            )
        if evaluation.passes(fail_on_warn) != (status == "success"):
            raise InvalidTriggerEventError(
                f"The trigger reported {status}, but evaluation {evaluation.id} is {evaluation.status} "
                f"(fail_on_warn={fail_on_warn})."
            )
        if status == "failed":
            raise DataQualityFailedError(evaluation)
        return evaluation
    if status == "timeout":
        raise DataQualityTimeoutError(message, evaluation=evaluation)
    raise DataWorksError(message or f"Waiting for Data Quality evaluation {event['instance_id']} failed.")


class DataQualityEvaluationTrigger(BaseTrigger):
    """Poll one Data Quality evaluation task instance until it finishes; yield one event.

    :param instance_id: the evaluation task instance.
    :param dataworks_conn_id: the connection to read it with.
    :param region: overrides the connection's region.
    :param poll_interval: seconds between two reads.
    :param end_time: absolute ``time.time()`` after which a ``timeout`` event is yielded; ``None``: no limit.
    :param fail_on_warn: a ``Warned`` evaluation fails the gate.
    :param retry_policy: :meth:`DataWorksRetryPolicy.to_dict` of the per-call retry policy.
    :param next_poll_at: absolute ``time.time()`` of the first read (the task read just before deferring).
    """

    def __init__(
        self,
        instance_id: int,
        dataworks_conn_id: str = DataWorksDataQualityHook.default_conn_name,
        region: str | None = None,
        poll_interval: float = 10.0,
        end_time: float | None = None,
        fail_on_warn: bool = False,
        retry_policy: dict[str, Any] | None = None,
        next_poll_at: float | None = None,
    ) -> None:
        super().__init__()
        self.instance_id = int(instance_id)
        self.dataworks_conn_id = dataworks_conn_id
        self.region = region
        self.poll_interval = float(poll_interval)
        self.end_time = None if end_time is None else float(end_time)
        self.fail_on_warn = bool(fail_on_warn)
        self.retry_policy = DataWorksRetryPolicy.coerce(retry_policy).to_dict()
        self.next_poll_at = None if next_poll_at is None else float(next_poll_at)
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval must be greater than 0 seconds, got {poll_interval!r}.")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "instance_id": self.instance_id,
                "dataworks_conn_id": self.dataworks_conn_id,
                "region": self.region,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "fail_on_warn": self.fail_on_warn,
                "retry_policy": dict(self.retry_policy),
                "next_poll_at": self.next_poll_at,
            },
        )

    def _event(self, status: EventStatus, message: str, evaluation: DataQualityEvaluation | None) -> TriggerEvent:
        payload: DataQualityEvent = {
            "status": status,
            "instance_id": self.instance_id,
            "message": message,
            "evaluation": evaluation.to_json() if evaluation is not None else None,
        }
        return TriggerEvent(dict(payload))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = DataWorksDataQualityHook(
            self.dataworks_conn_id, region=self.region, retry_policy=DataWorksRetryPolicy.coerce(self.retry_policy)
        )
        evaluation: DataQualityEvaluation | None = None
        if (delay := delay_before_first_read(self.next_poll_at, self.end_time)) > 0:
            await asyncio.sleep(delay)
        while True:
            try:
                evaluation = await hook.get_data_quality_evaluation_task_instance_async(self.instance_id)
            except (DataWorksError, ValueError) as err:
                message = f"Could not read Data Quality evaluation {self.instance_id}: {err}"
                yield self._event("error", message, evaluation)
                return
            if evaluation.is_terminal:
                if evaluation.passes(self.fail_on_warn):
                    message = f"Data Quality evaluation {self.instance_id} {evaluation.status}."
                    self.log.info("%s", message)
                    yield self._event("success", message, evaluation)
                else:
                    yield self._event("failed", evaluation.describe_failure(), evaluation)
                return
            pause = pause_before_next_read(self.poll_interval, self.end_time)
            if pause is None:
                message = f"Data Quality evaluation {self.instance_id} was still {evaluation.status} at the timeout."
                self.log.warning("%s", message)
                yield self._event("timeout", message, evaluation)
                return
            await asyncio.sleep(pause)
