"""One Alibaba Cloud credential provider per connection per process, refreshed off the event loop.

Role-based modes (``ram_role_arn``, ``oidc_role_arn``, ``ecs_ram_role``, ``credentials_uri``,
``default_chain``) fetch temporary credentials from STS or a metadata endpoint. Built per hook,
every trigger of a restarted triggerer would fetch its own: hundreds of ``AssumeRole`` calls at
once, throttled. Here every hook and trigger of one connection (keyed by its credential
settings, so a rotated secret gets a new provider) shares one provider, so one fetch serves all.

The credentials library's async path takes a ``threading.Lock`` and makes the STS request
itself; on the triggerer's event loop that lock can stall every trigger. So the async path here
never calls into the library while the cached credentials are fresh, and otherwise runs the
library's *blocking* fetch on a small thread pool, with one fetch in flight per event loop that
every waiting coroutine shares. After a failed fetch the next one waits
:data:`FAILED_FETCH_SPACING_SECONDS`, so hundreds of triggers retrying a throttled STS make one
call a second, not hundreds. Only this bookkeeping is hand-written: the library offers no way to
ask whether its cache is fresh without possibly refreshing it, nor to share one fetch between
coroutines without its lock.

Errors are the library's own (``CredentialException`` …); :mod:`.errors` turns throttling,
5xx and connection failures among them into transient errors that the hook's retry policy
retries like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow_provider_dataworks.hooks.errors import CREDENTIALS_UNREACHABLE, redact_credentials

if TYPE_CHECKING:
    from airflow_provider_dataworks.hooks.settings import ConnectionSettings

#: refresh this long before the credentials expire (the library's own stale margin)
REFRESH_MARGIN_SECONDS = 15 * 60
#: after a failed fetch, the async path waits this long before fetching again
FAILED_FETCH_SPACING_SECONDS = 1.0
#: threads that fetch credentials (fetches are rare: one per provider per expiry)
FETCH_THREADS = 4
DEFAULT_ROLE_SESSION_NAME = "airflow-dataworks"

_providers: dict[str, SharedCredentialsProvider] = {}
_providers_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _fetch_executor() -> ThreadPoolExecutor:
    global _executor
    with _providers_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="dataworks-credentials")
        return _executor


class SharedCredentialsProvider:
    """An ``ICredentialsProvider`` in front of the library's provider for one connection.

    :param inner: the library's provider (it caches and refreshes by itself, under its lock).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._cached: Any = None
        self._fresh_until = 0.0
        self._pending: dict[asyncio.AbstractEventLoop, asyncio.Future[Any]] = {}
        self._failed_at = -FAILED_FETCH_SPACING_SECONDS
        # for tests and logs: how often the library was asked (each may or may not fetch)
        self.fetches = 0

    def get_provider_name(self) -> str:
        return str(self.inner.get_provider_name())

    def get_credentials(self) -> Any:
        """Blocking: return credentials, letting the library refresh them if they are stale."""
        from alibabacloud_credentials.exceptions import CredentialException

        self.fetches += 1
        try:
            credentials = self.inner.get_credentials()
        except CredentialException:
            self._failed_at = time.monotonic()
            raise
        except Exception as err:
            self._failed_at = time.monotonic()
            # e.g. Tea's RetryError when STS is unreachable: marked as a credential failure, so it
            # is not mistaken for a DataWorks request that may have been sent. Its text holds the
            # signed STS query (SecurityToken, OIDCToken): redacted, and the original is not chained.
            message = redact_credentials(f"{type(err).__name__}: {err}")
            raise CredentialException(message, code=CREDENTIALS_UNREACHABLE) from None
        expiration = credentials.get_expiration()
        self._cached = credentials
        self._fresh_until = float("inf") if expiration is None else float(expiration) - REFRESH_MARGIN_SECONDS
        return credentials

    async def get_credentials_async(self) -> Any:
        """Return credentials without blocking the loop: cached, or one shared fetch on a thread."""
        if self._cached is not None and time.time() < self._fresh_until:
            return self._cached
        loop = asyncio.get_running_loop()
        pending = self._pending.get(loop)
        if pending is None:
            spacing = self._failed_at + FAILED_FETCH_SPACING_SECONDS - time.monotonic()
            if spacing > 0:
                await asyncio.sleep(spacing)
                return await self.get_credentials_async()  # another waiter may have fetched meanwhile
            pending = loop.run_in_executor(_fetch_executor(), self.get_credentials)
            self._pending[loop] = pending
            pending.add_done_callback(lambda _: self._pending.pop(loop, None))
        # shield: one waiter being cancelled (a trigger killed) must not cancel the others' fetch
        return await asyncio.shield(pending)


def _fingerprint(settings: ConnectionSettings) -> str:
    fields = (
        settings.conn_id,
        settings.auth_type,
        settings.access_key_id,
        settings.access_key_secret,
        settings.security_token,
        settings.role_arn,
        settings.role_session_name,
        settings.external_id,
        settings.sts_endpoint,
        settings.role_name,
        settings.oidc_provider_arn,
        settings.oidc_token_file_path,
        settings.credentials_uri,
    )
    # hashed: the registry's keys never hold a secret in clear
    return hashlib.sha256(repr(fields).encode()).hexdigest()


def shared_provider(settings: ConnectionSettings) -> SharedCredentialsProvider:
    """Return this process's provider for the connection's credential settings (blocking: builds it)."""
    key = _fingerprint(settings)
    with _providers_lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _providers[key] = SharedCredentialsProvider(_library_provider(settings))
        return provider


def credential_client(settings: ConnectionSettings) -> Any:
    """Return a credentials ``Client`` for the SDK's ``Config(credential=...)``, over the shared provider."""
    from alibabacloud_credentials.client import Client as CredentialClient

    return CredentialClient(provider=shared_provider(settings))


def forget_providers() -> None:
    """Drop every shared provider (tests; a process that rotated every connection)."""
    with _providers_lock:
        _providers.clear()


class _RedactingFilter(logging.Filter):
    """Redact signed STS queries in what the credentials library logs (it logs failed fetches with tracebacks)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            # rendered here and dropped: some handlers (structlog's) render exc_info themselves
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = redact_credentials(message), None
        return True


_redacting_filter = _RedactingFilter()


def _library_provider(settings: ConnectionSettings) -> Any:
    from alibabacloud_credentials import provider as providers

    # the library's logger ("credentials"); adding the same filter twice is a no-op
    logging.getLogger("credentials").addFilter(_redacting_filter)

    def given(**fields: Any) -> dict[str, Any]:
        return {name: value for name, value in fields.items() if value is not None}

    session_name = settings.role_session_name or DEFAULT_ROLE_SESSION_NAME
    if settings.auth_type == "default_chain":
        return providers.DefaultCredentialsProvider()
    if settings.auth_type == "ram_role_arn":
        return providers.RamRoleArnCredentialsProvider(
            **given(
                access_key_id=settings.access_key_id,
                access_key_secret=settings.access_key_secret,
                security_token=settings.security_token,
                role_arn=settings.role_arn,
                role_session_name=session_name,
                external_id=settings.external_id,
                sts_endpoint=settings.sts_endpoint,
            )
        )
    if settings.auth_type == "oidc_role_arn":
        return providers.OIDCRoleArnCredentialsProvider(
            **given(
                role_arn=settings.role_arn,
                oidc_provider_arn=settings.oidc_provider_arn,
                oidc_token_file_path=settings.oidc_token_file_path,
                role_session_name=session_name,
                sts_endpoint=settings.sts_endpoint,
            )
        )
    if settings.auth_type == "ecs_ram_role":
        return providers.EcsRamRoleCredentialsProvider(**given(role_name=settings.role_name))
    if settings.auth_type == "credentials_uri":
        return providers.URLCredentialsProvider(**given(uri=settings.credentials_uri))
    raise ValueError(f"Connection {settings.conn_id!r}: auth type {settings.auth_type!r} takes no credential provider.")
