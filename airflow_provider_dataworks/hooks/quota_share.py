"""The account's request budget, shared by every process of the deployment through Redis.

DataWorks counts calls per account and region, whichever process makes them; a budget kept in
each process lets two triggerers and four task processes at the default 3 + 2 QPS make 30 calls
a second against a quota of 5. When ``[dataworks] quota_store`` names a Redis (its URL, or
``celery`` for the Redis that Celery already uses as its broker), every bucket of
:mod:`.budget` keeps its state there instead: the same pacing and the same back-off (see
:class:`~.budget.TokenBucket`), but one bucket per account, region and kind for the whole
deployment, so ``read_qps``/``write_qps`` are the account's rates.

Each slot costs one Redis round trip: a Lua script reads the bucket, takes the next start time
and writes it back atomically, on Redis's clock, so the hosts' clocks need not agree. Airflow 3
gives task code and triggers no metadata-database access, which is why the store is Redis and
not the database; any executor works, as long as every component reaches the Redis.

When the Redis cannot be reached (or answers an error), the bucket falls back to its process's
own :class:`~.budget.TokenBucket` at the same rates for :data:`RETRY_STORE_AFTER_SECONDS`,
then tries the Redis again: the deployment keeps deploying, and DataWorks' ``429`` answers
slow the processes down as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow_provider_dataworks.hooks.budget import TokenBucket

log = logging.getLogger(__name__)

#: the Airflow configuration option naming the store (``AIRFLOW__DATAWORKS__QUOTA_STORE``)
CONFIG_SECTION, CONFIG_OPTION = "dataworks", "quota_store"
#: the option of the account's quota for all calls together (``AIRFLOW__DATAWORKS__ACCOUNT_QPS``)
ACCOUNT_QPS_OPTION = "account_qps"
#: the kind of the one bucket every call takes its slot from when ``account_qps`` is set
ALL = "all"
#: the value meaning "the Redis of ``[celery] broker_url``"
CELERY_BROKER = "celery"
#: URL schemes redis-py connects with
REDIS_SCHEMES = ("redis", "rediss", "unix")
#: how long a bucket uses its process's own budget after the Redis failed, seconds
RETRY_STORE_AFTER_SECONDS = 30.0
#: Redis socket timeouts, seconds: a slot must not wait long on a Redis that does not answer, but a
#: busy host's live Redis may take longer than half a second, and each fallback loosens the budget
SOCKET_TIMEOUT_SECONDS = 2.0
#: the share of the configured rate a shared bucket paces at: below the per-process bucket's
#: budget.HEADROOM, because the slots of many processes reach DataWorks over different paths and
#: delays, so more of them land in a neighbouring one-second window than one process's do
SHARED_HEADROOM = 0.8
#: a bucket nobody used for this long is forgotten by Redis, seconds
IDLE_EXPIRY_SECONDS = 3600
KEY_PREFIX = "airflow-provider-dataworks:budget"

# The bucket of budget.TokenBucket, in Lua so that Redis runs it atomically. KEYS[1]: the bucket's
# hash. ARGV: operation (reserve | throttled), configured qps, headroom, minimum rate fraction,
# recovery per second, retry-after hint (0: none), maximum hold, idle expiry. Returns the
# seconds to wait (reserve) or the new rate (throttled), as a string (Lua numbers would be
# truncated to integers).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local op, qps = ARGV[1], tonumber(ARGV[2])
local headroom, min_fraction, recovery = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local retry_after, max_hold, expiry = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local h = redis.call('HMGET', KEYS[1], 'next_free', 'rate', 'held_until', 'last_decrease', 'last_update', 'qps')
local next_free = tonumber(h[1]) or 0
local rate = tonumber(h[2]) or qps
local held_until = tonumber(h[3]) or 0
local last_decrease = tonumber(h[4]) or 0
local last_update = tonumber(h[5]) or now
local old_qps = tonumber(h[6]) or qps
if qps ~= old_qps then
  if qps < old_qps or now - last_decrease < 10 then rate = math.min(rate, qps) else rate = qps end
end
if rate < qps and now > held_until then
  rate = math.min(qps, rate + qps * recovery * (now - last_update))
end
local result
if op == 'reserve' then
  local start = math.max(now, next_free, held_until)
  next_free = start + 1 / (rate * headroom)
  result = start - now
else
  if now - last_decrease >= 1 then
    rate = math.max(qps * min_fraction, rate / 2)
    last_decrease = now
  end
  local hold = 1 / rate
  if retry_after > 0 then hold = math.min(retry_after, max_hold) end
  held_until = math.max(held_until, now + hold)
  next_free = math.max(next_free, held_until)
  result = rate
end
redis.call('HSET', KEYS[1], 'next_free', string.format('%.6f', next_free), 'rate', string.format('%.6f', rate),
  'held_until', string.format('%.6f', held_until), 'last_decrease', string.format('%.6f', last_decrease),
  'last_update', string.format('%.6f', now), 'qps', string.format('%.6f', qps))
redis.call('EXPIRE', KEYS[1], expiry)
return string.format('%.6f', result)
"""


def configured_store_url() -> str | None:
    """Return the Redis URL of ``[dataworks] quota_store`` (``None``: not set), or raise naming the option.

    ``celery`` resolves to ``[celery] broker_url``, which must then be a Redis URL.
    """
    from airflow.configuration import conf

    value = (conf.get(CONFIG_SECTION, CONFIG_OPTION, fallback="") or "").strip()
    if not value:
        return None
    option = f"[{CONFIG_SECTION}] {CONFIG_OPTION}"
    if value.lower() == CELERY_BROKER:
        value = (conf.get("celery", "broker_url", fallback="") or "").strip()
        option = f"[{CONFIG_SECTION}] {CONFIG_OPTION} = {CELERY_BROKER} ([celery] broker_url)"
    scheme = urlsplit(value).scheme.lower()
    if scheme not in REDIS_SCHEMES:
        # the URL may carry a password: name the scheme only
        raise ValueError(
            f"{option} must be a Redis URL ({', '.join(s + '://' for s in REDIS_SCHEMES)}) or "
            f"{CELERY_BROKER!r} for a Redis Celery broker; got a {scheme or 'schemeless'!r} value."
        )
    return value


def configured_account_qps() -> float | None:
    """Return ``[dataworks] account_qps`` (``None``: not set), or raise naming the option.

    The quota of the Basic, Standard and Professional editions is for all calls together (5 a
    second); with this set, reads and writes take their slots from one bucket at this rate instead
    of a read and a write bucket, so no mix of calls leaves part of the quota unused.
    """
    from airflow.configuration import conf

    raw = (conf.get(CONFIG_SECTION, ACCOUNT_QPS_OPTION, fallback="") or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(
            f"[{CONFIG_SECTION}] {ACCOUNT_QPS_OPTION} must be a number of calls per second greater than 0, got {raw!r}."
        )
    return value


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:
        raise ImportError(
            f"[{CONFIG_SECTION}] {CONFIG_OPTION} is set, but the redis package is not installed: "
            "pip install 'airflow-provider-dataworks[shared-quota]'."
        ) from None
    return redis


class QuotaStore:
    """One Redis holding the buckets of every process (its clients are made on first use).

    :param url: the Redis URL (never logged: it may carry a password).
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._client: Any = None
        self._script: Any = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._down_until = 0.0
        #: store failures seen (each sends its buckets to the process's own budget for a while)
        self.failures = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(redis)"

    def _options(self) -> dict[str, Any]:
        return {"socket_timeout": SOCKET_TIMEOUT_SECONDS, "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS}

    def _sync_script(self) -> Any:
        with self._lock:
            if self._script is None:
                self._client = _redis_module().Redis.from_url(self._url, **self._options())
                self._script = self._client.register_script(_SCRIPT)
            return self._script

    def _async_script(self) -> Any:
        loop = asyncio.get_running_loop()
        with self._lock:
            script = self._async.get(loop)
            if script is None:
                client = _redis_module().asyncio.Redis.from_url(self._url, **self._options())
                script = self._async[loop] = client.register_script(_SCRIPT)
            return script

    @property
    def available(self) -> bool:
        """False for a while after a failure: buckets use their process's own budget meanwhile."""
        return time.monotonic() >= self._down_until

    def _failed(self, err: Exception) -> None:
        self.failures += 1
        self._down_until = time.monotonic() + RETRY_STORE_AFTER_SECONDS
        # the error's text may quote the URL; its type is enough to act on
        log.warning(
            "The shared DataWorks request budget's Redis failed (%s); this process paces its calls by its own "
            "budget for %.0f s.",
            type(err).__name__,
            RETRY_STORE_AFTER_SECONDS,
        )

    def run(self, key: str, args: list[Any]) -> float | None:
        """Run the bucket script (blocking); ``None`` when the store failed."""
        try:
            return float(self._sync_script()(keys=[key], args=args))
        except Exception as err:  # any Redis or connection error: fall back, never fail the call
            self._failed(err)
            return None

    async def run_async(self, key: str, args: list[Any]) -> float | None:
        """Run the bucket script on the event loop; ``None`` when the store failed."""
        try:
            return float(await self._async_script()(keys=[key], args=args))
        except Exception as err:  # any Redis or connection error: fall back, never fail the call
            self._failed(err)
            return None


class SharedTokenBucket:
    """A :class:`~.budget.TokenBucket` whose state lives in the store, for every process at once.

    :param store: the Redis holding it.
    :param key: the bucket's Redis key.
    :param local: this process's own bucket, used while the store fails.
    """

    def __init__(self, store: QuotaStore, key: str, local: TokenBucket) -> None:
        self.store = store
        self.key = key
        self.local = local
        self.throttled_count = 0

    @property
    def qps(self) -> float:
        return self.local.qps

    @property
    def rate(self) -> float:
        """The process's own rate (the shared one lives in the store)."""
        return self.local.rate

    def configure(self, qps: float) -> None:
        """Take the configured rate of the connection read last; the store's bucket follows on the next slot."""
        self.local.configure(qps)

    def _args(self, operation: str, retry_after: float | None = None) -> list[Any]:
        from airflow_provider_dataworks.hooks import budget

        hint = retry_after if retry_after and retry_after > 0 else 0.0
        return [
            operation,
            repr(self.local.qps),
            repr(SHARED_HEADROOM),
            repr(budget.MIN_RATE_FRACTION),
            repr(budget.RECOVERY_PER_SECOND),
            repr(hint),
            repr(budget.MAX_HOLD_SECONDS),
            IDLE_EXPIRY_SECONDS,
        ]

    def reserve(self) -> float:
        """Take the account's next slot; return how many seconds to wait before making the call."""
        if self.store.available:
            delay = self.store.run(self.key, self._args("reserve"))
            if delay is not None:
                return delay
        return self.local.reserve()

    async def reserve_async(self) -> float:
        """:meth:`reserve` without blocking the event loop."""
        if self.store.available:
            delay = await self.store.run_async(self.key, self._args("reserve"))
            if delay is not None:
                return delay
        return self.local.reserve()

    def throttled(self, retry_after: float | None = None) -> None:
        """DataWorks throttled a call: slow the account's bucket down (and the process's own)."""
        self.throttled_count += 1
        self.local.throttled(retry_after)
        if not self.store.available:
            return
        args = self._args("throttled", retry_after)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.store.run(self.key, args)
            return
        # on an event loop (a trigger): tell the store without blocking the loop
        task = loop.create_task(self.store.run_async(self.key, args))
        _pending.add(task)
        task.add_done_callback(_pending.discard)


#: store updates scheduled on an event loop, kept until done (the loop holds tasks weakly)
_pending: set[asyncio.Task[float | None]] = set()


def bucket_key(identity: str, region: str, kind: str) -> str:
    """The Redis key of one bucket; the identity is hashed, so no AccessKey ID is stored in clear."""
    digest = hashlib.sha256(f"{identity}\0{region}".encode()).hexdigest()[:24]
    return f"{KEY_PREFIX}:{digest}:{kind}"
