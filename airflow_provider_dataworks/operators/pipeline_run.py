"""Deploy (or undeploy) one DataWorks object with a pipeline run, exactly once per task instance."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import AirflowTaskTimeout, BaseOperator, BaseOperatorLink, XCom, conf

from airflow_provider_dataworks._compat import (
    earliest,
    execution_deadline,
    is_framework_timeout,
    task_deferral_timeout,
)
from airflow_provider_dataworks.exceptions import (
    DataWorksClientError,
    DataWorksError,
    DataWorksNotFoundError,
    PipelineRunAmbiguousCreateError,
    PipelineRunTimeoutError,
)
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook, validate_object_id
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.hooks.settings import parse_choice, parse_project_id
from airflow_provider_dataworks.progress import RunProgress, Step
from airflow_provider_dataworks.reattach import (
    CLOCK_SKEW_SECONDS,
    Attempt,
    RunStore,
    StoredRun,
    active_tagged_runs,
    attempt_from_context,
    pick_adoptable,
    recent_tagged_runs,
    reconcile_ambiguous_create,
    tagged_description,
    tagged_runs,
    task_tag_from_context,
)
from airflow_provider_dataworks.status import PipelineRun, RunMode, RunType, StageTransitionLog

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

#: XCom keys pushed by :class:`CreatePipelineRunOperator`
XCOM_RUN_ID = "pipeline_run_id"
XCOM_RUN_URL = "pipeline_run_url"
#: default limit of the wait for one try (the run is abolished when it passes, see ``cancel_on_timeout``)
DEFAULT_TIMEOUT = timedelta(hours=6)
#: how many times an ambiguous create is reconciled by listing the object's runs
RECONCILE_ATTEMPTS = 5
#: the retry policy of the best-effort abolish in ``on_kill`` and after a timeout
ABOLISH_RETRY_POLICY = DataWorksRetryPolicy(max_attempts=3, base_delay=0.5, max_delay=2.0)

# The pre-deferral status check decides silently; the trigger logs the stage transitions, so
# each shows once in the task log.
_quiet = logging.getLogger(__name__ + ".precheck")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class DataWorksPipelineRunLink(BaseOperatorLink):
    """Link to the Data Studio page of the run's workspace (DataWorks has no per-run deep link).

    The URL is built while the task runs and read back only from the ``pipeline_run_url``
    XCom: rendering the link needs no connection and no DAG code.
    """

    name = "DataWorks Pipeline Run"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return XCom.get_value(ti_key=ti_key, key=XCOM_RUN_URL) or ""


@dataclass(frozen=True)
class _Request:
    """The operator's rendered arguments, validated."""

    object_id: str
    project_id: int | None
    type: str
    run_mode: str | None
    auto_run_until_stage: str | None
    advance_until_stage: str | None
    poll_interval: float
    timeout: float | None
    retry_policy: DataWorksRetryPolicy


def _seconds(value: Any, field_name: str, *, allow_none: bool) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError(f"{field_name} must be a number of seconds or a timedelta, got {value!r}.")
    if seconds <= 0:
        raise ValueError(f"{field_name} must be greater than 0 seconds, got {value!r}.")
    return seconds


def _since(attempt: Attempt) -> int | None:
    """Return the epoch ms before which no run can be this attempt's (with room for clock skew)."""
    return None if attempt.started_ms is None else attempt.started_ms - CLOCK_SKEW_SECONDS * 1000


def _optional_text(value: Any, field_name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field_name} must be a stage code string, got {value!r}.")
    return value.strip() or None


class CreatePipelineRunOperator(BaseOperator):
    """Deploy (``Online``) or undeploy (``Offline``) one DataWorks node or workflow with a pipeline run.

    The run ID is pushed to XCom (``pipeline_run_id``, also the return value) and the Data Studio URL
    (``pipeline_run_url``) as soon as the run exists; then the operator waits, blocking or deferred,
    executing each stage that waits for ``ExecPipelineRunStage`` when ``advance_stages`` is on.
    A retry never deploys twice: it adopts this task instance's active or successful run (see
    ``reattach``) and creates a new one only after a failed, terminated or cancelled run.

    :param object_id: ID of ONE node or workflow (a one-element list is accepted). For several
        objects use dynamic task mapping: ``.partial(...).expand(object_id=[...])``.
    :param project_id: workspace ID; default: the connection's ``project_id`` extra.
    :param type: ``Online`` (deploy, default) or ``Offline`` (undeploy).
    :param description: description of the run; ``[airflow:<tag>]`` is appended for reattach.
    :param run_mode: ``Normal`` or ``Auto`` (DataWorks runs the stages itself); default: DataWorks' default.
    :param auto_run_until_stage: with ``run_mode='Auto'``, the last stage DataWorks runs by itself.
    :param advance_stages: execute each stage that waits for ``ExecPipelineRunStage``, in step order,
        one at a time, only after the previous one succeeded.
    :param advance_until_stage: succeed once this stage code (and every stage before it) succeeded,
        leaving later stages alone, e.g. ``DEV`` to deploy to development only.
    :param wait_for_completion: wait for the run; ``False`` creates it, pushes XCom and returns.
    :param deferrable: wait on the triggerer instead of a worker slot.
    :param poll_interval: seconds between two reads of the run (default 10).
    :param timeout: seconds or timedelta the wait of one try may take (default 6 hours); when it
        passes the run is abolished (with ``cancel_on_timeout``) and the task fails. ``None``: no limit.
        The task's ``execution_timeout``, when set, ends the wait too, in both modes: the wait's deadline
        is the earlier of ``timeout`` and the try's start plus ``execution_timeout``.
    :param cancel_on_timeout: abolish the run when ``timeout`` or ``execution_timeout`` ends the wait
        (default True). For a run that waits for a person (an approval stage), set a long ``timeout``
        or ``cancel_on_timeout=False``: the task then fails and the run stays where it is.
    :param cancel_on_kill: abolish the run when the task is killed: marked failed or succeeded, cleared,
        or stopped by a signal (default True), on every supported Airflow version.
    :param reattach: adopt this task instance's existing run on a retry (default True); ``False``
        creates a fresh run on every try.
    :param dataworks_conn_id: the DataWorks (or ``alibaba_cloud``) connection.
    :param region: overrides the connection's region.
    :param dataworks_retry_policy: per-call retries of transient DataWorks errors (throttling, 5xx,
        transport), a :class:`~airflow_provider_dataworks.hooks.retry.DataWorksRetryPolicy` or a dict of its
        fields. Not to be confused with ``retry_policy``, Airflow 3.3's task-level retry policy
        (AIP-105), which this operator passes to Airflow untouched.
    """

    template_fields: Sequence[str] = (
        "object_id",
        "project_id",
        "type",
        "description",
        "run_mode",
        "auto_run_until_stage",
        "advance_until_stage",
        "dataworks_conn_id",
        "region",
    )
    operator_extra_links = (DataWorksPipelineRunLink(),)
    ui_color = "#ffd8b1"

    def __init__(
        self,
        *,
        object_id: str | list[str],
        project_id: int | str | None = None,
        type: str = RunType.ONLINE.value,
        description: str | None = None,
        run_mode: str | None = None,
        auto_run_until_stage: str | None = None,
        advance_stages: bool = True,
        advance_until_stage: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | timedelta = 10.0,
        timeout: float | timedelta | None = DEFAULT_TIMEOUT,
        cancel_on_timeout: bool = True,
        cancel_on_kill: bool = True,
        reattach: bool = True,
        dataworks_conn_id: str = DataWorksHook.default_conn_name,
        region: str | None = None,
        dataworks_retry_policy: DataWorksRetryPolicy | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.object_id = object_id
        self.project_id = project_id
        self.type = type
        self.description = description
        self.run_mode = run_mode
        self.auto_run_until_stage = auto_run_until_stage
        self.advance_stages = advance_stages
        self.advance_until_stage = advance_until_stage
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.cancel_on_timeout = cancel_on_timeout
        self.cancel_on_kill = cancel_on_kill
        self.reattach = reattach
        self.dataworks_conn_id = dataworks_conn_id
        self.region = region
        self.dataworks_retry_policy = dataworks_retry_policy
        #: the run this try works on, once known (``on_kill`` abolishes it)
        self.pipeline_run_id: str | None = None
        self._run_project_id: int | None = None
        #: the hook ``on_kill`` abolishes with, built from settings already read (no lookup in a signal handler)
        self._kill_hook: DataWorksHook | None = None
        #: set once this try's timeout was handled, so ``on_kill`` (called after AirflowTaskTimeout) stays out
        self._timeout_handled = False

    # ------------------------------------------------------------------ validation

    def _validate(self) -> _Request:
        """Check the rendered arguments; every error names the field and the accepted values."""
        object_id = validate_object_id(self.object_id)
        project_id = None if self.project_id is None else parse_project_id(self.project_id)
        run_type = parse_choice(RunType, self.type, "type")
        run_mode = None if self.run_mode in (None, "") else parse_choice(RunMode, self.run_mode, "run_mode")
        auto_until = _optional_text(self.auto_run_until_stage, "auto_run_until_stage")
        if auto_until and run_mode != RunMode.AUTO.value:
            raise ValueError(
                "auto_run_until_stage needs run_mode='Auto' (DataWorks only runs stages by itself in Auto mode); "
                f"got run_mode={self.run_mode!r}."
            )
        poll_interval = _seconds(self.poll_interval, "poll_interval", allow_none=False)
        assert poll_interval is not None
        try:
            retry_policy = DataWorksRetryPolicy.coerce(self.dataworks_retry_policy)
        except TypeError as err:
            raise ValueError(str(err)) from None
        return _Request(
            object_id=object_id,
            project_id=project_id,
            type=run_type,
            run_mode=run_mode,
            auto_run_until_stage=auto_until,
            advance_until_stage=_optional_text(self.advance_until_stage, "advance_until_stage"),
            poll_interval=poll_interval,
            timeout=_seconds(self.timeout, "timeout", allow_none=True),
            retry_policy=retry_policy,
        )

    def _hook(self, retry_policy: DataWorksRetryPolicy | None = None) -> DataWorksHook:
        return DataWorksHook(self.dataworks_conn_id, region=self.region, retry_policy=retry_policy)

    # ------------------------------------------------------------------ execute

    def execute(self, context: Context) -> str:
        request = self._validate()
        hook = self._hook(request.retry_policy)
        # Surface bad connections (missing credentials, unknown auth_type, a region without an
        # endpoint, no workspace) before any remote call.
        settings = hook.get_settings()
        hook.get_conn()
        project_id = request.project_id if request.project_id is not None else hook.resolve_project_id(None)
        self._kill_hook = hook.with_retry_policy(ABOLISH_RETRY_POLICY)
        deadline = earliest(
            None if request.timeout is None else time.time() + request.timeout,
            execution_deadline(context, self.execution_timeout),
        )

        store = RunStore(context, self.log)
        tag = task_tag_from_context(context)
        attempt = attempt_from_context(context, self.retries or 0)
        run_id, adopted = self._find_or_create(hook, store, request, project_id, tag, attempt)
        self.pipeline_run_id, self._run_project_id = run_id, project_id

        url = settings.console_link(project_id)
        ti = context["ti"]
        ti.xcom_push(key=XCOM_RUN_ID, value=run_id)
        ti.xcom_push(key=XCOM_RUN_URL, value=url)
        self.log.info("DataWorks pipeline run %s: %s", run_id, url)

        if adopted is not None and adopted.is_success:
            StageTransitionLog().log(adopted, cast("Any", self.log))
            self.log.info("Pipeline run %s already succeeded; not deploying again.", run_id)
            return run_id
        if not self.wait_for_completion:
            return run_id
        if self.deferrable:
            record = StoredRun(run_id, project_id, request.object_id, tag, attempt.key)
            self._defer(hook, store, record, request, deadline, adopted)
        else:
            self._wait(hook, request, run_id, project_id, deadline)
        return run_id

    def _find_or_create(
        self, hook: DataWorksHook, store: RunStore, request: _Request, project_id: int, tag: str, attempt: Attempt
    ) -> tuple[str, PipelineRun | None]:
        """Return this try's run ID and, when adopted, the run as read (else ``None``)."""
        known: set[str] = set()
        if self.reattach:
            adopted = self._reattach(hook, store, request, project_id, tag, attempt, known)
            if adopted is not None:
                store.set(StoredRun(adopted.id, project_id, request.object_id, tag, attempt.key))
                return adopted.id, adopted
        description = tagged_description(self.description, tag, attempt.key)
        try:
            run_id = hook.create_pipeline_run(
                request.object_id,
                request.type,
                project_id=project_id,
                description=description,
                run_mode=request.run_mode,
                auto_run_until_stage=request.auto_run_until_stage,
            )
        except PipelineRunAmbiguousCreateError as err:
            if not self.reattach:
                raise
            self.log.warning("%s Looking for the run among the object's pipeline runs.", err)
            policy = request.retry_policy
            delays = [min(policy.max_delay, max(policy.base_delay, 0.01) * 2**i) for i in range(RECONCILE_ATTEMPTS)]
            found = reconcile_ambiguous_create(
                hook,
                project_id,
                request.object_id,
                tag,
                known_ids=frozenset(known),
                delays=delays,
                since_ms=_since(attempt),
                logger=self.log,
            )
            if found is None:
                raise PipelineRunAmbiguousCreateError(
                    f"{err} No pipeline run of this task appeared after {RECONCILE_ATTEMPTS} lookups; nothing "
                    "was resubmitted. The next try looks for it again before creating one.",
                    cause=err.cause,
                ) from err
            self.log.info("The ambiguous create did create pipeline run %s; adopting it.", found.id)
            run_id = found.id
        store.set(StoredRun(run_id, project_id, request.object_id, tag, attempt.key))
        return run_id, None

    def _reattach(
        self,
        hook: DataWorksHook,
        store: RunStore,
        request: _Request,
        project_id: int,
        tag: str,
        attempt: Attempt,
        known: set[str],
    ) -> PipelineRun | None:
        """Return the run this try adopts, if any; fill ``known`` with this attempt's runs seen.

        Adopted: an active run of this task instance from any attempt, else a successful run of
        this attempt (see :mod:`~airflow_provider_dataworks.reattach`). The store read is free;
        ``ListPipelineRuns`` is read only where a run may exist that the store does not know of.
        """
        stored = store.get()
        if stored is not None and (stored.project_id, stored.object_id, stored.tag) == (
            project_id,
            request.object_id,
            tag,
        ):
            try:
                run: PipelineRun | None = hook.get_pipeline_run(stored.pipeline_run_id, project_id)
            except DataWorksNotFoundError:
                run = None
            if run is not None:
                this_attempt = stored.attempt == attempt.key
                if not run.is_terminal or (run.is_success and this_attempt):
                    self.log.info("Reattaching to pipeline run %s (%s) recorded by an earlier try.", run.id, run.status)
                    return run
                known.add(run.id)
        if attempt.try_number <= 1:
            if attempt.fresh or store.usable:
                # A fresh task instance has no runs; after a clear the store's record is the latest run.
                return None
            # The first try after a clear, without a store: an earlier attempt's run may still be going.
            active = active_tagged_runs(hook, project_id, request.object_id, tag)
            if active:
                self.log.info(
                    "Reattaching to pipeline run %s (%s), still going from an earlier attempt of this task.",
                    active[0].id,
                    active[0].status,
                )
                return active[0]
            return None
        runs, complete = recent_tagged_runs(hook, project_id, request.object_id, tag, since_ms=_since(attempt))
        known.update(run.id for run in runs)
        adopted = pick_adoptable(runs, attempt)
        if adopted is None and not complete and not store.usable:
            # older active runs lie beyond the pages read; the Status filter finds them at any age
            adopted = pick_adoptable(active_tagged_runs(hook, project_id, request.object_id, tag))
        if adopted is not None:
            self.log.info(
                "Reattaching to pipeline run %s (%s), found by this task's tag in its description.",
                adopted.id,
                adopted.status,
            )
        elif runs:
            self.log.info(
                "This task's earlier pipeline runs are finished and none succeeded in this attempt (%s); "
                "creating a new one.",
                ", ".join(f"{run.id} {run.status}" for run in runs),
            )
        return adopted

    # ------------------------------------------------------------------ waiting

    def _progress(self, request: _Request) -> RunProgress:
        return RunProgress(
            advance_stages=self.advance_stages, advance_until_stage=request.advance_until_stage, logger=self.log
        )

    def _wait(
        self, hook: DataWorksHook, request: _Request, run_id: str, project_id: int, deadline: float | None
    ) -> PipelineRun:
        try:
            return hook.wait_for_pipeline_run(
                run_id,
                project_id,
                poll_interval=request.poll_interval,
                deadline=deadline,
                progress=self._progress(request),
            )
        except PipelineRunTimeoutError as err:
            raise self._timed_out(err, run_id, project_id) from None
        except AirflowTaskTimeout:
            # execution_timeout struck inside the wait (Airflow's alarm): the same contract as our own
            # deadline, then Airflow's error goes on (and its on_kill call finds the timeout handled).
            self._timed_out(PipelineRunTimeoutError("execution_timeout passed."), run_id, project_id)
            raise

    def _defer(
        self,
        hook: DataWorksHook,
        store: RunStore,
        record: StoredRun,
        request: _Request,
        deadline: float | None,
        run: PipelineRun | None = None,
    ) -> None:
        """Defer to the trigger, unless the first status check shows the run already finished.

        :param run: the run as just read while adopting it; a new run is read here.
        """
        run_id, project_id = record.pipeline_run_id, record.project_id
        # Quiet: the trigger logs the stage transitions, so each shows once in the task log.
        progress = RunProgress(
            advance_stages=self.advance_stages, advance_until_stage=request.advance_until_stage, logger=_quiet
        )
        # Starts the next stage now rather than a poll interval later; the trigger is told it ran.
        run, decision = hook.advance_pipeline_run(run_id, project_id, progress, run)
        if decision.step in (Step.SUCCEED, Step.FAIL):
            StageTransitionLog().log(run, cast("Any", self.log))
            decision.raise_for_failure(run)
            self.log.info("%s", decision.reason)
            return
        for code in progress.executed_stages:
            self.log.info("Executed stage %s of pipeline run %s.", code, run_id)
        store.set(record)
        # imported here, not at the top: every DAG file parse imports this module
        from airflow_provider_dataworks.triggers.pipeline_run import PipelineRunTrigger

        self.defer(
            trigger=PipelineRunTrigger(
                pipeline_run_id=run_id,
                project_id=project_id,
                dataworks_conn_id=self.dataworks_conn_id,
                region=self.region,
                poll_interval=request.poll_interval,
                end_time=deadline,
                advance_stages=self.advance_stages,
                advance_until_stage=request.advance_until_stage,
                retry_policy=request.retry_policy.to_dict(),
                cancel_on_kill=self.cancel_on_kill,
                executed_stages=progress.executed_stages,
                next_poll_at=time.time() + request.poll_interval,
            ),
            method_name="execute_complete",
            kwargs={"pipeline_run_id": run_id, "project_id": project_id},
            # The trigger owns the deadline (end_time, execution_timeout included) so a timeout abolishes
            # the run in execute_complete. Airflow 2.x still adds a framework timeout for
            # execution_timeout; resume_execution gives it the same outcome.
            timeout=None,
        )

    def execute_complete(
        self,
        context: Context,
        event: Any = None,
        pipeline_run_id: str | None = None,
        project_id: int | None = None,
    ) -> str:
        """Resume after the trigger: validate its event, then succeed, fail, or abolish on timeout."""
        self.pipeline_run_id, self._run_project_id = pipeline_run_id, project_id
        request = self._validate()
        from airflow_provider_dataworks.triggers.pipeline_run import resolve_trigger_event

        try:
            run = resolve_trigger_event(
                event, pipeline_run_id=pipeline_run_id, advance_until_stage=request.advance_until_stage
            )
        except PipelineRunTimeoutError as err:
            run_id = pipeline_run_id or (err.run.id if err.run else None)
            if run_id is None or project_id is None:
                raise
            raise self._timed_out(err, run_id, int(project_id)) from None
        self.log.info("Pipeline run %s finished: %s.", run.id, run.status)
        return run.id

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after the trigger; a deferral that Airflow timed out itself ends like our own timeout.

        Airflow 2.x turns ``execution_timeout`` into a trigger timeout of its own and resumes the task
        with ``TaskDeferralTimeout`` (and without our ``next_kwargs``): find the run, abolish it with
        ``cancel_on_timeout`` and fail with the same error as the trigger's own timeout.
        """
        try:
            if is_framework_timeout(next_method, next_kwargs):
                raise task_deferral_timeout()(str((next_kwargs or {}).get("error")))
            return super().resume_execution(next_method, next_kwargs, context)
        except task_deferral_timeout() as err:
            request = self._validate()
            hook = self._hook(request.retry_policy)
            project_id = request.project_id if request.project_id is not None else hook.resolve_project_id(None)
            self._kill_hook = hook.with_retry_policy(ABOLISH_RETRY_POLICY)
            run_id = self._run_waited_for(context, hook, request, project_id)
            timeout = PipelineRunTimeoutError(f"Airflow timed the deferred wait out ({err or 'execution_timeout'}).")
            if run_id is None:
                raise PipelineRunTimeoutError(f"{timeout} No pipeline run of this task was found to abolish.") from None
            raise self._timed_out(timeout, run_id, project_id) from None

    def _run_waited_for(self, context: Context, hook: DataWorksHook, request: _Request, project_id: int) -> str | None:
        """Return the run this deferred try waited for: from XCom (kept while deferred), the store or the tag."""
        ti = context["ti"]
        try:
            pushed = ti.xcom_pull(task_ids=ti.task_id, key=XCOM_RUN_ID, map_indexes=getattr(ti, "map_index", -1))
        except Exception:  # XCom is only the cheap first place to look
            pushed = None
        if isinstance(pushed, str) and pushed:
            return pushed
        tag = task_tag_from_context(context)
        stored = RunStore(context, self.log).get()
        if stored is not None and stored.tag == tag and stored.object_id == request.object_id:
            return stored.pipeline_run_id
        active = [run for run in tagged_runs(hook, project_id, request.object_id, tag) if not run.is_terminal]
        return active[0].id if active else None

    # ------------------------------------------------------------------ cancelling

    def _timed_out(self, error: PipelineRunTimeoutError, run_id: str, project_id: int) -> PipelineRunTimeoutError:
        """Abolish the run (``cancel_on_timeout``) and return the timeout error to raise."""
        self._timeout_handled = True
        message = str(error)
        if self.cancel_on_timeout:
            outcome = self._abolish(run_id, project_id)
            message += f" {outcome}"
        else:
            message += f" Pipeline run {run_id} was left running (cancel_on_timeout is off)."
        return PipelineRunTimeoutError(message, run=error.run, stage=error.stage)

    def _abolish(self, run_id: str, project_id: int) -> str:
        """Abolish the run, best effort and bounded; return what happened, for logs and messages."""
        # A hook of its own, built while the task ran from the settings already read: on_kill runs in
        # a signal handler and must neither look the connection up (the supervisor's lock is not
        # reentrant) nor wait on the locks of the hook that the interrupted code may hold.
        hook = self._kill_hook or self._hook(ABOLISH_RETRY_POLICY)
        try:
            hook.abolish_pipeline_run(run_id, project_id)
        except DataWorksClientError as err:
            outcome = f"Pipeline run {run_id} could not be abolished (probably already finished): {err}"
            self.log.info("%s", outcome)
        except (DataWorksError, ValueError) as err:
            outcome = f"Abolishing pipeline run {run_id} failed: {err}"
            self.log.error("%s", outcome)
        else:
            outcome = f"Pipeline run {run_id} was abolished."
            self.log.info("%s", outcome)
        return outcome

    def on_kill(self) -> None:
        """Abolish the run when the task is killed (``cancel_on_kill``); never raises."""
        run_id, project_id = self.pipeline_run_id, self._run_project_id
        if not self.cancel_on_kill or run_id is None or project_id is None or self._timeout_handled:
            return
        try:
            self._abolish(run_id, project_id)
        except Exception:
            self.log.exception("on_kill could not abolish pipeline run %s", run_id)
