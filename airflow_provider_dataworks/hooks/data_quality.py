"""DataWorksDataQualityHook: the DataWorks Data Quality calls (2024-05-18), on the pipeline-run hook's core.

Every call goes through :meth:`DataWorksHook._call` / :meth:`DataWorksHook._acall`, so the
connection handling, the SDK client, the shared async transport, the retry policy (and any
request budget added there) apply unchanged. ``CreateDataQualityEvaluationTaskInstance`` has
no idempotency token: like ``CreatePipelineRun`` it is repeated only when DataWorks certainly
did not execute it, and an ambiguous failure raises :class:`DataQualityAmbiguousCreateError`
for the caller to reconcile with :meth:`list_data_quality_evaluation_task_instances`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_dataworks.exceptions import (
    DataQualityAmbiguousCreateError,
    DataQualityFailedError,
    DataQualityTimeoutError,
    DataWorksError,
    PipelineRunAmbiguousCreateError,
)
from airflow_provider_dataworks.hooks.dataworks import MAX_PAGE_SIZE, DataWorksHook, _collect
from airflow_provider_dataworks.pacing import pause_before_next_read
from airflow_provider_dataworks.status import DataQualityEvaluation


def validate_evaluation_task_id(value: Any, field_name: str = "data_quality_evaluation_task_id") -> int:
    """Return a Data Quality evaluation task ID (a positive integer), or raise naming the field."""
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError(f"{field_name} is required: the ID of a DataWorks Data Quality evaluation task.")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{field_name} must be an integer ID such as 10001, got {value!r}.") from None
    if number <= 0:
        raise ValueError(f"{field_name} must be a positive integer ID, got {value!r}.")
    return number


def evaluation_parameters(trigger_time_ms: int, extra: Mapping[str, Any] | None = None) -> str:
    """The ``Parameters`` JSON: ``triggerTime`` (required, epoch ms) and any further keys given."""
    parameters = dict(extra or {})
    parameters["triggerTime"] = int(trigger_time_ms)
    return json.dumps(parameters, separators=(",", ":"), sort_keys=True)


class DataWorksDataQualityHook(DataWorksHook):
    """Run DataWorks Data Quality evaluation task instances and read their results."""

    hook_name = "Alibaba Cloud DataWorks Data Quality"

    # ---------------------------------------------------------------- Create…

    def create_data_quality_evaluation_task_instance(
        self,
        task_id: Any,
        *,
        trigger_time_ms: int,
        project_id: Any = None,
        parameters: Mapping[str, Any] | None = None,
        resource_group_id: str | None = None,
        cu: float | None = None,
    ) -> int:
        """Start one evaluation of the task; return the instance ID.

        :param trigger_time_ms: the ``triggerTime`` (epoch ms), the base of ``$[yyyymmdd]`` in the task's data range.
        :param parameters: further keys of the ``Parameters`` JSON.
        :param resource_group_id: the runtime resource group (needed for data outside MaxCompute).
        :param cu: the compute units of the runtime resource.
        :raises DataQualityAmbiguousCreateError: DataWorks may or may not have started the evaluation.
        """
        task = validate_evaluation_task_id(task_id)
        project = self.resolve_project_id(project_id)
        params: dict[str, Any] = {
            "data_quality_evaluation_task_id": task,
            "project_id": project,
            "parameters": evaluation_parameters(trigger_time_ms, parameters),
        }
        if resource_group_id or cu is not None:
            self.get_conn()  # the SDK is imported with the client; the nested model needs it
            from alibabacloud_dataworks_public20240518 import models

            params["runtime_resource"] = models.CreateDataQualityEvaluationTaskInstanceRequestRuntimeResource(
                resource_group_id=resource_group_id, cu=cu
            )
        try:
            body = self._call(
                "CreateDataQualityEvaluationTaskInstance",
                "CreateDataQualityEvaluationTaskInstanceRequest",
                create=True,
                **params,
            )
        except PipelineRunAmbiguousCreateError as err:
            raise DataQualityAmbiguousCreateError(
                f"CreateDataQualityEvaluationTaskInstance for task {task} in workspace {project} failed without a "
                f"clear answer, so the evaluation may or may not have started: {err.cause}. It was not resubmitted.",
                cause=err.cause,
            ) from err
        instance_id = body.get("Id")
        if instance_id in (None, ""):
            raise DataWorksError(
                f"CreateDataQualityEvaluationTaskInstance for task {task} returned no Id "
                f"(RequestId {body.get('RequestId')})."
            )
        self.log.info(
            "Started DataWorks Data Quality evaluation %s of task %s in workspace %s (RequestId %s).",
            instance_id,
            task,
            project,
            body.get("RequestId"),
        )
        return int(instance_id)

    # ---------------------------------------------------------------- Get…

    def get_data_quality_evaluation_task_instance(self, instance_id: int) -> DataQualityEvaluation:
        """Return the instance with its status and per-rule results."""
        body = self._call(
            "GetDataQualityEvaluationTaskInstance", "GetDataQualityEvaluationTaskInstanceRequest", id=int(instance_id)
        )
        return _parse_instance(body)

    async def get_data_quality_evaluation_task_instance_async(self, instance_id: int) -> DataQualityEvaluation:
        body = await self._acall(
            "GetDataQualityEvaluationTaskInstance", "GetDataQualityEvaluationTaskInstanceRequest", id=int(instance_id)
        )
        return _parse_instance(body)

    # ---------------------------------------------------------------- List…

    def list_data_quality_evaluation_task_instances(
        self, task_id: Any, project_id: Any = None, *, create_time_from_ms: int | None = None
    ) -> list[DataQualityEvaluation]:
        """Return the task's instances (created at or after ``create_time_from_ms``), every page."""
        params: dict[str, Any] = {
            "data_quality_evaluation_task_id": validate_evaluation_task_id(task_id),
            "project_id": self.resolve_project_id(project_id),
            "create_time_from": create_time_from_ms,
            "page_size": MAX_PAGE_SIZE,
        }
        found: list[DataQualityEvaluation] = []
        for page in range(1, 1_000_000):
            body = self._call(
                "ListDataQualityEvaluationTaskInstances",
                "ListDataQualityEvaluationTaskInstancesRequest",
                page_number=page,
                **params,
            )
            if _collect(
                body, "DataQualityEvaluationTaskInstances", DataQualityEvaluation.from_api, found, MAX_PAGE_SIZE
            ):
                break
        return found

    # ---------------------------------------------------------------- the blocking wait

    def wait_for_data_quality_evaluation(
        self,
        instance_id: int,
        *,
        fail_on_warn: bool = False,
        poll_interval: float = 10.0,
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> DataQualityEvaluation:
        """Poll the instance until it finishes; return it when the gate opens.

        :raises DataQualityFailedError: ``Critical``, ``Error``, or ``Warned`` with ``fail_on_warn``.
        :raises DataQualityTimeoutError: ``deadline`` (absolute ``time.time()``) passed first.
        """
        while True:
            evaluation = self.get_data_quality_evaluation_task_instance(instance_id)
            if evaluation.is_terminal:
                if evaluation.passes(fail_on_warn):
                    return evaluation
                raise DataQualityFailedError(evaluation)
            pause = pause_before_next_read(poll_interval, deadline)
            if pause is None:
                raise DataQualityTimeoutError(
                    f"Data Quality evaluation {instance_id} was still {evaluation.status} at the timeout.",
                    evaluation=evaluation,
                )
            sleep(pause)


def _parse_instance(body: dict[str, Any]) -> DataQualityEvaluation:
    return DataQualityEvaluation.from_api(
        body.get("DataQualityEvaluationTaskInstance") or {}, request_id=body.get("RequestId")
    )
