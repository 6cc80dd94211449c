"""Gate a DAG on a DataWorks Data Quality evaluation, starting it exactly once per task instance try."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider_dataworks.arguments import parse_policy, parse_seconds
from airflow_provider_dataworks.exceptions import (
    DataQualityAmbiguousCreateError,
    DataQualityFailedError,
    DataWorksError,
    DataWorksNotFoundError,
)
from airflow_provider_dataworks.hooks.data_quality import DataWorksDataQualityHook, validate_evaluation_task_id
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.hooks.settings import parse_project_id
from airflow_provider_dataworks.reattach import task_tag_from_context
from airflow_provider_dataworks.status import DataQualityEvaluation

if TYPE_CHECKING:
    from airflow.sdk import Context

#: XCom keys pushed by :class:`DataQualityEvaluationOperator`
XCOM_INSTANCE_ID = "data_quality_instance_id"
XCOM_RESULTS = "data_quality_results"
#: key of this operator's record in Airflow's task state store
STATE_KEY = "dataworks_data_quality_evaluation"
#: how far before our create the reconcile lookup starts (clock skew between worker and DataWorks)
CLOCK_SKEW_MS = 5 * 60 * 1000
DEFAULT_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class StoredEvaluation:
    """What the task state store keeps about this task instance's evaluation.

    Written *before* the create (``instance_id`` ``None``: "a create may have happened since
    ``created_after_ms``") and again once the instance ID is known.
    """

    task_id: int
    project_id: int
    trigger_time_ms: int
    tag: str
    created_after_ms: int
    instance_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "project_id": self.project_id,
            "trigger_time_ms": self.trigger_time_ms,
            "tag": self.tag,
            "created_after_ms": self.created_after_ms,
            "instance_id": self.instance_id,
        }

    @classmethod
    def from_json(cls, value: Any) -> StoredEvaluation | None:
        if not isinstance(value, Mapping):
            return None
        try:
            instance = value.get("instance_id")
            return cls(
                task_id=int(value["task_id"]),
                project_id=int(value["project_id"]),
                trigger_time_ms=int(value["trigger_time_ms"]),
                tag=str(value["tag"]),
                created_after_ms=int(value["created_after_ms"]),
                instance_id=None if instance is None else int(instance),
            )
        except (KeyError, TypeError, ValueError):
            return None


class _Store:
    """Best-effort task state store access (a store failure never fails the task)."""

    def __init__(self, context: Mapping[str, Any], logger: Any) -> None:
        self._store = context.get("task_state_store")
        self.log = logger

    def get(self) -> StoredEvaluation | None:
        if self._store is None:
            return None
        try:
            return StoredEvaluation.from_json(self._store.get(STATE_KEY))
        except Exception as err:
            self.log.warning("Could not read the task state store (%s: %s).", type(err).__name__, err)
            self._store = None
            return None

    def set(self, record: StoredEvaluation) -> None:
        if self._store is None:
            return
        try:
            self._store.set(STATE_KEY, record.to_json())
        except Exception as err:
            self.log.warning("Could not write the task state store (%s: %s).", type(err).__name__, err)
            self._store = None


def _trigger_time_ms(value: Any, context: Mapping[str, Any]) -> int:
    """``trigger_time`` as epoch ms; default: the data interval's end, the logical date, or now."""
    if value is None or value == "":
        for key in ("data_interval_end", "logical_date"):
            moment = context.get(key)
            if isinstance(moment, datetime):
                return int(moment.timestamp() * 1000)
        return int(time.time() * 1000)
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            return int(datetime.fromisoformat(text).timestamp() * 1000)
        except ValueError:
            pass
    raise ValueError(f"trigger_time must be a datetime, epoch milliseconds or an ISO 8601 string, got {value!r}.")


class DataQualityEvaluationOperator(BaseOperator):
    """Run a DataWorks Data Quality evaluation task and let the DAG go on only when its rules pass.

    Starts one instance of the evaluation task (``CreateDataQualityEvaluationTaskInstance``) and waits
    for it (blocking or deferred). Succeeds on ``Passed``, and on ``Warned`` unless ``fail_on_warn``;
    fails on ``Critical`` and ``Error`` naming every rule that did not pass with its threshold and
    actual value. The instance ID goes to XCom ``data_quality_instance_id`` (also the return value),
    the rule results to ``data_quality_results``.

    A retry never starts a second evaluation while one of this task instance is running, nor after one
    passed: the instance is recorded in Airflow's task state store (before and after the create), and
    a create that failed without a clear answer is looked up among the task's instances
    (``ListDataQualityEvaluationTaskInstances``, same ``triggerTime``, created since just before it).
    After a failed evaluation, a retry starts a new one (the data may have been repaired).

    :param data_quality_evaluation_task_id: ID of the Data Quality evaluation task (templated).
    :param project_id: workspace ID; default: the connection's ``project_id`` extra.
    :param trigger_time: the ``triggerTime`` of the evaluation (the base of ``$[yyyymmdd]`` in the
        task's data range): a datetime, epoch milliseconds or ISO 8601 text; default: the DAG run's
        data interval end (else its logical date, else now).
    :param parameters: further keys of the ``Parameters`` JSON.
    :param resource_group_id: the runtime resource group (needed for data outside MaxCompute).
    :param cu: compute units of the runtime resource.
    :param fail_on_warn: fail on ``Warned`` too (default: a warning lets the gate open).
    :param deferrable: wait on the triggerer instead of a worker slot.
    :param poll_interval: seconds between two reads (default 10).
    :param timeout: seconds or timedelta the wait of one try may take (default 2 hours); ``None``: no limit.
    :param reattach: adopt this task instance's running or passed evaluation on a retry (default True).
    :param dataworks_conn_id: the DataWorks (or ``alibaba_cloud``) connection.
    :param region: overrides the connection's region.
    :param dataworks_retry_policy: per-call retries of transient DataWorks errors.
    """

    template_fields: Sequence[str] = (
        "data_quality_evaluation_task_id",
        "project_id",
        "trigger_time",
        "parameters",
        "resource_group_id",
        "dataworks_conn_id",
        "region",
    )
    ui_color = "#c9f2d0"

    def __init__(
        self,
        *,
        data_quality_evaluation_task_id: int | str,
        project_id: int | str | None = None,
        trigger_time: datetime | int | str | None = None,
        parameters: dict[str, Any] | None = None,
        resource_group_id: str | None = None,
        cu: float | None = None,
        fail_on_warn: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | timedelta = 10.0,
        timeout: float | timedelta | None = DEFAULT_TIMEOUT,
        reattach: bool = True,
        dataworks_conn_id: str = DataWorksDataQualityHook.default_conn_name,
        region: str | None = None,
        dataworks_retry_policy: DataWorksRetryPolicy | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_quality_evaluation_task_id = data_quality_evaluation_task_id
        self.project_id = project_id
        self.trigger_time = trigger_time
        self.parameters = parameters
        self.resource_group_id = resource_group_id
        self.cu = cu
        self.fail_on_warn = fail_on_warn
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.reattach = reattach
        self.dataworks_conn_id = dataworks_conn_id
        self.region = region
        self.dataworks_retry_policy = dataworks_retry_policy

    def _policy(self) -> DataWorksRetryPolicy:
        return parse_policy(DataWorksRetryPolicy.coerce, self.dataworks_retry_policy)

    def _hook(self) -> DataWorksDataQualityHook:
        return DataWorksDataQualityHook(self.dataworks_conn_id, region=self.region, retry_policy=self._policy())

    # ------------------------------------------------------------------ execute

    def execute(self, context: Context) -> int:
        task_id = validate_evaluation_task_id(self.data_quality_evaluation_task_id)
        project = None if self.project_id in (None, "") else parse_project_id(self.project_id)
        trigger_time = _trigger_time_ms(self.trigger_time, context)
        if self.parameters is not None and not isinstance(self.parameters, Mapping):
            raise ValueError(f"parameters must be a mapping of extra Parameters keys, got {self.parameters!r}.")
        if self.cu is not None and (isinstance(self.cu, bool) or not isinstance(self.cu, (int, float))):
            raise ValueError(f"cu must be a number of compute units, got {self.cu!r}.")
        poll_interval = parse_seconds(self.poll_interval, "poll_interval", allow_none=False)
        assert poll_interval is not None
        timeout = parse_seconds(self.timeout, "timeout", allow_none=True)
        policy = self._policy()
        hook = self._hook()
        hook.get_conn()  # bad connections fail here, before any remote call
        project_id = project if project is not None else hook.resolve_project_id(None)
        deadline = None if timeout is None else time.time() + timeout

        store = _Store(context, self.log)
        tag = task_tag_from_context(context)
        evaluation = self._adopt(hook, store, task_id, project_id, trigger_time, tag) if self.reattach else None
        instance_id = evaluation.id if evaluation is not None else None
        if instance_id is None:
            instance_id = self._create(hook, store, task_id, project_id, trigger_time, tag, policy)
        context["ti"].xcom_push(key=XCOM_INSTANCE_ID, value=instance_id)

        if evaluation is None or not evaluation.is_terminal:
            evaluation = hook.get_data_quality_evaluation_task_instance(instance_id)
        if not evaluation.is_terminal and self.deferrable:
            from airflow_provider_dataworks.triggers.data_quality import DataQualityEvaluationTrigger

            self.defer(
                trigger=DataQualityEvaluationTrigger(
                    instance_id=instance_id,
                    dataworks_conn_id=self.dataworks_conn_id,
                    region=self.region,
                    poll_interval=poll_interval,
                    end_time=deadline,
                    fail_on_warn=self.fail_on_warn,
                    retry_policy=policy.to_dict(),
                    next_poll_at=time.time() + poll_interval,
                ),
                method_name="execute_complete",
                kwargs={"instance_id": instance_id},
                timeout=None,  # the trigger owns the deadline and reports it naming the instance
            )
        if not evaluation.is_terminal:
            with self._results_kept_on_failure(context):
                evaluation = hook.wait_for_data_quality_evaluation(
                    instance_id, fail_on_warn=self.fail_on_warn, poll_interval=poll_interval, deadline=deadline
                )
        return self._finish(evaluation, context)

    def execute_complete(self, context: Context, event: Any = None, instance_id: int | None = None) -> int:
        """Resume after the trigger: the shared validation decides."""
        from airflow_provider_dataworks.triggers.data_quality import resolve_data_quality_event

        with self._results_kept_on_failure(context):
            evaluation = resolve_data_quality_event(event, instance_id=instance_id, fail_on_warn=self.fail_on_warn)
        return self._finish(evaluation, context)

    @contextmanager
    def _results_kept_on_failure(self, context: Context) -> Iterator[None]:
        """Push the rule results of an evaluation the body fails with (the wait's or the event's)."""
        try:
            yield
        except DataQualityFailedError as err:
            self._push_results(err.evaluation, context)
            raise

    def _finish(self, evaluation: DataQualityEvaluation, context: Context) -> int:
        self._push_results(evaluation, context)
        if not evaluation.passes(self.fail_on_warn):
            raise DataQualityFailedError(evaluation)
        if evaluation.rules_not_passed:
            self.log.warning(
                "Data Quality evaluation %s %s; the gate opens (fail_on_warn is off): %s",
                evaluation.id,
                evaluation.status,
                "; ".join(rule.describe() for rule in evaluation.rules_not_passed),
            )
        else:
            self.log.info("Data Quality evaluation %s %s: every rule passed.", evaluation.id, evaluation.status)
        return evaluation.id

    def _push_results(self, evaluation: DataQualityEvaluation, context: Context) -> None:
        context["ti"].xcom_push(key=XCOM_RESULTS, value=[rule.to_json() for rule in evaluation.results])

    # ------------------------------------------------------------------ exactly once

    def _adopt(
        self,
        hook: DataWorksDataQualityHook,
        store: _Store,
        task_id: int,
        project_id: int,
        trigger_time: int,
        tag: str,
    ) -> DataQualityEvaluation | None:
        """Return this task instance's running or passed evaluation recorded by an earlier try, if any."""
        stored = store.get()
        if stored is None or (stored.task_id, stored.project_id, stored.trigger_time_ms, stored.tag) != (
            task_id,
            project_id,
            trigger_time,
            tag,
        ):
            return None
        evaluation: DataQualityEvaluation | None
        if stored.instance_id is not None:
            try:
                evaluation = hook.get_data_quality_evaluation_task_instance(stored.instance_id)
            except DataWorksNotFoundError:
                return None
        else:
            # An earlier try may have died between the create and the store write.
            evaluation = self._find_created(hook, stored)
            if evaluation is None:
                return None
            store.set(replace(stored, instance_id=evaluation.id))
        if not evaluation.is_terminal or evaluation.passes(self.fail_on_warn):
            self.log.info(
                "Reattaching to Data Quality evaluation %s (%s) of an earlier try.", evaluation.id, evaluation.status
            )
            return evaluation
        self.log.info(
            "The earlier try's Data Quality evaluation %s ended %s; starting a new one.",
            evaluation.id,
            evaluation.status,
        )
        return None

    def _find_created(self, hook: DataWorksDataQualityHook, stored: StoredEvaluation) -> DataQualityEvaluation | None:
        """The newest instance of the task with our ``triggerTime``, created since just before our create."""
        found = hook.list_data_quality_evaluation_task_instances(
            stored.task_id, stored.project_id, create_time_from_ms=stored.created_after_ms
        )
        mine = [e for e in found if e.trigger_time_ms == stored.trigger_time_ms]
        newest = max(mine, key=lambda e: (e.create_time_ms or 0, e.id), default=None)
        if newest is None:
            return None
        # A listing row has no rule results (the SDK's list model carries no Results): decide on a full read.
        return hook.get_data_quality_evaluation_task_instance(newest.id)

    def _create(
        self,
        hook: DataWorksDataQualityHook,
        store: _Store,
        task_id: int,
        project_id: int,
        trigger_time: int,
        tag: str,
        policy: DataWorksRetryPolicy,
    ) -> int:
        pending = StoredEvaluation(task_id, project_id, trigger_time, tag, int(time.time() * 1000) - CLOCK_SKEW_MS)
        store.set(pending)
        try:
            instance_id = hook.create_data_quality_evaluation_task_instance(
                task_id,
                trigger_time_ms=trigger_time,
                project_id=project_id,
                parameters=self.parameters,
                resource_group_id=self.resource_group_id,
                cu=self.cu,
            )
        except DataQualityAmbiguousCreateError as err:
            self.log.warning("%s Looking for it among the task's evaluations.", err)
            evaluation = None
            for attempt, delay in enumerate(policy.lookup_delays(5)):
                time.sleep(delay)
                try:
                    evaluation = self._find_created(hook, pending)
                except DataWorksError as lookup_error:
                    self.log.warning("Lookup %d of 5 failed: %s", attempt + 1, lookup_error)
                    continue
                if evaluation is not None:
                    break
            if evaluation is None:
                raise DataQualityAmbiguousCreateError(
                    f"{err} No evaluation of this task with triggerTime {trigger_time} appeared after 5 lookups; "
                    "the next try looks for it again before starting one.",
                    cause=err.cause,
                ) from err
            self.log.info("The ambiguous create did start Data Quality evaluation %s; adopting it.", evaluation.id)
            instance_id = evaluation.id
        store.set(StoredEvaluation(task_id, project_id, trigger_time, tag, pending.created_after_ms, instance_id))
        return instance_id
