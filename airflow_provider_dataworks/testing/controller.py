"""``DataWorksEmulator``: run the emulator inside a test process, or drive one running elsewhere.

In-process, the server runs on its own event loop in a daemon thread; control calls are handed
to that loop, so test code never races the server. :meth:`DataWorksEmulator.attach` returns an
object with the same methods that talks to another process's emulator over the control API.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

from . import errors
from .auth import DEFAULT_ACCOUNT_ID, Credential
from .core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_INIT_SECONDS, EmulatorCore, Settings
from .faults import HTTP_ERROR, Fault, join_actions
from .quota import UNLIMITED_QPS, summarize
from .runtime import Listener, start_listener
from .seed import SeedSource, load_seed
from .server import CONTROL_ROUTES
from .shapes import FULL

#: Environment variables that would route the SDK's loopback calls through a proxy.
PROXY_ENV_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


class EmulatorControlError(RuntimeError):
    """A control operation was refused (unknown run, stage not approvable, bad payload...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class _InProcess:
    """Runs an :class:`EmulatorCore` listener on a private event loop thread."""

    def __init__(self, core: EmulatorCore, host: str, port: int, tls: bool, cert_dir: str | None) -> None:
        self.core = core
        self._args = (host, port, tls, cert_dir)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.listener: Listener | None = None
        self._thread = threading.Thread(target=self._main, name="dataworks-emulator", daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        assert self.listener is not None
        return self.listener

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        host, port, tls, cert_dir = self._args
        try:
            self.listener = self._loop.run_until_complete(start_listener(self.core, host, port, tls, cert_dir))
        except BaseException as err:  # handed to the starting thread
            self._error = err
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self.listener.close())
            self._loop.close()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def control(self, operation: str, payload: Mapping[str, Any]) -> Any:
        async def run() -> Any:
            return self.core.control(operation, payload)

        try:
            return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)
        except errors.ApiError as err:
            raise EmulatorControlError(err.status, err.code, err.message) from err
        except (KeyError, TypeError, ValueError) as err:
            raise EmulatorControlError(400, "InvalidRequest", repr(err)) from err


class _Remote:
    """Talks to an emulator in another process through ``/_emulator/``."""

    def __init__(self, url: str, ca_path: str | None) -> None:
        self.url = url.rstrip("/")
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if self.url.startswith("https://"):
            context = ssl.create_default_context(cafile=ca_path)
            if ca_path is None:
                # The emulator's own throw-away CA; the control API only answers loopback clients.
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def control(self, operation: str, payload: Mapping[str, Any]) -> Any:
        method, path = CONTROL_ROUTES[operation]
        data = None
        url = self.url + path
        if method == "GET":
            query = {k: v for k, v in payload.items() if v is not None}
            if query:
                url += "?" + urlencode(query)
        else:
            data = json.dumps(dict(payload)).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the emulator's own http(s) URL
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            body = json.loads(err.read() or b"{}")
            raise EmulatorControlError(err.code, body.get("error", ""), body.get("message", "")) from err


class DataWorksEmulator:
    """A local DataWorks OpenAPI emulator that the real Alibaba Cloud SDK talks to.

    :param stage_seconds: how long every pipeline-run stage takes once started (0: instantly).
    :param tls: serve HTTPS with a throw-away CA (see :attr:`ca_path`).
    :param seed: a seed file path or document; ``None`` loads the packaged default seed.
    :param access_key_id: the AccessKey ID the emulator accepts.
    :param access_key_secret: its secret.
    :param account_id: the account reported as ``Creator`` for that AccessKey.
    :param host: interface to listen on.
    :param port: port to listen on; 0 picks a free one.
    :param cert_dir: where to write the TLS files (default: a temporary directory).
    :param object_not_found_code: the error code of the "未找到发布对象" answer.
    :param clock: epoch-seconds clock of the emulator (tests may pass a fake one).
    :param init_seconds: how long a new run reports ``Init`` (run and stages) before its first
        stage starts.
    :param read_qps: enforce a read quota (``429 Throttling.User`` above it); ``None``: none.
    :param write_qps: enforce a write quota likewise.
    :param qps: enforce a quota on all calls together, the Basic edition's shape (every client of
        the emulator spends it, as every process of an account spends DataWorks').
    :param list_stages: ``ListPipelineRuns`` rows carry ``"full"`` stages, none (``"missing"``: no
        ``Stages`` key) or ``"empty"`` ones (``Stages: []``); see :mod:`.shapes`.
    :param description_limit: keep only this many characters of a run's ``Description``.
    :param max_page_size: serve at most this many rows a page of ``ListPipelineRuns`` and
        ``ListPipelineRunItems``, whatever ``PageSize`` asked.
    """

    def __init__(
        self,
        stage_seconds: float = 0.0,
        tls: bool = False,
        seed: SeedSource = None,
        access_key_id: str = DEFAULT_ACCESS_KEY_ID,
        access_key_secret: str = DEFAULT_ACCESS_KEY_SECRET,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        host: str = "127.0.0.1",
        port: int = 0,
        cert_dir: str | Path | None = None,
        object_not_found_code: str = errors.OBJECT_NOT_FOUND_CODE,
        clock: Callable[[], float] = time.time,
        init_seconds: float = DEFAULT_INIT_SECONDS,
        read_qps: float | None = None,
        write_qps: float | None = None,
        qps: float | None = None,
        list_stages: str = FULL,
        description_limit: int | None = None,
        max_page_size: int | None = None,
    ) -> None:
        self.stage_seconds = stage_seconds
        self.init_seconds = init_seconds
        self.tls = tls
        self.seed = seed
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.account_id = account_id
        self.host = host
        self.port = port
        self.cert_dir = None if cert_dir is None else str(cert_dir)
        self.object_not_found_code = object_not_found_code
        self.clock = clock
        self.read_qps = read_qps
        self.write_qps = write_qps
        self.qps = qps
        self.list_stages = list_stages
        self.description_limit = description_limit
        self.max_page_size = max_page_size
        self._backend: _InProcess | _Remote | None = None
        self._info: dict[str, Any] = {}

    # --- life cycle -------------------------------------------------------------------------------

    @classmethod
    def attach(cls, url: str, *, ca_path: str | None = None) -> DataWorksEmulator:
        """Return a handle on an emulator already running at ``url`` (e.g. ``http://127.0.0.1:PORT``)."""
        emulator = cls()
        remote = _Remote(url, ca_path)
        emulator._backend = remote
        emulator._load_info()
        if ca_path is not None:
            emulator._info["ca_path"] = ca_path
        return emulator

    def start(self) -> DataWorksEmulator:
        """Start serving; return ``self``. Typically used through ``with``."""
        if self._backend is not None:
            raise RuntimeError("the emulator is already running")
        settings = Settings(
            seed=load_seed(self.seed),
            credentials=[Credential(self.access_key_id, self.access_key_secret, account_id=self.account_id)],
            stage_seconds=self.stage_seconds,
            object_not_found_code=self.object_not_found_code,
            init_seconds=self.init_seconds,
            read_qps=self.read_qps,
            write_qps=self.write_qps,
            qps=self.qps,
            list_stages=self.list_stages,
            description_limit=self.description_limit,
            max_page_size=self.max_page_size,
        )
        backend = _InProcess(EmulatorCore(settings, self.clock), self.host, self.port, self.tls, self.cert_dir)
        backend.start()
        self._backend = backend
        self._load_info()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (no-op for an attached emulator)."""
        backend, self._backend = self._backend, None
        if isinstance(backend, _InProcess):
            backend.stop()

    def __enter__(self) -> DataWorksEmulator:
        return self.start() if self._backend is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _control(self, operation: str, payload: Mapping[str, Any] | None = None) -> Any:
        if self._backend is None:
            raise RuntimeError("the emulator is not running; use start() or a with block")
        return self._backend.control(operation, payload or {})

    def _load_info(self) -> None:
        self._info = dict(self._control("info"))
        if isinstance(self._backend, _Remote):
            self.access_key_id = self._info.get("access_key_id") or self.access_key_id
            self.access_key_secret = self._info.get("access_key_secret") or self.access_key_secret
            self.stage_seconds = float(self._info.get("stage_seconds", self.stage_seconds))
            self.init_seconds = float(self._info.get("init_seconds", self.init_seconds))
            self.tls = self._info.get("protocol") == "https"
            quota = self._info.get("quota") or {}
            self.read_qps, self.write_qps = quota.get("read_qps"), quota.get("write_qps")
            self.qps = quota.get("qps")
            self.list_stages = str(self._info.get("list_stages", self.list_stages))
            self.description_limit = self._info.get("description_limit")
            self.max_page_size = self._info.get("max_page_size")

    # --- where to connect ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``host:port``: what the SDK's ``Config.endpoint`` wants."""
        return str(self._info["endpoint"])

    @property
    def protocol(self) -> str:
        """``http`` or ``https``: the SDK's ``Config.protocol``."""
        return str(self._info["protocol"])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return str(self._info["url"])

    @property
    def ca_path(self) -> str | None:
        """CA bundle to trust in TLS mode (the SDK's ``Config.ca``); ``None`` over HTTP."""
        value = self._info.get("ca_path")
        return None if value is None else str(value)

    def connection_uri(self, project_id: int | str | None = 10000, conn_type: str = "dataworks", **extra: Any) -> str:
        """Return an Airflow connection URI pointing at this emulator.

        :param project_id: stored as the ``project_id`` extra; ``None`` leaves it out.
        :param extra: more extras (``region`` overrides ``cn-hangzhou``); a ``None`` value removes one.
            Unless the emulator enforces a quota, ``read_qps``/``write_qps`` are set high (the
            client's request budget then never slows a test down).
        """
        params: dict[str, Any] = {"endpoint": self.endpoint, "protocol": self.protocol, "region": "cn-hangzhou"}
        if self.read_qps is None and self.write_qps is None and self.qps is None:
            params.update(read_qps=UNLIMITED_QPS, write_qps=UNLIMITED_QPS)
        if project_id is not None:
            params["project_id"] = project_id
        if self.ca_path:
            params["ca"] = self.ca_path
        params.update(extra)
        query = urlencode({k: str(v) for k, v in params.items() if v is not None})
        login = quote(self.access_key_id, safe="")
        password = quote(self.access_key_secret, safe="")
        return f"{conn_type}://{login}:{password}@/?{query}"

    # --- control ------------------------------------------------------------------------------------

    def inject_fault(
        self,
        action: str | Iterable[str] = "*",
        kind: str = HTTP_ERROR,
        count: int = 1,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        retry_after_ms: int | None = None,
        seconds: float | None = None,
        for_seconds: float | None = None,
    ) -> Fault:
        """Make the next ``count`` calls of ``action`` fail as ``kind`` (see :mod:`.faults`).

        :param action: an action name, ``"*"``, comma-separated names or a tuple of names.
        :param count: how many calls it hits; ``0`` or less: every matching call (until cleared,
            or until ``for_seconds`` have passed).
        :param for_seconds: the fault disappears by itself this long after now (emulator clock).
        :return: the fault as the emulator holds it (with ``expires_at`` when timed).
        """
        fault = Fault(join_actions(action), kind, count, status, code, message, retry_after_ms, seconds, for_seconds)
        return Fault.from_json(self._control("add_fault", fault.to_json()))

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._control("clear_faults")

    def pending_faults(self) -> list[Fault]:
        """Return the faults not used up (nor expired) yet."""
        return [Fault.from_json(f) for f in self._control("faults")]

    def runs(self, object_id: str | int | None = None, project_id: int | None = None) -> list[dict[str, Any]]:
        """Return every run (oldest first) as ``GET /_emulator/runs`` does, optionally filtered."""
        result: list[dict[str, Any]] = self._control(
            "runs",
            {"object_id": None if object_id is None else str(object_id), "project_id": project_id},
        )
        return result

    def run(self, run_id: str) -> dict[str, Any]:
        """Return one run by ID.

        :raises KeyError: when there is no such run.
        """
        for record in self.runs():
            if record["id"] == run_id:
                return record
        raise KeyError(run_id)

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        """Return the logged API calls (``action``, ``status``, ``code``, ``time``, ``fault``...)."""
        calls: list[dict[str, Any]] = self._control("calls", {"action": action})["calls"]
        return calls

    def call_counts(self) -> dict[str, int]:
        """Return how many calls each action received since the last reset."""
        counts: dict[str, int] = self._control("calls", {"counts_only": "1"})["counts"]
        return counts

    def objects(self, project_id: int) -> list[dict[str, Any]]:
        """Return the objects of workspace ``project_id`` with their deployed state and version."""
        objects: list[dict[str, Any]] = self._control("objects", {"project_id": project_id})
        return objects

    def get_object(self, project_id: int, object_id: str | int) -> dict[str, Any]:
        """Return one top-level object of workspace ``project_id``.

        :raises KeyError: when there is no such object.
        """
        for obj in self.objects(project_id):
            if obj["id"] == str(object_id):
                return obj
        raise KeyError(object_id)

    def add_object(
        self,
        project_id: int,
        object_id: str | int,
        name: str | None = None,
        type: str = "Node",
        children: Iterable[str | int | Mapping[str, Any]] = (),
        deployed: bool = False,
        fail_at_stage: str | None = None,
        fail_message: str | None = None,
        approval_stages: Iterable[str] = (),
        *,
        mode: str | None = None,
        stage_seconds: float | None = None,
        stages: Iterable[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Add (or replace) a deployable object; the workspace is created (in ``mode``) if needed.

        :param children: child node IDs, or child objects as seed-file dicts.
        :param stage_seconds: how long each stage of this object's runs takes (default: the emulator's).
        :param stages: the stages of this object's runs, in order, e.g.
            ``[{"code": "BUILD_PACKAGE", "type": "Build"}, {"code": "CLEANUP", "type": "Delete"}, ...]``
            (``name``/``description`` default from the code; ``self_running`` defaults to true for a
            ``Build`` stage only); ``None``: the workspace mode's template.
        """
        child_docs = [dict(c) if isinstance(c, Mapping) else {"id": str(c), "type": "Node"} for c in children]
        document = {
            "id": str(object_id),
            "name": name,
            "type": type,
            "children": child_docs,
            "deployed": deployed,
            "fail_at_stage": fail_at_stage,
            "fail_message": fail_message,
            "approval_stages": list(approval_stages),
            "stage_seconds": stage_seconds,
            "stages": None if stages is None else [dict(s) for s in stages],
        }
        added: list[dict[str, Any]] = self._control(
            "add_objects", {"project_id": project_id, "mode": mode, "objects": [document]}
        )
        return added[0]

    def add_credential(
        self,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        account_id: str | None = None,
        projects: Iterable[int] | None = None,
    ) -> None:
        """Accept another AccessKey pair (an STS triple when ``security_token`` is given).

        :param projects: the only workspaces it may use; ``None``: all.
        """
        self._control(
            "add_credential",
            {
                "access_key_id": access_key_id,
                "access_key_secret": access_key_secret,
                "security_token": security_token,
                "account_id": account_id,
                "projects": None if projects is None else list(projects),
            },
        )

    def approve(self, run_id: str, stage_code: str, *, start: bool = True) -> dict[str, Any]:
        """Approve a manual-approval stage as a console user would; return the run record.

        A stage held ``Running`` for approval (``awaiting_approval``) is released: its stage time
        runs from now, then it succeeds (or fails as planned). For a stage not started yet:

        :param start: also start the stage when it is its turn; ``False`` only lifts the hold, so
            the stage waits for ``ExecPipelineRunStage`` and then runs normally.
        """
        record: dict[str, Any] = self._control("approve", {"run_id": run_id, "stage": stage_code, "start": start})
        return record

    def console_abolish(self, run_id: str) -> dict[str, Any]:
        """Terminate an active run as a person does in the console; return the run record.

        The effect is ``AbolishPipelineRun``'s (run and running stage ``Termination``), but it is no
        API call (not in :meth:`calls`); the record's ``abolished_by`` is ``"console"``.
        """
        record: dict[str, Any] = self._control("console_abolish", {"run_id": run_id})
        return record

    # --- the STS stand-in (see :mod:`.sts`) -------------------------------------------------------

    @property
    def sts_endpoint(self) -> str:
        """What a connection's ``sts_endpoint`` extra takes to send its STS calls here."""
        return self.url

    def sts_state(self) -> dict[str, Any]:
        """Return ``issued`` (credentials handed out) and ``calls`` per STS action since the last reset."""
        state: dict[str, Any] = self._control("sts")
        return state

    def set_sts_lifetime(self, seconds: float | None) -> None:
        """Make credentials issued from now on expire ``seconds`` after issue (``None``: as requested)."""
        self._control("sts_settings", {"lifetime_seconds": seconds})

    def add_data_quality_task(
        self,
        project_id: int,
        task_id: int,
        rules: Iterable[Mapping[str, Any]],
        name: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Add (or replace) a Data Quality evaluation task whose rules pass, warn or fail as seeded.

        :param rules: seed-file rules (see :mod:`.data_quality`): ``id``, ``name``, ``outcome``
            (``Passed``/``Warned``/``Critical``/``Error``), ``checked_value``, ``critical``/``warned``/``expected``.
        :param seconds: how long an instance runs; ``None``: the emulator's stage time.
        """
        self._control(
            "add_data_quality_task",
            {"id": task_id, "project_id": project_id, "name": name, "rules": list(rules), "seconds": seconds},
        )

    def data_quality_instances(self) -> list[dict[str, Any]]:
        """Every Data Quality evaluation task instance started so far."""
        records: list[dict[str, Any]] = self._control("data_quality_instances")
        return records

    def set_stage_seconds(self, seconds: float) -> None:
        """Change how long stages started from now on take."""
        self._control("settings", {"stage_seconds": seconds})
        self.stage_seconds = seconds

    def set_init_seconds(self, seconds: float) -> None:
        """Change how long runs created from now on report ``Init``."""
        self._control("settings", {"init_seconds": seconds})
        self.init_seconds = seconds

    def set_list_stages(self, shape: str) -> None:
        """Make ``ListPipelineRuns`` rows carry ``"full"`` stages, ``"missing"`` (no key) or ``"empty"`` (``[]``)."""
        self._control("settings", {"list_stages": shape})
        self.list_stages = shape

    def set_description_limit(self, limit: int | None) -> None:
        """Keep only the first ``limit`` characters of the descriptions of runs created from now on."""
        self._control("settings", {"description_limit": limit})
        self.description_limit = limit

    def set_max_page_size(self, size: int | None) -> None:
        """Serve at most ``size`` rows a page of ``ListPipelineRuns``/``ListPipelineRunItems`` (``None``: as asked)."""
        self._control("settings", {"max_page_size": size})
        self.max_page_size = size

    def set_quota(
        self, read_qps: float | None = None, write_qps: float | None = None, qps: float | None = None
    ) -> None:
        """Enforce (or, with ``None``, lift) a read, a write and an all-calls quota from now on."""
        self._control("quota", {"read_qps": read_qps, "write_qps": write_qps, "qps": qps})
        self.read_qps, self.write_qps, self.qps = read_qps, write_qps, qps

    def quota_counts(self) -> list[dict[str, int]]:
        """Reads and writes admitted and calls throttled, per second of the emulator's clock."""
        counts: list[dict[str, int]] = self._control("quota_counts")
        return counts

    def quota_report(self, skip_first: float = 0.0) -> dict[str, Any]:
        """The calls the quota admitted and throttled, the 429s' share, the peak and average second.

        :param skip_first: seconds at the start left out of the peak (see :func:`.quota.summarize`).
        """
        return summarize(self.quota_counts(), skip_first=skip_first)

    def reset(self) -> None:
        """Return to the seed: no runs, seed objects, no faults, empty call log, initial settings."""
        self._control("reset")
        if isinstance(self._backend, _Remote):
            self._load_info()
