"""A shared-session HTTP transport for the SDK's async calls, used only by this provider's hook.

Why: the SDK's ``*_async`` methods send every request through
``darabonba.core.DaraCore.async_do_action``, which builds a new SSL context (50–70 ms of CPU
with OpenSSL 3.0), a new aiohttp session and a new TCP connection per call. A triggerer
polling a thousand runs through it collapses (see ``benchmarks/RESULTS.md``).

What: :func:`install` wraps that one static method. The wrapper looks at a context variable
that :func:`shared_transport` sets only around the hook's own calls; everywhere else —
another Alibaba SDK client in the same triggerer — it calls the original unchanged. For our
calls it sends the request the SDK already built and signed through one ``aiohttp``
session per event loop and TLS setting, whose SSL context is built once, and fills the
SDK's ``DaraResponse`` as the original does (transport failures become the SDK's
``RetryError``, so the SDK's error handling and ours see exactly what they see today).

It honours what the hook's configuration can set: ``ca``, ``ignoreSSL``, ``cert``,
``tlsMinVersion``, the connect/read timeouts and the ``HTTP(S)_PROXY`` variables (like the
SDK, which sends even loopback calls through them). On a darabonba-core release this wrapper was
not checked against (:data:`VERIFIED_CORE`), or if ``async_do_action`` ever stops having the
signature this wraps, :func:`install` returns ``False`` and the hook runs the sync SDK on its
thread pool instead: the same answers for about twice the CPU per call. That gate is at run time,
not a pin in the package's requirements, so a newer SDK that needs a newer darabonba-core installs
beside the provider (the decision and its figures: ``benchmarks/RESULTS.md`` §5).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import inspect
import logging
import os
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion

if TYPE_CHECKING:
    import aiohttp


log = logging.getLogger(__name__)

#: read/connect timeouts when the runtime options carry none (the SDK's own defaults, ms)
_DEFAULT_CONNECT_MS = 5000
_DEFAULT_READ_MS = 10000
#: keep idle connections longer than the usual 10-30 s poll interval
_KEEPALIVE_SECONDS = 75.0
#: connections per event loop and TLS setting; more concurrent calls wait for a free one
_MAX_CONNECTIONS = 64

#: the exact parameters of ``DaraCore.async_do_action`` this wraps (darabonba-core 1.0.x)
_EXPECTED_PARAMETERS = ("request", "runtime_option")
#: the darabonba-core releases whose ``async_do_action`` and ``DaraResponse`` this wrapper was
#: checked against (tests/hooks/test_transport_contract.py); on any other, SDK threads
VERIFIED_CORE = SpecifierSet(">=1.0.0,<1.1")
#: ``tlsMinVersion`` runtime values -> ssl versions (what the SDK accepts)
_TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}

_active: ContextVar[bool] = ContextVar("airflow_provider_dataworks_shared_transport", default=False)
_install_lock = threading.Lock()
_installed: bool | None = None
_original: Any = None
# one dict of sessions per event loop; a closed loop's sessions go with it
# (aiohttp is imported on first use: the hook module is imported by every DAG file parse)
_sessions: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[dict[tuple[Any, ...], aiohttp.ClientSession], AsyncGenerator[None, None]]
] = weakref.WeakKeyDictionary()
_ssl_contexts: dict[tuple[Any, ...], ssl.SSLContext] = {}
_ssl_lock = threading.Lock()


def install() -> bool:
    """Wrap ``DaraCore.async_do_action`` once (imports the SDK core); return whether it is in place."""
    global _installed, _original
    with _install_lock:
        if _installed is not None:
            return _installed
        try:
            from darabonba.core import DaraCore

            core = importlib.metadata.version("darabonba-core")
            if not core_verified(core):
                log.info(
                    "DataWorks: darabonba-core %s is not a release the shared-session transport was checked "
                    "against (%s); using SDK threads.",
                    core,
                    VERIFIED_CORE,
                )
                _installed = False
                return False
            original = DaraCore.async_do_action
            if not signature_supported(original):
                parameters = list(inspect.signature(original).parameters)
                raise TypeError(f"unexpected signature {parameters}, expected {list(_EXPECTED_PARAMETERS)}")
        except (ImportError, AttributeError, TypeError, ValueError) as err:
            log.warning("DataWorks: the shared-session transport is unavailable (%s); using SDK threads.", err)
            _installed = False
            return False

        async def async_do_action(request: Any, runtime_option: Any = None, *args: Any, **kwargs: Any) -> Any:
            # Anything this wrapper does not know (a future argument) goes to the original untouched.
            if not _active.get() or args or kwargs:
                return await original(request, runtime_option, *args, **kwargs)
            return await _send(request, runtime_option or {})

        _original = original
        DaraCore.async_do_action = staticmethod(async_do_action)  # type: ignore[method-assign]
        _installed = True
        return True


def core_verified(version: str) -> bool:
    """Whether darabonba-core ``version`` is one this wrapper was checked against (:data:`VERIFIED_CORE`)."""
    try:
        return VERIFIED_CORE.contains(version, prereleases=True)
    except InvalidVersion:
        return False


def signature_supported(function: Any) -> bool:
    """Whether ``function`` is a coroutine function with exactly the parameters this wraps."""
    try:
        parameters = tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
    return parameters == _EXPECTED_PARAMETERS and inspect.iscoroutinefunction(function)


@contextlib.contextmanager
def shared_transport() -> Iterator[None]:
    """Route the SDK async calls made inside this block (this task only) through the shared sessions."""
    token = _active.set(True)
    try:
        yield
    finally:
        _active.reset(token)


async def close_sessions() -> None:
    """Close the current event loop's shared sessions now (they close anyway when ``asyncio.run`` ends)."""
    entry = _sessions.pop(asyncio.get_running_loop(), None)
    if entry is not None:
        await entry[1].aclose()


def _ssl_context(ca: str | None, cert: Any, tls_min_version: Any) -> ssl.SSLContext:
    key = (ca, tuple(cert) if isinstance(cert, (list, tuple)) else cert, str(tls_min_version))
    with _ssl_lock:
        context = _ssl_contexts.get(key)
        if context is None:
            import certifi

            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            context.load_verify_locations(ca or certifi.where())
            if tls_min_version not in (None, "None"):
                if str(tls_min_version) not in _TLS_VERSIONS:
                    allowed = ", ".join(_TLS_VERSIONS)
                    raise ValueError(f"tlsMinVersion must be one of {allowed}, got {tls_min_version!r}")
                context.minimum_version = _TLS_VERSIONS[str(tls_min_version)]
            if cert is not None:
                certfile, keyfile = (
                    (cert[0], cert[1] if len(cert) > 1 else None) if isinstance(cert, (list, tuple)) else (cert, None)
                )
                context.load_cert_chain(certfile=certfile, keyfile=keyfile)
            _ssl_contexts[key] = context
        return context


async def _close_at_loop_shutdown(sessions: dict[tuple[Any, ...], aiohttp.ClientSession]) -> AsyncGenerator[None, None]:
    """An async generator the loop knows about: ``asyncio.run`` (the triggerer's) closes it at shutdown."""
    try:
        yield
    finally:
        for session in list(sessions.values()):
            await session.close()


async def _session(key: tuple[Any, ...], ssl_option: ssl.SSLContext | bool) -> aiohttp.ClientSession:
    import aiohttp

    loop = asyncio.get_running_loop()
    if loop not in _sessions:
        sessions: dict[tuple[Any, ...], aiohttp.ClientSession] = {}
        closer = _close_at_loop_shutdown(sessions)
        await closer.__anext__()  # registered with the loop from its first step on
        _sessions[loop] = (sessions, closer)  # the reference keeps it from being finalised early
    sessions = _sessions[loop][0]
    session = sessions.get(key)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(ssl=ssl_option, limit=_MAX_CONNECTIONS, keepalive_timeout=_KEEPALIVE_SECONDS)
        session = sessions[key] = aiohttp.ClientSession(connector=connector)
    return session


async def _send(request: Any, runtime: dict[str, Any]) -> Any:
    import aiohttp
    from darabonba.core import DaraCore
    from darabonba.exceptions import RetryError
    from darabonba.response import DaraResponse

    https = request.protocol.upper() == "HTTPS"
    tls_min_version = getattr(runtime.get("tlsMinVersion"), "value", runtime.get("tlsMinVersion"))
    ssl_option: ssl.SSLContext | bool = False
    if https and not runtime.get("ignoreSSL", False):
        ssl_option = _ssl_context(runtime.get("ca"), runtime.get("cert"), tls_min_version)
    elif https:
        ssl_option = False  # ignoreSSL: no verification, as the SDK does
    session = await _session((https, id(ssl_option) if ssl_option else None), ssl_option)

    fallback = runtime.get("timeout")
    connect_ms = runtime.get("connectTimeout") or fallback or _DEFAULT_CONNECT_MS
    read_ms = runtime.get("readTimeout") or fallback or _DEFAULT_READ_MS
    timeout = aiohttp.ClientTimeout(sock_connect=int(connect_ms) / 1000, sock_read=int(read_ms) / 1000)
    if https:
        proxy = runtime.get("httpsProxy") or os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    else:
        proxy = runtime.get("httpProxy") or os.environ.get("HTTP_PROXY") or os.environ.get("http_proxy")

    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif body is not None and not isinstance(body, (bytes, bytearray)):
        body = b"".join(body)  # a stream: the hook never sends one, but stay faithful
    try:
        async with session.request(
            request.method,
            DaraCore.compose_url(request),
            data=body or b"",
            headers=request.headers,
            proxy=proxy or None,
            timeout=timeout,
        ) as response:
            result = DaraResponse()
            result.body = await response.read()
            result.headers = {name.lower(): value for name, value in response.headers.items()}
            result.status_code = response.status
            result.status_message = response.reason
            result.response = response
            return result
    except (OSError, aiohttp.ClientError) as err:
        # What the original raises, so the SDK wraps it into UnretryableException as usual.
        raise RetryError(str(err) or type(err).__name__) from err
