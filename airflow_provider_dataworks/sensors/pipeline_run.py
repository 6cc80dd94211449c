"""Wait for an existing pipeline run — in poke, reschedule or deferrable mode, with one set of rules."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
    BaseOperator,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_dataworks._compat import (
    earliest,
    execution_deadline,
    is_framework_timeout,
    task_deferral_timeout,
)
from airflow_provider_dataworks.arguments import parse_policy, parse_stage_code
from airflow_provider_dataworks.exceptions import (
    DataWorksError,
    PipelineRunFailedError,
    PipelineRunGaveUpError,
    PipelineRunTimeoutError,
    Remedy,
    describe_permission_error,
    error_remedy,
    failure_error,
    is_transient,
)
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.hooks.settings import parse_project_id
from airflow_provider_dataworks.progress import RunProgress, StageExecPolicy, Step
from airflow_provider_dataworks.status import PipelineRun

if TYPE_CHECKING:
    from airflow.sdk import Context

#: extra seconds the framework's deferral timeout gives the trigger to report its own timeout
DEFERRAL_GRACE_SECONDS = 60.0


class PipelineRunSensor(BaseSensorOperator):
    """Wait until a pipeline run finishes; optionally drive its stages.

    The outcome is the same in every mode (poke, reschedule, deferrable): success on ``Success``
    (or, with ``advance_until_stage``, once that stage and every stage before it succeeded);
    :class:`AirflowFailException` (no retries) on ``Fail``/``Termination``/``Cancel`` with the run
    ID, failing stage and DataWorks' messages; :class:`AirflowSensorTimeout` when ``timeout``
    passes. ``soft_fail`` turns those two into a skip — in every mode, exactly as in poke mode
    (other errors, such as an exhausted retry budget, fail the try normally and are retried).
    The sensor never cancels the run: it only watches (and, with ``advance_stages``, advances) it.

    :param pipeline_run_id: the run, e.g. ``"{{ ti.xcom_pull(task_ids='deploy') }}"``.
    :param project_id: its workspace ID; default: the connection's ``project_id`` extra.
    :param advance_stages: execute each stage that waits for ``ExecPipelineRunStage`` (default False).
    :param advance_until_stage: succeed once this stage code (and every stage before it) succeeded.
        When the sensor drives the run (``advance_stages``), it publishes the deployment report at the
        end, as :class:`CreatePipelineRunOperator` does (XComs ``pipeline_run_items``, ``pipeline_run_summary``).
    :param deferrable: wait on the triggerer (polling every ``poke_interval`` seconds).
    :param dataworks_conn_id: the DataWorks (or ``alibaba_cloud``) connection.
    :param region: overrides the connection's region.
    :param dataworks_retry_policy: per-call retries of transient DataWorks errors, a
        :class:`~airflow_provider_dataworks.hooks.retry.DataWorksRetryPolicy` or a dict of its fields
        (``retry_policy`` is Airflow's own task-level policy and goes to Airflow untouched).
    :param stage_exec_policy: with ``advance_stages``, how a stage DataWorks did not accept is executed
        again: a dict of :class:`~airflow_provider_dataworks.progress.StageExecPolicy`'s fields; the
        deferred wait continues the same backoff on the triggerer.
    """

    template_fields: Sequence[str] = (
        "pipeline_run_id",
        "project_id",
        "advance_until_stage",
        "dataworks_conn_id",
        "region",
    )
    ui_color = "#ffe4c4"

    def __init__(
        self,
        *,
        pipeline_run_id: str,
        project_id: int | str | None = None,
        advance_stages: bool = False,
        advance_until_stage: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        dataworks_conn_id: str = DataWorksHook.default_conn_name,
        region: str | None = None,
        dataworks_retry_policy: DataWorksRetryPolicy | dict[str, Any] | None = None,
        stage_exec_policy: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline_run_id = pipeline_run_id
        self.project_id = project_id
        self.advance_stages = advance_stages
        self.advance_until_stage = advance_until_stage
        self.deferrable = deferrable
        self.dataworks_conn_id = dataworks_conn_id
        self.region = region
        self.dataworks_retry_policy = dataworks_retry_policy
        self.stage_exec_policy = stage_exec_policy
        self._hook: DataWorksHook | None = None
        self._progress: RunProgress | None = None
        self._event_observed: dict[str, Any] = {}
        self._resolved: tuple[str, int] | None = None

    # ------------------------------------------------------------------ helpers

    def _run_id(self) -> str:
        value = self.pipeline_run_id
        text = "" if value is None else str(value).strip()
        if not text or text == "None":
            raise ValueError(
                f"pipeline_run_id is required, got {value!r}. When it is templated from XCom, check that the "
                "upstream task pushed it (CreatePipelineRunOperator returns the run ID)."
            )
        return text

    def _until_stage(self) -> str | None:
        return parse_stage_code(self.advance_until_stage, "advance_until_stage")

    def _stage_exec_policy(self) -> StageExecPolicy:
        return parse_policy(StageExecPolicy.coerce, self.stage_exec_policy)

    def get_hook(self) -> DataWorksHook:
        if self._hook is None:
            policy = parse_policy(DataWorksRetryPolicy.coerce, self.dataworks_retry_policy)
            self._hook = DataWorksHook(self.dataworks_conn_id, region=self.region, retry_policy=policy)
        return self._hook

    def _target(self) -> tuple[str, int]:
        """Validate the rendered arguments (once) and return ``(run_id, project_id)``."""
        if self._resolved is None:
            run_id = self._run_id()
            self._until_stage()
            self._stage_exec_policy()
            hook = self.get_hook()
            project = parse_project_id(self.project_id) if self.project_id is not None else hook.resolve_project_id()
            self._resolved = (run_id, project)
        return self._resolved

    # ------------------------------------------------------------------ poke

    def poke(self, context: Context) -> PokeReturnValue | bool:
        run_id, project_id = self._target()
        hook = self.get_hook()
        if self._progress is None:
            self._progress = RunProgress(
                advance_stages=self.advance_stages,
                advance_until_stage=self._until_stage(),
                logger=self.log,
                stage_exec_policy=self._stage_exec_policy(),
            )
        try:
            run, decision = hook.advance_pipeline_run(run_id, project_id, self._progress)
        except DataWorksError as err:
            if is_transient(err):
                # the retries of this read ran out; the sensor's own timeout ends the wait, not an outage
                self.log.warning("DataWorks did not answer (%s); reading pipeline run %s again later.", err, run_id)
                return False
            if error_remedy(err) is Remedy.PERMISSION:
                raise PipelineRunGaveUpError(describe_permission_error(err), cause=err) from err
            raise PipelineRunGaveUpError(f"Waiting cannot heal this: {err}", cause=err) from err
        if decision.step is Step.SUCCEED:
            self.log.info("%s", decision.reason)
            self._report(context, run)
            self._announce(context, run)
            return PokeReturnValue(is_done=True, xcom_value=run.id)
        if decision.step is Step.FAIL and run.is_failed:
            self._report(context, run)
            raise AirflowFailException(str(failure_error(run)))
        decision.raise_for_failure(run)
        return False

    # ------------------------------------------------------------------ deferrable

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        try:
            run_id, project_id = self._target()
            done = self.poke(context)
        except Exception as err:
            self._raise_for_failure(err)
        if isinstance(done, PokeReturnValue):
            if done.is_done:
                return done.xcom_value
        elif done:
            return run_id
        if self.poke_interval <= 0:
            raise ValueError(
                f"poke_interval must be greater than 0 seconds in deferrable mode, got {self.poke_interval}."
            )
        # imported here, not at the top: every DAG file parse imports this module
        from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

        self.defer(
            trigger=PipelineRunTrigger(
                pipeline_run_id=run_id,
                project_id=project_id,
                dataworks_conn_id=self.dataworks_conn_id,
                region=self.region,
                poll_interval=self.poke_interval,
                # execution_timeout is part of the deadline (the framework does not end a deferral for it)
                end_time=earliest(time.time() + self.timeout, execution_deadline(context, self.execution_timeout)),
                advance_stages=self.advance_stages,
                advance_until_stage=self._until_stage(),
                retry_policy=DataWorksRetryPolicy.coerce(self.dataworks_retry_policy).to_dict(),
                cancel_on_kill=False,
                executed_stages=self._progress.executed_stages if self._progress else [],
                next_poll_at=time.time() + self.poke_interval,
                stage_exec_policy=self._stage_exec_policy().to_dict(),
                # the backoff of a stage DataWorks refused goes on where the first poke left it
                exec_failures=self._progress.exec_failures if self._progress else {},
                observed_stages=self._progress.observed_stages if self._progress else {},
            ),
            method_name="execute_complete",
            # A backstop only: the trigger reports the timeout itself, naming the stage.
            timeout=timedelta(seconds=self.timeout + DEFERRAL_GRACE_SECONDS),
        )

    def execute_complete(self, context: Context, event: Any = None) -> str:
        """Resume after the trigger; the shared validation decides, this maps it to sensor semantics."""
        from airflow_provider_dataworks.triggers.pipeline_run import observed_of, resolve_trigger_event

        self._event_observed = observed_of(event)
        try:
            run = resolve_trigger_event(event, pipeline_run_id=self._run_id(), advance_until_stage=self._until_stage())
        except PipelineRunFailedError as err:
            self._report(context, err.run)
            raise AirflowFailException(str(err)) from err
        except PipelineRunTimeoutError as err:
            ends = execution_deadline(context, self.execution_timeout)
            if ends is not None and time.time() >= ends:  # execution_timeout, not the sensor's timeout
                raise AirflowTaskTimeout(str(err)) from err
            raise AirflowSensorTimeout(str(err)) from err
        self.log.info("Pipeline run %s finished: %s.", run.id, run.status)
        self._report(context, run)
        self._announce(context, run)
        return run.id

    def _announce(self, context: Context, run: PipelineRun) -> None:
        """Give a successful run's type and ID to the asset events of the ``dataworks`` outlets of its workspace.

        The sensor knows the run, not the object it deploys: every ``dataworks`` outlet of the run's
        workspace is announced.
        """
        if not self.outlets:
            return
        from airflow_provider_dataworks.assets import announce_deployment

        announce_deployment(
            context, self.outlets, run, run_type=run.run_type, project_id=self._target()[1], logger=self.log
        )

    def _report(self, context: Context, run: PipelineRun) -> None:
        """Publish the deployment report of a run this sensor drives (``advance_stages``)."""
        if self.advance_stages:
            from airflow_provider_dataworks.report import publish_report

            observed = self._progress.observed_stages if self._progress is not None else self._event_observed
            publish_report(
                self.get_hook(), run, context["ti"], self.log, project_id=self._target()[1], observed=observed
            )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        # BaseSensorOperator skips on ANY AirflowException when resuming with soft_fail, but in
        # poke mode only on timeouts and AirflowFailException. Apply the poke-mode rule here too,
        # so a soft_fail sensor behaves the same in every mode.
        try:
            if is_framework_timeout(next_method, next_kwargs):  # Airflow 2.x: see the operator's resume_execution
                raise task_deferral_timeout()(str((next_kwargs or {}).get("error")))
            return BaseOperator.resume_execution(self, next_method, next_kwargs, context)
        except task_deferral_timeout() as err:
            self._raise_for_failure(AirflowSensorTimeout(*err.args))
        except Exception as err:
            self._raise_for_failure(err)

    def _raise_for_failure(self, error: BaseException) -> NoReturn:
        """Raise ``error``, or a skip where poke mode would skip (``soft_fail``/``never_fail``)."""
        if isinstance(error, (AirflowSensorTimeout, AirflowTaskTimeout, AirflowFailException)) and self.soft_fail:
            raise AirflowSkipException("Skipping due to soft_fail is set to True.") from error
        if isinstance(error, AirflowSkipException):
            raise error
        if getattr(self, "never_fail", False) and isinstance(error, Exception):
            raise AirflowSkipException("Skipping due to never_fail is set to True.") from error
        raise error
