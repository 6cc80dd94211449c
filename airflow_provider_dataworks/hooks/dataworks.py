"""DataWorksHook: every call this provider makes to DataWorks goes through here.

Design notes (figures from ``benchmarks/RESULTS.md`` and the shared perf anchors):

* **No SDK at import time.** The SDK's client module costs ~0.7 s to import; every DAG
  file that imports the operator would pay it. The SDK is imported the first time a
  client is built.
* **Async path = the SDK's ``*_async`` methods over one shared aiohttp session.** As
  shipped, those methods build a new SSL context, aiohttp session and TCP connection on
  every call (30–66 ms of CPU over HTTPS here) and collapse a triggerer polling 1,000 runs.
  :mod:`.transport` sends the hook's own calls (and only those) through one kept-alive
  session per event loop instead, so a poll costs about a millisecond of CPU and no
  handshake. The SDK is still what builds, signs and parses every request. Should that
  hook point ever change, or with ``AIRFLOW_PROVIDER_DATAWORKS_ASYNC_TRANSPORT=threads``,
  the async methods run the sync SDK (one pooled ``requests`` session per host) on a small
  dedicated thread pool instead: public API only, about 2× the CPU per poll. Either way the
  SDK import, client construction and credential refresh never block the event loop.
* **One retry layer.** Transient errors (throttling, 5xx, transport) are retried with
  capped, fully-jittered exponential backoff that honours ``x-acs-retry-after``
  (:mod:`.retry`); nothing else is retried. ``CreatePipelineRun`` has no idempotency token,
  so it is retried only when the request certainly was not executed (throttled, or the
  connection was never established); an ambiguous failure raises
  :class:`PipelineRunAmbiguousCreateError` for the caller to reconcile.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_dataworks import __version__
from airflow_provider_dataworks.exceptions import (
    DataWorksClientError,
    DataWorksError,
    DataWorksThrottlingError,
    DataWorksTransportError,
    PipelineRunAmbiguousCreateError,
    PipelineRunTimeoutError,
    Remedy,
    error_remedy,
    is_transient,
)
from airflow_provider_dataworks.hooks import budget, transport
from airflow_provider_dataworks.hooks.errors import translate_sdk_error
from airflow_provider_dataworks.hooks.paging import served_page_size
from airflow_provider_dataworks.hooks.retry import DataWorksRetryPolicy
from airflow_provider_dataworks.hooks.settings import ConnectionSettings, parse_choice, parse_project_id
from airflow_provider_dataworks.pacing import pause_before_next_read
from airflow_provider_dataworks.progress import Decision, RunProgress, Step
from airflow_provider_dataworks.status import (
    PipelineRun,
    PipelineRunItem,
    PipelineRunStatus,
    RunMode,
    RunType,
    Stage,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

USER_AGENT = f"airflow-provider-dataworks/{__version__}"
#: ListPipelineRuns / ListPipelineRunItems accept at most 100 per page
MAX_PAGE_SIZE = 100
#: threads that run blocking SDK calls for the async methods (shared by every hook in the process)
SDK_THREADS = 16

#: the async transport: "shared-session" (default) or "threads" (the sync SDK on the thread pool)
ASYNC_TRANSPORT_ENV = "AIRFLOW_PROVIDER_DATAWORKS_ASYNC_TRANSPORT"
ASYNC_TRANSPORTS = ("shared-session", "threads")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def sdk_executor() -> ThreadPoolExecutor:
    """Return the process-wide pool that runs SDK calls for ``*_async`` methods."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=SDK_THREADS, thread_name_prefix="dataworks-sdk")
        return _executor


def async_transport_name() -> str:
    """The async transport chosen by ``AIRFLOW_PROVIDER_DATAWORKS_ASYNC_TRANSPORT``."""
    name = os.environ.get(ASYNC_TRANSPORT_ENV, "shared-session").strip().lower() or "shared-session"
    if name not in ASYNC_TRANSPORTS:
        raise ValueError(f"{ASYNC_TRANSPORT_ENV} must be one of {', '.join(ASYNC_TRANSPORTS)}, got {name!r}.")
    return name


def _create_may_retry(error: BaseException) -> bool:
    """A create is repeated only when DataWorks certainly did not execute it."""
    if isinstance(error, DataWorksThrottlingError):
        return True
    return isinstance(error, DataWorksTransportError) and not error.request_sent


def validate_object_id(object_id: Any, field_name: str = "object_id") -> str:
    """Return one DataWorks object ID as a string, or raise naming the field.

    DataWorks deploys only the first ID of a list and silently ignores the rest, so a list
    of several is refused here; a JSON array written as a string (the CLI mistake
    ``'["123"]'``) is refused too, because DataWorks would look for an object literally
    called ``["123"]``.
    """
    if isinstance(object_id, (list, tuple, set)):
        items = list(object_id)
        if len(items) != 1:
            raise ValueError(
                f"{field_name} takes ONE DataWorks object ID; got {len(items)}. DataWorks deploys only the "
                "first ID of a list and silently ignores the rest. Deploy several objects with dynamic task "
                f"mapping: CreatePipelineRunOperator.partial(...).expand({field_name}=[...])."
            )
        object_id = items[0]
    if isinstance(object_id, bool) or object_id is None:
        raise ValueError(f"{field_name} is required: the ID of a DataWorks node or workflow.")
    text = str(object_id).strip()
    if not text:
        raise ValueError(f"{field_name} is required: the ID of a DataWorks node or workflow.")
    if text[0] in "[{(" or "," in text or any(ch.isspace() for ch in text):
        raise ValueError(
            f"{field_name} must be a single object ID such as '8600000000000000001', got {text!r}. "
            "Do not pass a JSON array as a string; for several objects use dynamic task mapping "
            f"(.expand({field_name}=[...]))."
        )
    return text


def check_auto_mode(run_mode: str | None, auto_run_until_stage: str | None) -> None:
    """``RunMode=Auto`` and ``AutoRunUntilStage`` go together (the SDK: "must be used together")."""
    if auto_run_until_stage and run_mode != RunMode.AUTO.value:
        raise ValueError(
            "auto_run_until_stage needs run_mode='Auto' (DataWorks only auto-runs stages in Auto mode); "
            f"got run_mode={run_mode!r}."
        )
    if run_mode == RunMode.AUTO.value and not auto_run_until_stage:
        raise ValueError(
            "run_mode='Auto' needs auto_run_until_stage: the stage code where DataWorks stops running stages by "
            "itself, e.g. 'DEV' (the SDK: RunMode Auto must be used together with AutoRunUntilStage). Stage codes "
            "differ per workspace, so none is guessed for you."
        )


class DataWorksHook(BaseHook):
    """Talk to the DataWorks OpenAPI (2024-05-18) about pipeline runs.

    :param dataworks_conn_id: a ``dataworks`` connection, or an ``alibaba_cloud`` one
        (extras ``access_key_id``, ``access_key_secret``, ``region``).
    :param region: overrides the connection's ``region`` extra.
    :param retry_policy: a :class:`DataWorksRetryPolicy` or a mapping of its fields.
    """

    conn_name_attr = "dataworks_conn_id"
    default_conn_name = "dataworks_default"
    conn_type = "dataworks"
    hook_name = "Alibaba Cloud DataWorks"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The form's extra fields for Airflow below 3.2 (3.2+ reads ``conn-fields`` instead)."""
        from airflow_provider_dataworks.connection_form import connection_form_widgets

        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The form's standard fields for Airflow below 3.2 (3.2+ reads ``ui-field-behaviour``)."""
        from airflow_provider_dataworks.connection_form import ui_field_behaviour

        return ui_field_behaviour()

    def __init__(
        self,
        dataworks_conn_id: str = default_conn_name,
        *,
        region: str | None = None,
        retry_policy: DataWorksRetryPolicy | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataworks_conn_id = dataworks_conn_id
        self.region = region
        self.retry_policy = DataWorksRetryPolicy.coerce(retry_policy)
        self._settings: ConnectionSettings | None = None
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._shared_transport = False

    # ---------------------------------------------------------------- connection and client

    def get_settings(self) -> ConnectionSettings:
        """Read and validate the connection (once per hook)."""
        if self._settings is None:
            conn = self.get_connection(self.dataworks_conn_id)
            self._settings = ConnectionSettings.from_connection_fields(
                conn_id=self.dataworks_conn_id,
                login=conn.login,
                password=conn.password,
                extra=conn.extra_dejson,
                region_override=self.region,
            )
        return self._settings

    def with_retry_policy(self, retry_policy: DataWorksRetryPolicy | dict[str, Any] | None) -> DataWorksHook:
        """Return a new hook of the same connection with another retry policy and its own client.

        It reuses the settings this hook already read (no second connection lookup), so it can be
        used where a lookup must not happen, e.g. in a signal handler.
        """
        twin = type(self)(self.dataworks_conn_id, region=self.region, retry_policy=retry_policy)
        twin._settings = self._settings
        return twin

    async def get_settings_async(self) -> ConnectionSettings:
        """Read and validate the connection without blocking the event loop."""
        if self._settings is None:
            from airflow.providers.common.compat.connection import (
                get_async_connection,
                get_async_extra_dejson,
            )

            conn = await get_async_connection(self.dataworks_conn_id, hook=self)
            extra = await get_async_extra_dejson(conn)
            self._settings = ConnectionSettings.from_connection_fields(
                conn_id=self.dataworks_conn_id,
                login=conn.login,
                password=conn.password,
                extra=extra,
                region_override=self.region,
            )
        return self._settings

    def resolve_project_id(self, project_id: Any = None) -> int:
        """Return ``project_id``, or the connection's default workspace, validated."""
        if project_id in (None, ""):
            project_id = self.get_settings().project_id
        return parse_project_id(project_id)

    async def resolve_project_id_async(self, project_id: Any = None) -> int:
        if project_id in (None, ""):
            project_id = (await self.get_settings_async()).project_id
        return parse_project_id(project_id)

    def get_conn(self) -> Any:
        """Return the SDK client (built on first use; this imports the SDK)."""
        return self._get_client(self.get_settings())

    def _get_client(self, settings: ConnectionSettings) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = build_sdk_client(settings)
            return self._client

    # ---------------------------------------------------------------- the I/O core

    def _budget(self, settings: ConnectionSettings) -> budget.RequestBudget:
        """This process's request budget for the connection's identity and region."""
        key = budget.budget_key(settings.access_key_id, settings.conn_id, settings.region, settings.endpoint)
        return budget.request_budget(key, settings.read_qps, settings.write_qps)

    def _send(self, settings: ConnectionSettings, action: str, request_name: str, params: dict[str, Any]) -> Any:
        """Make one SDK call (blocking, no budget); return the body dict or the SDK response."""
        client = self._get_client(settings)
        try:
            if action in _DIRECT_JSON:
                return client.call_api(*_direct_call(action, params))
            return getattr(client, _snake(action))(_sdk_request(request_name, params))
        except Exception as err:
            raise translate_sdk_error(err, action) from err

    async def _send_async(
        self, settings: ConnectionSettings, action: str, request_name: str, params: dict[str, Any]
    ) -> Any:
        """Make one SDK call with its ``_async`` method over the shared-session transport (no budget)."""
        client = self._get_client(settings)
        with transport.shared_transport():
            try:
                if action in _DIRECT_JSON:
                    return await client.call_api_async(*_direct_call(action, params))
                return await getattr(client, _snake(action) + "_async")(_sdk_request(request_name, params))
            except Exception as err:
                raise translate_sdk_error(err, action) from err

    def _invoke(
        self, settings: ConnectionSettings, action: str, request_name: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Take a slot from the request budget, make one call (blocking), return the body as a PascalCase dict."""
        spend = self._budget(settings)
        spend.acquire(action)
        try:
            return _response_body(action, self._send(settings, action, request_name, params))
        except DataWorksThrottlingError as err:
            spend.throttled(action, err.retry_after)
            raise

    def _prepare_async(self, settings: ConnectionSettings) -> None:
        """Build the client and pick the async transport (blocking: runs on the SDK thread pool)."""
        self._get_client(settings)
        self._shared_transport = async_transport_name() == "shared-session" and transport.install()

    async def _invoke_async(
        self, settings: ConnectionSettings, action: str, request_name: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Wait for a budget slot on the loop, then make one call on the chosen async transport."""
        spend = self._budget(settings)
        await spend.acquire_async(action)
        try:
            if self._shared_transport:
                response = await self._send_async(settings, action, request_name, params)
            else:
                send = functools.partial(self._send, settings, action, request_name, params)
                response = await asyncio.get_running_loop().run_in_executor(sdk_executor(), send)
            return _response_body(action, response)
        except DataWorksThrottlingError as err:
            spend.throttled(action, err.retry_after)
            raise

    def _call(self, action: str, request_name: str, *, create: bool = False, **params: Any) -> dict[str, Any]:
        settings = self.get_settings()
        retrying = self.retry_policy.retrying(_create_may_retry if create else is_transient)
        try:
            return retrying(self._invoke, settings, action, request_name, params)
        except DataWorksError as err:
            if create and is_transient(err) and not _create_may_retry(err):
                raise _ambiguous_create(err, params) from err
            raise

    async def _acall(self, action: str, request_name: str, *, create: bool = False, **params: Any) -> dict[str, Any]:
        settings = await self.get_settings_async()
        loop = asyncio.get_running_loop()
        if self._client is None:
            # The first client of a process imports the SDK (~0.5 s): never on the event loop.
            await loop.run_in_executor(sdk_executor(), self._prepare_async, settings)

        async def attempt() -> dict[str, Any]:
            return await self._invoke_async(settings, action, request_name, params)

        retrying = self.retry_policy.async_retrying(_create_may_retry if create else is_transient)
        try:
            return await retrying(attempt)
        except DataWorksError as err:
            if create and is_transient(err) and not _create_may_retry(err):
                raise _ambiguous_create(err, params) from err
            raise

    # ---------------------------------------------------------------- CreatePipelineRun

    def _create_params(
        self,
        project_id: int,
        object_id: Any,
        type: str,
        description: str | None,
        run_mode: str | None,
        auto_run_until_stage: str | None,
    ) -> dict[str, Any]:
        run_type = parse_choice(RunType, type, "type")
        mode = parse_choice(RunMode, run_mode, "run_mode") if run_mode else None
        check_auto_mode(mode, auto_run_until_stage)
        return {
            "project_id": project_id,
            "type": run_type,
            "object_ids": [validate_object_id(object_id)],
            "description": description,
            "run_mode": mode,
            "auto_run_until_stage": auto_run_until_stage or None,
        }

    def create_pipeline_run(
        self,
        object_id: str,
        type: str = "Online",
        *,
        project_id: Any = None,
        description: str | None = None,
        run_mode: str | None = None,
        auto_run_until_stage: str | None = None,
    ) -> str:
        """Create a pipeline run for ONE object (and its children); return the run ID.

        :raises PipelineRunAmbiguousCreateError: the call failed in a way that does not tell
            whether DataWorks created the run; list the object's runs before trying again.
        """
        params = self._create_params(
            self.resolve_project_id(project_id), object_id, type, description, run_mode, auto_run_until_stage
        )
        body = self._call("CreatePipelineRun", "CreatePipelineRunRequest", create=True, **params)
        return _created_id(body, params)

    async def create_pipeline_run_async(
        self,
        object_id: str,
        type: str = "Online",
        *,
        project_id: Any = None,
        description: str | None = None,
        run_mode: str | None = None,
        auto_run_until_stage: str | None = None,
    ) -> str:
        params = self._create_params(
            await self.resolve_project_id_async(project_id),
            object_id,
            type,
            description,
            run_mode,
            auto_run_until_stage,
        )
        body = await self._acall("CreatePipelineRun", "CreatePipelineRunRequest", create=True, **params)
        return _created_id(body, params)

    # ---------------------------------------------------------------- GetPipelineRun

    def get_pipeline_run(self, run_id: str, project_id: Any = None) -> PipelineRun:
        """Return the run with its stages."""
        body = self._call(
            "GetPipelineRun",
            "GetPipelineRunRequest",
            project_id=self.resolve_project_id(project_id),
            id=run_id,
        )
        return _parse_run(body)

    async def get_pipeline_run_async(self, run_id: str, project_id: Any = None) -> PipelineRun:
        body = await self._acall(
            "GetPipelineRun",
            "GetPipelineRunRequest",
            project_id=await self.resolve_project_id_async(project_id),
            id=run_id,
        )
        return _parse_run(body)

    # ---------------------------------------------------------------- ListPipelineRuns

    def list_pipeline_runs(
        self,
        project_id: Any = None,
        *,
        object_id: str | None = None,
        status: str | None = None,
        creator: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> list[PipelineRun]:
        """Return every matching run, reading every page."""
        params = _list_params(self.resolve_project_id(project_id), object_id, status, creator, page_size)
        runs: list[PipelineRun] = []
        for page in range(1, 1_000_000):
            body = self._call("ListPipelineRuns", "ListPipelineRunsRequest", page_number=page, **params)
            if _collect(body, "PipelineRuns", PipelineRun.from_api, runs, page_size):
                return runs
        return runs

    def list_pipeline_runs_page(
        self,
        project_id: Any = None,
        *,
        object_id: str | None = None,
        status: str | None = None,
        page_number: int = 1,
        page_size: int = MAX_PAGE_SIZE,
    ) -> tuple[list[PipelineRun], bool]:
        """Return one page of matching runs and whether it was the last page (for listings that stop early)."""
        params = _list_params(self.resolve_project_id(project_id), object_id, status, None, page_size)
        body = self._call("ListPipelineRuns", "ListPipelineRunsRequest", page_number=page_number, **params)
        runs: list[PipelineRun] = []
        total = (body.get("PagingInfo") or {}).get("TotalCount")
        last = _collect(body, "PipelineRuns", PipelineRun.from_api, runs, page_size)
        if isinstance(total, int) or (isinstance(total, str) and total.isdigit()):
            # _collect counts the rows it was given; across pages the page number says how many came before
            served = served_page_size(body.get("PagingInfo") or {}, page_size)
            last = (page_number - 1) * served + len(runs) >= int(total) or not runs
        return runs, last

    async def list_pipeline_runs_async(
        self,
        project_id: Any = None,
        *,
        object_id: str | None = None,
        status: str | None = None,
        creator: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> list[PipelineRun]:
        params = _list_params(await self.resolve_project_id_async(project_id), object_id, status, creator, page_size)
        runs: list[PipelineRun] = []
        for page in range(1, 1_000_000):
            body = await self._acall("ListPipelineRuns", "ListPipelineRunsRequest", page_number=page, **params)
            if _collect(body, "PipelineRuns", PipelineRun.from_api, runs, page_size):
                return runs
        return runs

    # ---------------------------------------------------------------- ListPipelineRunItems

    def list_pipeline_run_items(self, run_id: str, project_id: Any = None) -> list[PipelineRunItem]:
        """Return the objects fixed in a run (the object and its children), every page."""
        project = self.resolve_project_id(project_id)
        items: list[PipelineRunItem] = []
        for page in range(1, 1_000_000):
            body = self._call(
                "ListPipelineRunItems",
                "ListPipelineRunItemsRequest",
                project_id=project,
                pipeline_run_id=run_id,
                page_number=page,
                page_size=MAX_PAGE_SIZE,
            )
            if _collect(body, "PipelineRunItems", PipelineRunItem.from_api, items, MAX_PAGE_SIZE):
                return items
        return items

    async def list_pipeline_run_items_async(self, run_id: str, project_id: Any = None) -> list[PipelineRunItem]:
        project = await self.resolve_project_id_async(project_id)
        items: list[PipelineRunItem] = []
        for page in range(1, 1_000_000):
            body = await self._acall(
                "ListPipelineRunItems",
                "ListPipelineRunItemsRequest",
                project_id=project,
                pipeline_run_id=run_id,
                page_number=page,
                page_size=MAX_PAGE_SIZE,
            )
            if _collect(body, "PipelineRunItems", PipelineRunItem.from_api, items, MAX_PAGE_SIZE):
                return items
        return items

    # ---------------------------------------------------------------- ExecPipelineRunStage

    def exec_pipeline_run_stage(self, run_id: str, stage_code: str, project_id: Any = None) -> bool:
        """Ask DataWorks to execute one stage (asynchronously); return whether it was triggered."""
        body = self._call(
            "ExecPipelineRunStage",
            "ExecPipelineRunStageRequest",
            project_id=self.resolve_project_id(project_id),
            id=run_id,
            code=stage_code,
        )
        return bool(body.get("Success", True))

    async def exec_pipeline_run_stage_async(self, run_id: str, stage_code: str, project_id: Any = None) -> bool:
        body = await self._acall(
            "ExecPipelineRunStage",
            "ExecPipelineRunStageRequest",
            project_id=await self.resolve_project_id_async(project_id),
            id=run_id,
            code=stage_code,
        )
        return bool(body.get("Success", True))

    # ---------------------------------------------------------------- AbolishPipelineRun

    def abolish_pipeline_run(self, run_id: str, project_id: Any = None) -> bool:
        """Abolish a run (its status becomes ``Termination``); return whether DataWorks accepted."""
        body = self._call(
            "AbolishPipelineRun",
            "AbolishPipelineRunRequest",
            project_id=self.resolve_project_id(project_id),
            id=run_id,
        )
        return bool(body.get("Success", True))

    async def abolish_pipeline_run_async(self, run_id: str, project_id: Any = None) -> bool:
        body = await self._acall(
            "AbolishPipelineRun",
            "AbolishPipelineRunRequest",
            project_id=await self.resolve_project_id_async(project_id),
            id=run_id,
        )
        return bool(body.get("Success", True))

    # ---------------------------------------------------------------- one step of a wait

    def advance_pipeline_run(
        self, run_id: str, project_id: Any, progress: RunProgress, run: PipelineRun | None = None
    ) -> tuple[PipelineRun, Decision]:
        """Read the run (unless given), decide what comes next, and execute the next stage if that is it.

        Every wait — the blocking loop below, the check before deferring, the sensor's poke and
        the trigger — takes its steps here, so they cannot drift apart. A given run that is active
        but carries no stages (a listing row) is read again with ``GetPipelineRun`` first. An
        execution DataWorks does not accept (``Success: false``, a 4xx) is recorded in ``progress``,
        which executes it again after a backoff and gives up after its attempts; a permission
        error, a missing run and transient errors propagate (see :func:`error_remedy`).
        """
        if run is None or (not run.is_terminal and not run.stages_known):
            run = self.get_pipeline_run(run_id, project_id)
        decision = progress.decide(run)
        if decision.step is Step.EXECUTE and decision.stage is not None:
            try:
                started = self.exec_pipeline_run_stage(run_id, decision.stage.code, project_id)
            except DataWorksClientError as err:
                _record_refusal(progress, decision.stage, err)
            else:
                _record_exec(progress, decision.stage, started)
        return run, decision

    async def advance_pipeline_run_async(
        self, run_id: str, project_id: Any, progress: RunProgress, run: PipelineRun | None = None
    ) -> tuple[PipelineRun, Decision]:
        if run is None or (not run.is_terminal and not run.stages_known):
            run = await self.get_pipeline_run_async(run_id, project_id)
        decision = progress.decide(run)
        if decision.step is Step.EXECUTE and decision.stage is not None:
            try:
                started = await self.exec_pipeline_run_stage_async(run_id, decision.stage.code, project_id)
            except DataWorksClientError as err:
                _record_refusal(progress, decision.stage, err)
            else:
                _record_exec(progress, decision.stage, started)
        return run, decision

    # ---------------------------------------------------------------- the blocking wait

    def wait_for_pipeline_run(
        self,
        run_id: str,
        project_id: Any = None,
        *,
        poll_interval: float = 10.0,
        deadline: float | None = None,
        advance_stages: bool = True,
        advance_until_stage: str | None = None,
        progress: RunProgress | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> PipelineRun:
        """Poll (and optionally drive) a run until it finishes; return the final run.

        Transient errors (throttling, 5xx, no answer) never end the wait while its deadline is
        ahead: the wait logs "DataWorks unreachable since …" and reads again a poll interval later.

        :param deadline: absolute ``time.time()`` after which the wait gives up.
        :param progress: carry memory of executed stages over several waits (optional).
        :raises PipelineRunFailedError: the run ended ``Fail``, ``Termination`` or ``Cancel``.
        :raises PipelineRunGaveUpError: the run cannot reach what was asked (see :class:`RunProgress`).
        :raises PipelineRunTimeoutError: the deadline passed first; the run is left as it is.
        """
        project = self.resolve_project_id(project_id)
        progress = progress or RunProgress(
            advance_stages=advance_stages, advance_until_stage=advance_until_stage, logger=self.log
        )
        outage = Outage(self.log, run_id)
        run: PipelineRun | None = None
        while True:
            try:
                run, decision = self.advance_pipeline_run(run_id, project, progress)
            except DataWorksError as err:
                if not is_transient(err):
                    raise
                outage.failed(err)
            else:
                outage.ended()
                if decision.step is Step.SUCCEED:
                    self.log.info("%s", decision.reason)
                    return run
                decision.raise_for_failure(run)
            pause = pause_before_next_read(poll_interval, deadline)
            if pause is None:
                stop = progress.describe_stop(run) + outage.describe()
                raise PipelineRunTimeoutError(
                    f"Pipeline run {run_id} did not finish before the timeout. {stop}",
                    run=run,
                    stage=run.current_stage if run is not None else None,
                )
            sleep(pause)

    # ---------------------------------------------------------------- connection test

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap read call; return ``(ok, reason)`` for Airflow's Test button."""
        try:
            settings = self.get_settings()
            if settings.project_id:
                body = self._call("GetProject", "GetProjectRequest", id=settings.project_id)
                name = (body.get("Project") or {}).get("Name")
                return (
                    True,
                    f"Connected to DataWorks; workspace {settings.project_id} ({name}) is accessible.",
                )
            self._call("ListProjects", "ListProjectsRequest", page_size=1)
            return True, "Connected to DataWorks (no default workspace set: listed workspaces)."
        except ValueError as err:
            return False, f"Invalid connection: {err}"
        except DataWorksError as err:
            return False, _explain_connection_failure(err)


# -------------------------------------------------------------------- helpers


class Outage:
    """A wait's memory of DataWorks not answering: when it began, how many reads failed since.

    Transient errors never end a wait while its deadline is ahead (the per-call retries ran out,
    DataWorks may still be deploying); the wait logs that it goes on, once per failed read.
    """

    def __init__(self, logger: Any, run_id: str) -> None:
        self.log = logger
        self.run_id = run_id
        self.since: float | None = None
        self.failures = 0
        self.last_error: BaseException | None = None

    def failed(self, error: BaseException) -> None:
        if self.since is None:
            self.since = time.time()
        self.failures += 1
        self.last_error = error
        self.log.warning(
            "DataWorks unreachable since %s (%d failed reads of pipeline run %s), retrying: %s",
            time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.since)),
            self.failures,
            self.run_id,
            error,
        )

    def ended(self) -> None:
        if self.since is not None:
            self.log.info(
                "DataWorks answers again after %.0f s (%d failed reads).", time.time() - self.since, self.failures
            )
        self.since, self.failures, self.last_error = None, 0, None

    def describe(self) -> str:
        """A sentence for the timeout message while an outage is going on."""
        if self.since is None:
            return ""
        return (
            f" DataWorks had not answered for {time.time() - self.since:.0f} s ({self.failures} failed reads; "
            f"last: {self.last_error})."
        )


def _record_refusal(progress: RunProgress, stage: Stage, error: DataWorksClientError) -> None:
    """An execution DataWorks answered with a 4xx: a refusal to back off from, unless waiting cannot help."""
    if error_remedy(error) in (Remedy.PERMISSION, Remedy.NOT_FOUND):
        raise error
    progress.refused(stage, error)


def _record_exec(progress: RunProgress, stage: Stage, started: bool) -> None:
    """``ExecPipelineRunStage`` answered ``Success``: true means the stage started, false that it did not."""
    if started:
        progress.executed(stage)
    else:
        progress.not_started(stage)


#: regions with a public DataWorks endpoint ``dataworks.<region>.aliyuncs.com`` (the SDK's endpoint
#: table, 9.11.0); any other host, e.g. a VPC endpoint, goes in the connection's endpoint extra
DATAWORKS_REGIONS = frozenset(
    {
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-southeast-1",
        "ap-southeast-3",
        "ap-southeast-5",
        "cn-beijing",
        "cn-beijing-finance-1",
        "cn-chengdu",
        "cn-hangzhou",
        "cn-hongkong",
        "cn-north-2-gov-1",
        "cn-shanghai",
        "cn-shanghai-finance-1",
        "cn-shenzhen",
        "cn-shenzhen-finance-1",
        "cn-wulanchabu",
        "cn-zhangjiakou",
        "eu-central-1",
        "eu-west-1",
        "me-central-1",
        "me-east-1",
        "us-east-1",
        "us-west-1",
    }
)


def build_sdk_client(settings: ConnectionSettings) -> Any:
    """Build the SDK client for ``settings`` (imports the SDK; blocking)."""
    from alibabacloud_dataworks_public20240518.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    endpoint = settings.endpoint
    if not endpoint:
        if settings.region not in DATAWORKS_REGIONS:
            raise ValueError(
                f"Connection {settings.conn_id!r}: region {settings.region!r} has no known DataWorks endpoint. "
                "Check the region ID (e.g. cn-hangzhou, ap-southeast-1) or set the endpoint extra."
            )
        endpoint = f"dataworks.{settings.region}.aliyuncs.com"
    options: dict[str, Any] = {
        "region_id": settings.region,
        "endpoint": endpoint,
        "protocol": settings.protocol,
        "user_agent": USER_AGENT,
        "ca": settings.ca,
        "read_timeout": int(settings.read_timeout * 1000) if settings.read_timeout else None,
        "connect_timeout": int(settings.connect_timeout * 1000) if settings.connect_timeout else None,
    }
    if settings.auth_type in ("access_key", "sts"):
        options["access_key_id"] = settings.access_key_id
        options["access_key_secret"] = settings.access_key_secret
        if settings.auth_type == "sts":
            options["security_token"] = settings.security_token
    else:
        options["credential"] = _credential_client(settings)
    try:
        client = Client(Config(**{key: value for key, value in options.items() if value is not None}))
    except Exception as err:
        raise ValueError(f"Connection {settings.conn_id!r}: could not configure the DataWorks client: {err}") from None
    return client


def _credential_client(settings: ConnectionSettings) -> Any:
    """The connection's credentials client: one provider per connection per process (see :mod:`.credentials`)."""
    from airflow_provider_dataworks.hooks.credentials import credential_client

    return credential_client(settings)


def _sdk_request(request_name: str, params: dict[str, Any]) -> Any:
    """Build the SDK's request model (the SDK is imported by then: the client exists)."""
    from alibabacloud_dataworks_public20240518 import models

    return getattr(models, request_name)(**{key: value for key, value in params.items() if value is not None})


#: reads made through the client's public ``call_api``: the JSON body comes back as a dict and is
#: parsed straight into PipelineRun records, without the SDK's response models (per-poll garbage)
_DIRECT_JSON = ("GetPipelineRun", "ListPipelineRuns")
#: snake_case request fields -> the API's query parameter names
_QUERY_NAMES = {
    "project_id": "ProjectId",
    "id": "Id",
    "object_id": "ObjectId",
    "status": "Status",
    "creator": "Creator",
    "page_number": "PageNumber",
    "page_size": "PageSize",
}


def _direct_call(action: str, params: dict[str, Any]) -> tuple[Any, Any, Any]:
    """``(Params, OpenApiRequest, RuntimeOptions)`` for ``Client.call_api``, built as the SDK builds them."""
    from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
    from darabonba.runtime import RuntimeOptions

    query = {_QUERY_NAMES[name]: str(value) for name, value in params.items() if value is not None}
    api = Params(
        action=action,
        version="2024-05-18",
        protocol="HTTPS",
        pathname="/",
        method="GET",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    return api, OpenApiRequest(query=query), RuntimeOptions()


#: the part of a read's answer that says anything (the SDK's response models, dataworks-api.md §10).
#: Without it an answer (a 200 ``{"Success": false}``, a gateway's stub) would read as an empty
#: listing or a run of unknown status: facts the server never stated. A listing read as "no runs"
#: let a retry create a second run beside the first one (the fault-schedule fuzzer found it).
_ANSWER_KEYS = {
    "GetPipelineRun": "Pipeline",
    "ListPipelineRuns": "PagingInfo",
    "ListPipelineRunItems": "PagingInfo",
    "GetDataQualityEvaluationTaskInstance": "DataQualityEvaluationTaskInstance",
    "ListDataQualityEvaluationTaskInstances": "PagingInfo",
}


def _response_body(action: str, response: Any) -> dict[str, Any]:
    """Return a response's body as the PascalCase dict DataWorks sent (``call_api`` gives a dict already).

    :raises DataWorksTransportError: a read answered without the part that carries its answer
        (:data:`_ANSWER_KEYS`); transient, so the call is retried like any unusable answer.
    """
    if isinstance(response, dict):
        body: dict[str, Any] = response.get("body") or {}
    else:
        body = response.body.to_map() if response.body is not None else {}
    log.debug("DataWorks %s answered, RequestId %s", action, body.get("RequestId"))
    key = _ANSWER_KEYS.get(action)
    if key is not None and not isinstance(body.get(key), dict):
        request_id = body.get("RequestId")
        raise DataWorksTransportError(
            f"DataWorks answered {action} without {key}"
            + (f" (RequestId {request_id})" if request_id else "")
            + "; an answer that says nothing is not read as an empty one",
            action=action,
        )
    return body


def _snake(action: str) -> str:
    out = []
    for index, char in enumerate(action):
        if char.isupper() and index:
            out.append("_")
        out.append(char.lower())
    return "".join(out)


def _list_params(
    project_id: int, object_id: str | None, status: str | None, creator: str | None, page_size: int
) -> dict[str, Any]:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}.")
    return {
        "project_id": project_id,
        "object_id": validate_object_id(object_id) if object_id is not None else None,
        "status": parse_choice(PipelineRunStatus, status, "status") if status else None,
        "creator": creator,
        "page_size": page_size,
    }


def _collect(body: dict[str, Any], key: str, parse: Callable[[Any], T], into: list[T], page_size: int) -> bool:
    """Append one page; return True when it was the last page.

    The end comes from what the server returned (``TotalCount``, else a page shorter than the
    ``PageSize`` it answered), never from the page size asked for: a server may serve fewer.
    """
    paging = body.get("PagingInfo") or {}
    rows = paging.get(key) or []
    into.extend(parse(row) for row in rows)
    total = paging.get("TotalCount")
    if total is not None:
        try:
            return len(into) >= int(total) or not rows
        except (TypeError, ValueError):
            pass
    return len(rows) < served_page_size(paging, page_size)


def _parse_run(body: dict[str, Any]) -> PipelineRun:
    return PipelineRun.from_api(body.get("Pipeline") or {}, request_id=body.get("RequestId"))


def _created_id(body: dict[str, Any], params: dict[str, Any]) -> str:
    run_id = body.get("Id")
    if not run_id:
        raise DataWorksError(
            f"CreatePipelineRun for object {params['object_ids'][0]} returned no run Id "
            f"(RequestId {body.get('RequestId')})."
        )
    log.info(
        "Created DataWorks pipeline run %s (%s of object %s in workspace %s, RequestId %s).",
        run_id,
        params["type"],
        params["object_ids"][0],
        params["project_id"],
        body.get("RequestId"),
    )
    return str(run_id)


def _ambiguous_create(error: DataWorksError, params: dict[str, Any]) -> PipelineRunAmbiguousCreateError:
    if "object_ids" not in params:  # another create (Data Quality): its hook words the error itself
        return PipelineRunAmbiguousCreateError(f"The create call failed without a clear answer: {error}", cause=error)
    return PipelineRunAmbiguousCreateError(
        f"CreatePipelineRun for object {params['object_ids'][0]} in workspace {params['project_id']} failed "
        f"without a clear answer, so the run may or may not exist: {error}. It was not resubmitted; list the "
        "object's pipeline runs before creating another.",
        cause=error,
    )


def _explain_connection_failure(error: DataWorksError) -> str:
    code = getattr(error, "code", None) or ""
    if code.startswith("InvalidAccessKeyId"):
        return f"The AccessKey ID is not known to Alibaba Cloud: {error}"
    if code.startswith(("SignatureDoesNotMatch", "IncompleteSignature")):
        return f"The AccessKey Secret does not match the AccessKey ID: {error}"
    if code.startswith(("Forbidden", "ResourceNotAuthorized", "NoPermission")):
        return f"The credentials may not access this workspace or DataWorks API: {error}"
    if isinstance(error, DataWorksTransportError):
        return f"DataWorks could not be reached (check the region, endpoint and network): {error}"
    return f"DataWorks rejected the test call: {error}"
