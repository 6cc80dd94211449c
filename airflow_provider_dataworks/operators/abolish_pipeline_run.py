"""Abolish a pipeline run nobody is going to finish, e.g. a release a person rejected in Airflow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_dataworks.abolish import abolish_and_confirm
from airflow_provider_dataworks.arguments import parse_policy
from airflow_provider_dataworks.exceptions import DataWorksError
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.hooks.settings import parse_project_id

if TYPE_CHECKING:
    from airflow.sdk import Context


def parse_pipeline_run_id(value: Any, field_name: str = "pipeline_run_id") -> str:
    """Return a rendered run ID, or raise naming ``field_name``.

    An upstream task that pushed nothing renders as ``None`` or ``"None"``: refused, never sent to DataWorks.
    """
    text = "" if value is None else str(value).strip()
    if not text or text == "None":
        raise ValueError(
            f"{field_name} is required, got {value!r}. When it is templated from XCom, check that the "
            "upstream task pushed it (CreatePipelineRunOperator returns the run ID)."
        )
    return text


class AbolishPipelineRunOperator(BaseOperator):
    """Abolish a pipeline run and succeed only when a read confirms that nothing of it goes on.

    The run is abolished with ``AbolishPipelineRun`` (asked again a few times while DataWorks refuses),
    then read back. The task

    * succeeds when the run reads ``Termination``/``Cancel`` (abolished), or ``Fail`` (it had ended
      without deploying);
    * fails without retry (:class:`AirflowFailException`) when the run had already ended ``Success``:
      it deployed, and abolishing cannot undo that;
    * fails (and is retried) when the abolish was refused or the run could not be read back.

    It never executes a stage and never creates a run.

    :param pipeline_run_id: the run, e.g. ``"{{ ti.xcom_pull(task_ids='prepare_release') }}"``.
    :param project_id: its workspace ID; default: the connection's ``project_id`` extra.
    :param dataworks_conn_id: the DataWorks (or ``alibaba_cloud``) connection.
    :param region: overrides the connection's region.
    :param dataworks_retry_policy: per-call retries of transient DataWorks errors, a
        :class:`~airflow_provider_dataworks.hooks.retry.DataWorksRetryPolicy` or a dict of its fields.
    """

    template_fields: Sequence[str] = ("pipeline_run_id", "project_id", "dataworks_conn_id", "region")
    ui_color = "#f4cccc"

    def __init__(
        self,
        *,
        pipeline_run_id: str,
        project_id: int | str | None = None,
        dataworks_conn_id: str = DataWorksHook.default_conn_name,
        region: str | None = None,
        dataworks_retry_policy: DataWorksRetryPolicy | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline_run_id = pipeline_run_id
        self.project_id = project_id
        self.dataworks_conn_id = dataworks_conn_id
        self.region = region
        self.dataworks_retry_policy = dataworks_retry_policy

    def execute(self, context: Context) -> str:
        run_id = parse_pipeline_run_id(self.pipeline_run_id)
        policy = parse_policy(DataWorksRetryPolicy.coerce, self.dataworks_retry_policy)
        hook = DataWorksHook(self.dataworks_conn_id, region=self.region, retry_policy=policy)
        # an explicitly empty project_id is an error, not a fall-back to the connection's
        project_id = parse_project_id(self.project_id) if self.project_id is not None else hook.resolve_project_id()

        outcome = abolish_and_confirm(hook, run_id, project_id)
        run = outcome.run
        if run is not None and run.is_success:
            raise AirflowFailException(
                f"{outcome.message} It deployed: abolishing cannot undo a deployment (roll back by deploying "
                "the previous version)."
            )
        if not outcome.finished:
            raise DataWorksError(outcome.message)
        self.log.info("%s", outcome.message)
        return run_id
