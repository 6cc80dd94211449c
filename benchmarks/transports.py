"""The ways of reading a pipeline run from asyncio that the benchmarks compare.

Each is a :class:`DataWorksHook` subclass, so the real :class:`PipelineRunTrigger` (its loop,
``RunProgress`` decisions and events) runs unchanged on top of it; only the I/O differs:

* ``hook``   — the provider's hook as it is, with its default async transport (the SDK's
  ``*_async`` methods over one shared aiohttp session per loop, ``hooks/transport.py``).
* ``hook_threads`` — the same hook with its fallback transport, selected the public way
  (``AIRFLOW_PROVIDER_DATAWORKS_ASYNC_TRANSPORT=threads``): the sync SDK on its thread pool.
* ``native`` — the SDK's own ``*_async`` methods awaited on the event loop as shipped (a new SSL
  context, session and TCP connection per call), with the hook's retry policy and error translation.
* ``raw``    — the floor: one shared ``aiohttp`` session per event loop, requests ACS3-signed with
  the emulator's signer (:mod:`airflow_provider_dataworks.testing.signature`), JSON parsed into
  the same :class:`PipelineRun` record. No retries.

Every class records the wall-clock start and end of each ``get_pipeline_run_async`` call in
:data:`RECORDER`, per run ID, for the lateness and latency figures.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from airflow_provider_dataworks.exceptions import DataWorksError
from airflow_provider_dataworks.hooks import dataworks as hook_module
from airflow_provider_dataworks.hooks.dataworks import DataWorksHook
from airflow_provider_dataworks.status import PipelineRun
from benchmarks.rawclient import RawApiError, RawClient

MODES = ("hook", "hook_threads", "native", "raw")
#: the hook's switch between its async transports, and the value of the fallback
TRANSPORT_ENV = getattr(hook_module, "ASYNC_TRANSPORT_ENV", "AIRFLOW_PROVIDER_DATAWORKS_ASYNC_TRANSPORT")


@dataclass
class CallLog:
    """``get_pipeline_run_async`` calls of one run, each ``[start, end, ok]`` in ``time.monotonic()``.

    ``end`` and ``ok`` stay ``None`` while the call is in flight.
    """

    calls: list[list[Any]] = field(default_factory=list)


class Recorder:
    """Per-run call logs, filled by the hooks below."""

    def __init__(self) -> None:
        self.runs: dict[str, CallLog] = {}
        self.hooks_built = 0
        self.last_hook: Any = None

    def log(self, run_id: str) -> CallLog:
        found = self.runs.get(run_id)
        if found is None:
            found = self.runs[run_id] = CallLog()
        return found


RECORDER = Recorder()


class _Timed(DataWorksHook):
    """Record every ``get_pipeline_run_async`` call in :data:`RECORDER`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RECORDER.hooks_built += 1
        RECORDER.last_hook = self

    async def get_pipeline_run_async(self, run_id: str, project_id: Any = None) -> PipelineRun:
        record: list[Any] = [time.monotonic(), None, None]
        RECORDER.log(run_id).calls.append(record)
        try:
            run = await super().get_pipeline_run_async(run_id, project_id)
        except BaseException:
            record[1:] = [time.monotonic(), False]
            raise
        record[1:] = [time.monotonic(), True]
        return run


class ProviderHook(_Timed):
    """The provider's hook as it is (its async transport chosen by ``TRANSPORT_ENV``)."""


class NativeAsyncHook(_Timed):
    """The SDK's native ``*_async`` methods, awaited on the loop, behind the hook's retries."""

    async def _acall(self, action: str, request_name: str, *, create: bool = False, **params: Any) -> dict[str, Any]:
        from alibabacloud_dataworks_public20240518 import models

        settings = await self.get_settings_async()
        client = self._get_client(settings)
        method = getattr(client, hook_module._snake(action) + "_async")

        async def attempt() -> dict[str, Any]:
            request = getattr(models, request_name)(**{k: v for k, v in params.items() if v is not None})
            try:
                response = await method(request)
            except Exception as err:
                raise hook_module.translate_sdk_error(err, action) from err
            return response.body.to_map() if response.body is not None else {}

        return await self.retry_policy.async_retrying()(attempt)


_SESSIONS: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def shared_session(ca_path: str | None) -> aiohttp.ClientSession:
    """The one session of the running loop (keep-alive, one SSL context)."""
    loop = asyncio.get_running_loop()
    session = _SESSIONS.get(loop)
    if session is None or session.closed:
        ssl_context: Any = False
        if ca_path:
            import ssl

            ssl_context = ssl.create_default_context(cafile=ca_path)
        connector = aiohttp.TCPConnector(limit=0, ssl=ssl_context)
        session = _SESSIONS[loop] = aiohttp.ClientSession(connector=connector)
    return session


class _RawTransport(DataWorksHook):
    async def get_pipeline_run_async(self, run_id: str, project_id: Any = None) -> PipelineRun:
        settings = await self.get_settings_async()
        project = await self.resolve_project_id_async(project_id)
        client = RawClient(
            shared_session(settings.ca),
            settings.protocol,
            settings.endpoint or "",
            settings.access_key_id or "",
            settings.access_key_secret or "",
        )
        try:
            body = await client.get_pipeline_run(project, run_id)
        except (RawApiError, aiohttp.ClientError, TimeoutError) as err:
            raise DataWorksError(str(err)) from err
        return PipelineRun.from_api(body.get("Pipeline") or {}, request_id=body.get("RequestId"))


class RawAiohttpHook(_Timed, _RawTransport):
    """The floor: raw signed requests over one shared session."""


class InstrumentedExecutor(ThreadPoolExecutor):
    """The hook's SDK pool, recording per task: queued, started, ended (monotonic) and thread CPU."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "dataworks-sdk") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self.records: list[tuple[float, float, float, float]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        queued = time.monotonic()

        def timed() -> Any:
            started, cpu = time.monotonic(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.records.append((queued, started, time.monotonic(), time.thread_time() - cpu))

        return super().submit(timed)


def instrument_sdk_pool() -> InstrumentedExecutor | None:
    """Replace the hook's (not yet created) SDK pool with an instrumented one of the same size."""
    if getattr(hook_module, "_executor", "missing") is not None:
        return None  # already created, or the hook no longer keeps it in ``_executor``
    executor = InstrumentedExecutor(hook_module.SDK_THREADS)
    hook_module._executor = executor
    return executor


HOOKS: dict[str, type[DataWorksHook]] = {
    "hook": ProviderHook,
    "hook_threads": ProviderHook,
    "native": NativeAsyncHook,
    "raw": RawAiohttpHook,
}


def select_transport(mode: str) -> None:
    """Set the hook's transport switch for ``mode`` (read by each hook on its first async call)."""
    if mode == "hook_threads":
        os.environ[TRANSPORT_ENV] = "threads"
    else:
        os.environ.pop(TRANSPORT_ENV, None)


def transport_used() -> str | None:
    """Which async transport the last hook built used: ``shared-session``, ``threads`` or ``None``."""
    hook = RECORDER.last_hook
    if not isinstance(hook, ProviderHook) or getattr(hook, "_client", None) is None:
        return None
    shared = getattr(hook, "_shared_transport", None)
    return None if shared is None else ("shared-session" if shared else "threads")


def use_in_trigger(mode: str) -> type[DataWorksHook]:
    """Make :class:`PipelineRunTrigger` build the ``mode`` hook; return that class.

    The trigger looks ``DataWorksHook`` up in its module when it builds its hook, so replacing
    that name is enough; :func:`check_used` fails loudly if a refactor bypasses it.
    """
    from airflow_provider_dataworks.triggers import pipeline_run as trigger_module

    cls = HOOKS[mode]
    select_transport(mode)
    trigger_module.DataWorksHook = cls  # type: ignore[misc]
    return cls


def check_used(mode: str) -> None:
    """Raise when the benchmark did not measure what ``mode`` names: the comparison would be wrong."""
    if RECORDER.hooks_built == 0:
        raise RuntimeError(
            "PipelineRunTrigger did not build its hook through triggers.pipeline_run.DataWorksHook; "
            "update benchmarks/transports.py:use_in_trigger"
        )
    expected = {"hook": "shared-session", "hook_threads": "threads"}.get(mode)
    used = transport_used()
    if expected is not None and used is not None and used != expected:
        raise RuntimeError(f"mode {mode} expects the hook's {expected} transport, but it used {used}")
