"""Deploy (or undeploy) one DataWorks object with a pipeline run, exactly once per task instance."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import (
    AirflowTaskTimeout,
    BaseOperator,
    BaseOperatorLink,
    ResumableJobMixin,
    XCom,
    conf,
)

from airflow_provider_dataworks._compat import (
    earliest,
    execution_deadline,
    is_framework_timeout,
    task_deferral_timeout,
)
from airflow_provider_dataworks.abolish import AbolishOutcome, abolish_and_confirm
from airflow_provider_dataworks.arguments import parse_policy, parse_seconds, parse_stage_code
from airflow_provider_dataworks.exceptions import (
    DataWorksError,
    DataWorksNotFoundError,
    PipelineRunAmbiguousCreateError,
    PipelineRunFailedError,
    PipelineRunGaveUpError,
    PipelineRunStoppedError,
    PipelineRunTimeoutError,
    Remedy,
    describe_permission_error,
    error_remedy,
)
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook, check_auto_mode, validate_object_id
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.hooks.settings import parse_choice, parse_project_id
from airflow_provider_dataworks.progress import RunProgress, StageExecPolicy, Step
from airflow_provider_dataworks.reattach import (
    CLOCK_SKEW_SECONDS,
    STATE_KEY,
    Attempt,
    BestEffortStore,
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
from airflow_provider_dataworks.status import PipelineRun, PipelineRunStatus, RunMode, RunType, StageTransitionLog

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
#: an ambiguous create is resubmitted at most this many times in one try, once no run of it appeared
RESUBMITS = 1
#: the SDK's read timeout when the connection sets none (seconds; tea-openapi's default)
SDK_READ_TIMEOUT = 10.0

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
    stage_exec_policy: StageExecPolicy


def _since(attempt: Attempt) -> int | None:
    """Return the epoch ms before which no run can be this attempt's (with room for clock skew)."""
    return None if attempt.started_ms is None else attempt.started_ms - CLOCK_SKEW_SECONDS * 1000


def _validate_check_only(
    run_mode: str | None, advance_stages: bool, advance_until_stage: str | None, wait_for_completion: bool
) -> None:
    """A check-only run must be driven by this task, stage by stage, to its last check."""
    if run_mode == RunMode.AUTO.value:
        raise ValueError("check_only needs run_mode 'Normal' (in Auto mode DataWorks would run the deploy stages).")
    if not advance_stages:
        raise ValueError("check_only needs advance_stages=True: the task executes the check stages itself.")
    if advance_until_stage:
        raise ValueError("check_only stops before the first deploy stage by itself; drop advance_until_stage.")
    if not wait_for_completion:
        raise ValueError("check_only needs wait_for_completion=True: the run is abolished once its checks ran.")


@dataclass
class _SyncJob:
    """What the blocking path hands to :class:`ResumableJobMixin`'s hooks for one try."""

    request: _Request
    hook: DataWorksHook
    url: str
    project_id: int
    tag: str
    attempt: Attempt
    deadline: float | None
    store: RunStore
    #: runs of this attempt seen finished (not adopted; a reconcile ignores them)
    known: set[str] = field(default_factory=set)
    #: runs read while deciding, by id
    seen: dict[str, PipelineRun] = field(default_factory=dict)
    published: bool = False
    #: the run's end was handled (check-only abolish, report) in this try
    finished: bool = False


#: ``get_job_status`` answers for a stored record the mixin must not reconnect to
_NOT_THIS_TASKS = "~record of another object or task"
_GONE = "~not found"
_EARLIER_SUCCESS = "~succeeded in an earlier attempt"


class CreatePipelineRunOperator(ResumableJobMixin, BaseOperator):
    """Deploy (``Online``) or undeploy (``Offline``) one DataWorks node or workflow with a pipeline run.

    The run ID is pushed to XCom (``pipeline_run_id``, also the return value) and the Data Studio URL
    (``pipeline_run_url``) as soon as the run exists; then the operator waits, blocking or deferred,
    executing each stage that waits for ``ExecPipelineRunStage`` when ``advance_stages`` is on.
    A retry never deploys twice: it adopts this task instance's active run, or its successful run of
    the same DAG-run attempt (see :mod:`~airflow_provider_dataworks.reattach`), and creates a new one
    otherwise — so a clear of a finished task, or a re-created DAG run, deploys again. The blocking
    path runs through Airflow's :class:`ResumableJobMixin`.

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
    :param check_only: run the build and check stages only, never a ``Deploy``/``Offline`` stage, then
        abolish the run: succeed when every check passed, fail with the failing check's stage and
        message. Needs ``advance_stages`` and the ``Normal`` run mode.
    :param report: when the run ends, publish the deployment report (XComs ``pipeline_run_items`` and
        ``pipeline_run_summary``, a table in the task log): ⌈items/100⌉ ``ListPipelineRunItems`` calls.
    :param durable: :class:`ResumableJobMixin`'s switch (Airflow 3.3+; the blocking path): read the run
        back from the task state store on a retry (default True). ``False`` leaves the store out;
        the Description tag still finds the run unless ``reattach=False``.
    :param dataworks_conn_id: the DataWorks (or ``alibaba_cloud``) connection.
    :param region: overrides the connection's region.
    :param dataworks_retry_policy: per-call retries of transient DataWorks errors (throttling, 5xx,
        transport), a :class:`~airflow_provider_dataworks.hooks.retry.DataWorksRetryPolicy` or a dict of its
        fields. Not to be confused with ``retry_policy``, Airflow 3.3's task-level retry policy
        (AIP-105), which this operator passes to Airflow untouched.
    :param stage_exec_policy: how a stage DataWorks did not accept (``Success: false``, a 4xx) is
        executed again: a dict of :class:`~airflow_provider_dataworks.progress.StageExecPolicy`'s
        fields (``attempts``, ``backoff``, ``max_backoff``); default: its defaults. After ``attempts``
        executions DataWorks did not accept, the task closes the run and fails without retry.
        The deferred wait continues the same backoff on the triggerer.
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
    #: ResumableJobMixin keeps the run's record (a :class:`StoredRun`) under the provider's store key
    external_id_key = STATE_KEY

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
        check_only: bool = False,
        report: bool = True,
        dataworks_conn_id: str = DataWorksHook.default_conn_name,
        region: str | None = None,
        dataworks_retry_policy: DataWorksRetryPolicy | dict[str, Any] | None = None,
        stage_exec_policy: dict[str, Any] | None = None,
        durable: bool = True,
        **kwargs: Any,
    ) -> None:
        if durable is not True:
            # only when set: below 3.3 the mixin's stand-in warns that durable has no effect there
            kwargs["durable"] = durable
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
        self.check_only = check_only
        self.report = report
        self.dataworks_conn_id = dataworks_conn_id
        self.region = region
        self.dataworks_retry_policy = dataworks_retry_policy
        self.stage_exec_policy = stage_exec_policy
        #: the run this try works on, once known (``on_kill`` abolishes it)
        self.pipeline_run_id: str | None = None
        self._run_project_id: int | None = None
        #: the blocking path's state while ResumableJobMixin runs it (set in execute)
        self._job: _SyncJob | None = None
        #: the hook ``on_kill`` abolishes with, built from settings already read (no lookup in a signal handler)
        self._kill_hook: DataWorksHook | None = None
        #: this try's timeout is being handled / was handled: ``on_kill`` (which Airflow calls after its
        #: AirflowTaskTimeout, possibly in the middle of our own abolish) follows cancel_on_timeout / stays out
        self._timing_out = False
        self._timeout_handled = False
        self._abolished_on_timeout = False
        #: this try's run store, to mark a run this task abolished
        self._store: RunStore | None = None
        #: the blocking wait's progress, or the stage times the trigger observed (for the report)
        self._wait_progress: RunProgress | None = None
        self._event_observed: dict[str, Any] = {}

    # ------------------------------------------------------------------ validation

    def _validate(self) -> _Request:
        """Check the rendered arguments; every error names the field and the accepted values."""
        object_id = validate_object_id(self.object_id)
        project_id = None if self.project_id is None else parse_project_id(self.project_id)
        run_type = parse_choice(RunType, self.type, "type")
        run_mode = None if self.run_mode in (None, "") else parse_choice(RunMode, self.run_mode, "run_mode")
        auto_until = parse_stage_code(self.auto_run_until_stage, "auto_run_until_stage")
        check_auto_mode(run_mode, auto_until)
        advance_until = parse_stage_code(self.advance_until_stage, "advance_until_stage")
        if self.check_only:
            _validate_check_only(run_mode, self.advance_stages, self.advance_until_stage, self.wait_for_completion)
        poll_interval = parse_seconds(self.poll_interval, "poll_interval", allow_none=False)
        assert poll_interval is not None
        retry_policy = parse_policy(DataWorksRetryPolicy.coerce, self.dataworks_retry_policy)
        stage_exec_policy = parse_policy(StageExecPolicy.coerce, self.stage_exec_policy)
        return _Request(
            object_id=object_id,
            project_id=project_id,
            type=run_type,
            run_mode=run_mode,
            auto_run_until_stage=auto_until,
            # Auto mode stops where DataWorks stops by itself, unless the task is asked to go further
            advance_until_stage=advance_until or auto_until,
            poll_interval=poll_interval,
            timeout=parse_seconds(self.timeout, "timeout", allow_none=True),
            retry_policy=retry_policy,
            stage_exec_policy=stage_exec_policy,
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

        store = self._store = RunStore(context, self.log)
        tag = task_tag_from_context(context)
        attempt = attempt_from_context(context, self.retries or 0)
        if self.reattach and self.wait_for_completion and not self.deferrable:
            # The blocking path is Airflow's ResumableJobMixin (its durable switch, resumable_job.*
            # metrics and spans); the tag lookup and the attempt rules are its submit_job / status hooks.
            url = settings.console_link(project_id)
            self._job = _SyncJob(request, hook, url, project_id, tag, attempt, deadline, store)
            mixin_context = {**context, "task_state_store": BestEffortStore(store) if store.usable else None}
            return cast("str", self.execute_resumable(cast("Context", mixin_context)))
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
            self._finished(context, hook, adopted, request.object_id)
            return run_id
        if not self.wait_for_completion:
            return run_id
        if self.deferrable:
            record = StoredRun(run_id, project_id, request.object_id, tag, attempt.key)
            try:
                run = self._defer(hook, store, record, request, deadline, adopted)
            except PipelineRunFailedError as err:  # failed before deferring
                self._finished(context, hook, err.run, request.object_id)
                raise
            self._finished(context, hook, run, request.object_id)
        else:
            self._wait_until_finished(context, hook, request, run_id, project_id, deadline)
        return run_id

    def _find_or_create(
        self,
        hook: DataWorksHook,
        store: RunStore,
        request: _Request,
        project_id: int,
        tag: str,
        attempt: Attempt,
        *,
        read_store: bool = True,
        known: set[str] | None = None,
    ) -> tuple[str, PipelineRun | None]:
        """Return this try's run ID and, when adopted, the run as read (else ``None``).

        :param read_store: ``False`` when the store was read already (by :class:`ResumableJobMixin`).
        :param known: runs already seen finished.
        """
        known = set() if known is None else known
        if self.reattach:
            adopted = self._reattach(hook, store, request, project_id, tag, attempt, known, read_store=read_store)
            if adopted is not None:
                store.set(StoredRun(adopted.id, project_id, request.object_id, tag, attempt.key))
                return adopted.id, adopted
        run_id = self._create(hook, request, project_id, tag, attempt, known)
        # known to on_kill at once: a kill or execution_timeout right after the create still abolishes it
        self.pipeline_run_id, self._run_project_id = run_id, project_id
        store.set(StoredRun(run_id, project_id, request.object_id, tag, attempt.key))
        return run_id, None

    def _create(
        self, hook: DataWorksHook, request: _Request, project_id: int, tag: str, attempt: Attempt, known: set[str]
    ) -> str:
        """Create this try's run; after a create that may or may not have happened, find it or resubmit once.

        DataWorks' guidance for a create without an answer: list the object's runs and "only retry if no
        matching active pipeline run exists". So the tagged runs are listed over the reconcile window;
        when none of this attempt appeared, the create is sent again, once, within this try.
        """
        description = tagged_description(self.description, tag, attempt.key, self.log)
        for submission in range(RESUBMITS + 1):
            try:
                return hook.create_pipeline_run(
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
                failed_at = time.monotonic()
                self.log.warning("%s Looking for the run among the object's pipeline runs.", err)
                delays = request.retry_policy.lookup_delays(RECONCILE_ATTEMPTS)
                # A create DataWorks answers late may still be applied after the answer was given up on: the
                # lookups span at least one read timeout (the fuzzer found a late create beside the resubmitted
                # one when they did not).
                settle = hook.get_settings().read_timeout or SDK_READ_TIMEOUT
                delays[-1] += max(0.0, settle - sum(delays))
                found, listed = reconcile_ambiguous_create(
                    hook,
                    project_id,
                    request.object_id,
                    tag,
                    known_ids=frozenset(known),
                    delays=delays,
                    since_ms=_since(attempt),
                    logger=self.log,
                )
                self.log.debug("Reconciled for %.1f s.", time.monotonic() - failed_at)
                if found is not None:
                    self.log.info("The ambiguous create did create pipeline run %s; adopting it.", found.id)
                    return found.id
                if listed and submission < RESUBMITS:
                    self.log.warning(
                        "No pipeline run of this task appeared after %d lookups, so the create did not happen: "
                        "sending it once more (DataWorks: retry only when no matching run exists).",
                        RECONCILE_ATTEMPTS,
                    )
                    continue
                if not listed:
                    # nobody knows whether the run exists: sending the create again could deploy twice
                    raise PipelineRunAmbiguousCreateError(
                        f"{err} The object's pipeline runs could not be listed either, so nothing was resubmitted. "
                        "The next try looks for the run again before creating one.",
                        cause=err.cause,
                    ) from err
                raise PipelineRunAmbiguousCreateError(
                    f"{err} No pipeline run of this task appeared after {RECONCILE_ATTEMPTS} lookups, after "
                    f"{RESUBMITS + 1} submissions; nothing was resubmitted after the last. The next try looks for "
                    "it again before creating one.",
                    cause=err.cause,
                ) from err
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _reattach(
        self,
        hook: DataWorksHook,
        store: RunStore,
        request: _Request,
        project_id: int,
        tag: str,
        attempt: Attempt,
        known: set[str],
        *,
        read_store: bool = True,
    ) -> PipelineRun | None:
        """Return the run this try adopts, if any; fill ``known`` with this attempt's runs seen.

        Adopted: an active run of this task instance from any attempt, else a successful run of
        this attempt (see :mod:`~airflow_provider_dataworks.reattach`). The store read is free;
        ``ListPipelineRuns`` is read only where a run may exist that the store does not know of.
        """
        if attempt.fresh:
            # The first try of a new task instance has no runs; a store record can only be that of a
            # deleted DAG run with the same run_id (the store outlives it), which must deploy anew.
            return None
        stored = store.get() if read_store else None
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
                if this_attempt and stored.stopped_by_someone(run):
                    raise PipelineRunStoppedError(run)
                if not run.is_terminal or (run.is_success and this_attempt):
                    self.log.info("Reattaching to pipeline run %s (%s) recorded by an earlier try.", run.id, run.status)
                    return run
                known.add(run.id)
        if attempt.try_number <= 1:
            if attempt.fresh or (store.usable and (read_store or self.durable)):
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
        if adopted is None and not complete and not (store.usable and (read_store or self.durable)):
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

    # ------------------------------------------------------------------ ResumableJobMixin (the blocking path)

    @property
    def _sync(self) -> _SyncJob:
        if self._job is None:
            raise RuntimeError("ResumableJobMixin's hooks run only inside execute().")
        return self._job

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """Return the status of the run in the stored record, as the mixin decides on it.

        A record of another object or task, a run that is gone, or a run that succeeded in an
        earlier DAG-run attempt answer statuses the mixin neither reconnects to nor returns.
        """
        job = self._sync
        record = StoredRun.from_json(external_id)
        if (
            job.attempt.fresh
            or record is None
            or (record.project_id, record.object_id, record.tag)
            != (
                job.project_id,
                job.request.object_id,
                job.tag,
            )
        ):
            return _NOT_THIS_TASKS
        try:
            run = job.hook.get_pipeline_run(record.pipeline_run_id, job.project_id)
        except DataWorksNotFoundError:
            return _GONE
        if record.attempt == job.attempt.key and record.stopped_by_someone(run):
            raise PipelineRunStoppedError(run)
        job.seen[run.id] = run
        if run.is_terminal:
            job.known.add(run.id)
        if run.is_success and record.attempt != job.attempt.key:
            return _EARLIER_SUCCESS
        return run.status

    def is_job_active(self, status: str) -> bool:
        return not status.startswith("~") and not PipelineRun(id="", project_id=None, status=status).is_terminal

    def is_job_succeeded(self, status: str) -> bool:
        return status == PipelineRunStatus.SUCCESS.value

    def submit_job(self, context: Context) -> Any:
        """Find this task's run by its tag (the attempt rules), or create one; return its record."""
        job = self._sync
        run_id, adopted = self._find_or_create(
            job.hook, job.store, job.request, job.project_id, job.tag, job.attempt, read_store=False, known=job.known
        )
        if adopted is not None:
            job.seen[adopted.id] = adopted
        return StoredRun(run_id, job.project_id, job.request.object_id, job.tag, job.attempt.key).to_json()

    # The mixin declares None, but on a reconnect it returns what this returns as the task's result.
    def poll_until_complete(self, external_id: Any, context: Context) -> str:  # type: ignore[override]
        """Publish the run (XCom, link, log) and wait for it; return its ID (the result on a reconnect)."""
        run_id = self._publish(external_id, context)
        job = self._sync
        known = job.seen.get(run_id)
        if known is not None and known.is_success:
            StageTransitionLog().log(known, cast("Any", self.log))
            self.log.info("Pipeline run %s already succeeded; not deploying again.", run_id)
            self._finish_job(context, known)
            return run_id
        self._wait_until_finished(context, job.hook, job.request, run_id, job.project_id, job.deadline)
        job.finished = True
        return run_id

    def get_job_result(self, external_id: Any, context: Context) -> str:
        """Return the run ID (the task's result); a run the mixin found succeeded is published here."""
        already_succeeded = not self._sync.published  # the mixin skipped poll_until_complete
        run_id = self._publish(external_id, context)
        if already_succeeded and (run := self._sync.seen.get(run_id)) is not None:
            StageTransitionLog().log(run, cast("Any", self.log))
            self.log.info("Pipeline run %s already succeeded; not deploying again.", run_id)
            # a retry after the run succeeded (the worker died before the task did): the report's XComs again
            self._finish_job(context, run)
        return run_id

    def _finish_job(self, context: Context, run: PipelineRun) -> None:
        """Handle the end of the blocking path's run once per try (the mixin may reach it twice)."""
        job = self._sync
        if not job.finished:
            job.finished = True
            self._finished(context, job.hook, run, job.request.object_id)

    def _publish(self, external_id: Any, context: Context) -> str:
        """Push the run's XComs and log its URL once per try; return the run ID."""
        job = self._sync
        record = StoredRun.from_json(external_id)
        if record is None:
            raise DataWorksError(f"ResumableJobMixin handed back an unreadable pipeline run record: {external_id!r}")
        run_id = record.pipeline_run_id
        if not job.published:
            self.pipeline_run_id, self._run_project_id = run_id, job.project_id
            ti = context["ti"]
            ti.xcom_push(key=XCOM_RUN_ID, value=run_id)
            ti.xcom_push(key=XCOM_RUN_URL, value=job.url)
            self.log.info("DataWorks pipeline run %s: %s", run_id, job.url)
            job.published = True
        return run_id

    # ------------------------------------------------------------------ waiting

    def _progress(self, request: _Request) -> RunProgress:
        self._wait_progress = RunProgress(
            advance_stages=self.advance_stages,
            advance_until_stage=request.advance_until_stage,
            logger=self.log,
            check_only=self.check_only,
            stage_exec_policy=request.stage_exec_policy,
        )
        return self._wait_progress

    @property
    def _observed_stages(self) -> dict[str, Any]:
        """When this try's reads first saw each stage running and finished (the report's fallback times)."""
        if self._wait_progress is not None:
            return self._wait_progress.observed_stages
        return self._event_observed

    def _finished(self, context: Context, hook: DataWorksHook, run: PipelineRun | None, object_id: str) -> None:
        """After the run ended (or its checks did): abolish a check-only run, publish the report.

        Every path calls it where its wait ends: the blocking paths (ResumableJobMixin's and the
        plain one), the check before deferring, ``execute_complete``, a run adopted already succeeded,
        and a timeout that abolished the run (:meth:`_finished_by_timeout`).
        """
        if run is None:
            return
        project_id = self._run_project_id if self._run_project_id is not None else run.project_id
        self._announce(context, run, project_id, object_id)
        abolished = False
        if self.check_only and not run.is_terminal and project_id is not None:
            self.log.info("Every check of pipeline run %s passed; abolishing it (check_only).", run.id)
            outcome = abolish_and_confirm(hook.with_retry_policy(ABOLISH_RETRY_POLICY), run.id, project_id)
            abolished = outcome.abolished
            if abolished:
                self.log.info("%s", outcome.message)
            else:
                # The checks passed either way; the run waits at its first stage after the checks, which
                # this task never executes.
                self.log.warning("Check-only pipeline run %s: %s", run.id, outcome.message)
        if self.report:
            from airflow_provider_dataworks.report import publish_report

            publish_report(
                hook,
                run,
                context["ti"],
                self.log,
                project_id=project_id,
                object_id=object_id,
                check_only=self.check_only,
                abolished=abolished,
                observed=self._observed_stages,
            )

    def _announce(self, context: Context, run: PipelineRun, project_id: int | None, object_id: str) -> None:
        """Give a successful run's type and ID to the asset events of this object's ``dataworks`` outlets."""
        if not self.outlets:
            return
        from airflow_provider_dataworks.assets import announce_deployment

        run_type = parse_choice(RunType, self.type, "type")  # validated before the run was created
        announce_deployment(
            context, self.outlets, run, run_type=run_type, project_id=project_id, object_id=object_id, logger=self.log
        )

    def _finished_by_timeout(
        self, context: Context, hook: DataWorksHook, run_id: str, project_id: int, object_id: str
    ) -> None:
        """Report a run that a timeout ended by abolishing it, as read after the abolish."""
        if not (self.report and self._abolished_on_timeout):
            return
        try:
            run = hook.get_pipeline_run(run_id, project_id)
        except (DataWorksError, ValueError) as err:
            self.log.warning("No deployment report for pipeline run %s: it could not be read: %s", run_id, err)
            return
        self._finished(context, hook, run, object_id)

    def _wait_until_finished(
        self,
        context: Context,
        hook: DataWorksHook,
        request: _Request,
        run_id: str,
        project_id: int,
        deadline: float | None,
    ) -> PipelineRun:
        """Wait (blocking) and handle the run's end: success, failure, or a timeout that abolished it."""
        try:
            run = self._wait(hook, request, run_id, project_id, deadline)
        except PipelineRunFailedError as err:
            self._finished(context, hook, err.run, request.object_id)
            raise
        except PipelineRunGaveUpError as err:
            raise self._give_up(err, run_id, project_id) from err.cause
        except PipelineRunTimeoutError:
            self._finished_by_timeout(context, hook, run_id, project_id, request.object_id)
            raise
        self._finished(context, hook, run, request.object_id)
        return run

    def _wait(
        self, hook: DataWorksHook, request: _Request, run_id: str, project_id: int, deadline: float | None
    ) -> PipelineRun:
        try:
            return hook.with_retry_policy(request.retry_policy.for_wait(request.poll_interval)).wait_for_pipeline_run(
                run_id,
                project_id,
                poll_interval=request.poll_interval,
                deadline=deadline,
                progress=self._progress(request),
            )
        except (PipelineRunFailedError, PipelineRunGaveUpError):
            raise
        except PipelineRunTimeoutError as err:
            raise self._timed_out(err, run_id, project_id) from None
        except AirflowTaskTimeout:
            # execution_timeout struck inside the wait (Airflow's alarm): the same contract as our own
            # deadline, then Airflow's error goes on (and its on_kill call finds the timeout handled).
            # No report here: Airflow is ending the task, so nothing but the abolish is spent.
            self._timed_out(PipelineRunTimeoutError("execution_timeout passed."), run_id, project_id)
            raise
        except DataWorksError as err:
            # not transient (the wait rides those out): a permission error, a run that is gone, a refusal
            raise gave_up(err) from err

    def _defer(
        self,
        hook: DataWorksHook,
        store: RunStore,
        record: StoredRun,
        request: _Request,
        deadline: float | None,
        run: PipelineRun | None = None,
    ) -> PipelineRun:
        """Defer to the trigger, unless the first status check shows the run already finished.

        :param run: the run as just read while adopting it; a new run is read here.
        :return: the finished run, when it finished before deferring.
        """
        run_id, project_id = record.pipeline_run_id, record.project_id
        # Quiet: the trigger logs the stage transitions, so each shows once in the task log.
        progress = RunProgress(
            advance_stages=self.advance_stages,
            advance_until_stage=request.advance_until_stage,
            logger=_quiet,
            check_only=self.check_only,
            stage_exec_policy=request.stage_exec_policy,
        )
        # Starts the next stage now rather than a poll interval later; the trigger is told it ran. A transient
        # error here is left to the trigger, which rides it out until the deadline.
        try:
            run, decision = hook.advance_pipeline_run(run_id, project_id, progress, run)
        except DataWorksError as err:
            if error_remedy(err) is not Remedy.TRANSIENT:
                raise self._give_up(gave_up(err), run_id, project_id) from err
            self.log.warning("The status check before deferring failed (%s); the trigger reads the run.", err)
            run, decision = None, None
        if run is not None and decision is not None and decision.step in (Step.SUCCEED, Step.FAIL):
            StageTransitionLog().log(run, cast("Any", self.log))
            try:
                decision.raise_for_failure(run)
            except PipelineRunGaveUpError as err:
                raise self._give_up(err, run_id, project_id) from None
            self.log.info("%s", decision.reason)
            return run
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
                check_only=self.check_only,
                stage_exec_policy=request.stage_exec_policy.to_dict(),
                # the backoff of a stage DataWorks refused goes on where the check before deferring left it
                exec_failures=progress.exec_failures,
                observed_stages=progress.observed_stages,
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
        from airflow_provider_dataworks.triggers.pipeline_run import observed_of, resolve_trigger_event

        self._event_observed = observed_of(event)
        # a fresh task object on a new worker: the store marks a run this try abolishes (timeout, give-up)
        self._store = RunStore(context, self.log)

        try:
            run = resolve_trigger_event(
                event,
                pipeline_run_id=pipeline_run_id,
                advance_until_stage=request.advance_until_stage,
                check_only=self.check_only,
            )
        except PipelineRunFailedError as err:
            self._finished(context, self._hook(request.retry_policy), err.run, request.object_id)
            raise
        except PipelineRunGaveUpError as err:
            # the trigger gave up on the run (an error waiting cannot heal): close it before failing
            self._kill_hook = self._hook(ABOLISH_RETRY_POLICY)
            run_id = pipeline_run_id or event["pipeline_run_id"]
            project = int(project_id if project_id is not None else event["project_id"])
            raise self._give_up(err, run_id, project) from None
        except PipelineRunTimeoutError as err:
            # the validated event names its run and workspace too (dag.test() resumes with the event alone)
            run_id = pipeline_run_id or event["pipeline_run_id"]
            project = int(project_id if project_id is not None else event["project_id"])
            timed_out = self._timed_out(err, run_id, project)
            self._finished_by_timeout(context, self._hook(request.retry_policy), run_id, project, request.object_id)
            raise timed_out from None
        self.log.info("Pipeline run %s finished: %s.", run.id, run.status)
        self._finished(context, self._hook(request.retry_policy), run, request.object_id)
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
            self._store = RunStore(context, self.log)
            hook = self._hook(request.retry_policy)
            project_id = request.project_id if request.project_id is not None else hook.resolve_project_id(None)
            self._kill_hook = hook.with_retry_policy(ABOLISH_RETRY_POLICY)
            run_id = self._run_waited_for(context, hook, request, project_id)
            timeout = PipelineRunTimeoutError(f"Airflow timed the deferred wait out ({err or 'execution_timeout'}).")
            if run_id is None:
                raise PipelineRunTimeoutError(f"{timeout} No pipeline run of this task was found to abolish.") from None
            timed_out = self._timed_out(timeout, run_id, project_id)
            self._finished_by_timeout(context, hook, run_id, project_id, request.object_id)
            raise timed_out from None

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
        self._timing_out = True
        message = str(error)
        if self.cancel_on_timeout:
            outcome = self._abolish(run_id, project_id)
            self._abolished_on_timeout = outcome.abolished
            message += f" {outcome.message}"
        else:
            message += f" Pipeline run {run_id} was left running (cancel_on_timeout is off)."
        self._timeout_handled = True
        return PipelineRunTimeoutError(message, run=error.run, stage=error.stage)

    def _give_up(self, error: PipelineRunGaveUpError, run_id: str, project_id: int) -> PipelineRunGaveUpError:
        """Close a run the task gave up on (``cancel_on_timeout``); return the error to raise (no retry).

        No run is left open by the provider's own decision: it could block the object's next deployment,
        and a retry would only adopt it and give up the same way.
        """
        message = str(error)
        if self.cancel_on_timeout:
            message += f" {self._abolish(run_id, project_id).message}"
        else:
            message += f" Pipeline run {run_id} was left as it is (cancel_on_timeout is off)."
        self.log.error("%s", message)
        return PipelineRunGaveUpError(message, run=error.run, cause=error.cause)

    def _abolish(self, run_id: str, project_id: int) -> AbolishOutcome:
        """Abolish the run, bounded, and return what a read of it confirmed (never raises)."""
        # A hook of its own, built while the task ran from the settings already read: on_kill runs in
        # a signal handler and must neither look the connection up (the supervisor's lock is not
        # reentrant) nor wait on the locks of the hook that the interrupted code may hold.
        hook = self._kill_hook or self._hook(ABOLISH_RETRY_POLICY)
        outcome = abolish_and_confirm(hook, run_id, project_id)
        if outcome.abolished:
            self.log.info("%s", outcome.message)
            self._remember_abolished(run_id, project_id)
        else:
            self.log.warning("%s", outcome.message)
        return outcome

    def _remember_abolished(self, run_id: str, project_id: int) -> None:
        """Mark the stored record: this task abolished its run, so a retry may deploy again."""
        store = self._store
        if store is None:
            return
        record = store.get()
        if record is not None and record.pipeline_run_id == run_id and record.project_id == project_id:
            store.set(dataclasses.replace(record, abolished=True))

    def on_kill(self) -> None:
        """Abolish the run when the task is killed (``cancel_on_kill``); never raises.

        Airflow also calls it after ``execution_timeout`` struck: then ``cancel_on_timeout`` decides,
        and nothing is done twice once the timeout was handled.
        """
        run_id, project_id = self.pipeline_run_id, self._run_project_id
        wanted = self.cancel_on_timeout if self._timing_out else self.cancel_on_kill
        if not wanted or run_id is None or project_id is None or self._timeout_handled:
            return
        try:
            self._abolish(run_id, project_id)
        except Exception:
            self.log.exception("on_kill could not abolish pipeline run %s", run_id)


def gave_up(error: DataWorksError) -> PipelineRunGaveUpError:
    """The give-up for an error that waiting cannot heal, worded by its remedy."""
    if error_remedy(error) is Remedy.PERMISSION:
        return PipelineRunGaveUpError(describe_permission_error(error), cause=error)
    return PipelineRunGaveUpError(f"Waiting cannot heal this: {error}", cause=error)
