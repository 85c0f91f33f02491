"""Per-client limit on report submissions over HTTP: a token bucket per client network, shared by every process.

``POST /api/v1/reports`` is open to the internet; one client must not be able to fill the raw store or the
parsers' queue. Each client gets ``intake.api_submissions_burst`` submissions at once and then
``intake.api_submissions_per_minute`` per minute; past that the answer is 429 with ``Retry-After`` and nothing
is stored (a well-behaved reporter retries; the REST door is retry-safe by report id).

The client is the peer address as the server hands it over. Proxy headers are uvicorn's job, set from
``intake.api_trusted_proxies`` (:func:`uvicorn_config`): with the setting empty no ``X-Forwarded-For`` is believed
(uvicorn's own default trusts loopback, which let a rotating header through the limit; issue 10), with proxies
listed uvicorn replaces the peer by the right-most address that is not one of them. IPv6 clients are counted per
/64, since one host usually holds a whole /64 and could otherwise rotate addresses.

The buckets live where ``intake.api_rate_limit_store`` says: ``database`` (default; one row per client, taken
under a row lock, so several ``serve`` processes on one database share the limit), ``redis`` (one atomic script
per request at ``intake.api_rate_limit_redis_url``), or ``memory`` (this process only; for tests and one-process
deployments).
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import Table, delete

from abusedesk.domain.errors import ConfigError, RateLimited
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import ApiRateBucketRow
from abusedesk.store.upsert import insert_ignore

MAX_CLIENTS = 100_000
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_BUCKETS: Table = ApiRateBucketRow.__table__  # type: ignore[assignment]


def trusted_networks(values: Iterable[str]) -> list[_Network]:
    """``intake.api_trusted_proxies`` as networks; a ConfigError names a bad one."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"intake.api_trusted_proxies: {value!r} is not an address or network") from None
    return out


def uvicorn_config(rt: Runtime, app: Any, *, host: str, port: int, **kwargs: Any) -> Any:
    """A ``uvicorn.Config`` whose proxy-header handling trusts exactly ``intake.api_trusted_proxies``."""
    import uvicorn

    proxies = [str(n) for n in trusted_networks(rt.settings.intake.api_trusted_proxies)]
    return uvicorn.Config(app, host=host, port=port, proxy_headers=bool(proxies), forwarded_allow_ips=proxies, **kwargs)


class BucketStore(Protocol):
    def take(self, client: str, now: float, rate: float, burst: float) -> float | None:
        """Take one token for ``client``: None when taken, else the tokens it has (< 1)."""


def _refill(tokens: float, at: float, now: float, rate: float, burst: float) -> float:
    return min(burst, tokens + max(0.0, now - at) * rate)


class MemoryBuckets:
    """This process's buckets for the most recent 100,000 clients."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str, now: float, rate: float, burst: float) -> float | None:
        with self._lock:
            tokens, at = self._buckets.pop(client, (burst, now))
            tokens = _refill(tokens, at, now, rate, burst)
            taken = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if taken else tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return None if taken else tokens


class DatabaseBuckets:
    """One row per client in ``api_rate_buckets``, read and written under its row lock in one short transaction."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._calls = 0

    def take(self, client: str, now: float, rate: float, burst: float) -> float | None:
        with self.rt.sessions.begin() as s:
            insert_ignore(s, _BUCKETS, [{"client": client, "tokens": burst, "at": now}])
            row = s.get(ApiRateBucketRow, client, with_for_update=True)
            assert row is not None
            tokens = _refill(row.tokens, row.at, now, rate, burst)
            taken = tokens >= 1.0
            row.tokens, row.at = (tokens - 1.0 if taken else tokens), now
            self._calls += 1
            if self._calls % 1000 == 0 and rate > 0:  # a full bucket says nothing: forget clients quiet that long
                s.execute(delete(ApiRateBucketRow).where(ApiRateBucketRow.at < now - burst / rate))
        return None if taken else tokens


_REDIS_TAKE = """
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local taken = 0
if tokens >= 1 then tokens = tokens - 1; taken = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / math.max(rate, 0.000001)) + 60)
if taken == 1 then return 'taken' end
return tostring(tokens)
"""


class RedisBuckets:
    """One hash per client in Redis, taken by one server-side script (atomic across every process)."""

    def __init__(self, url: str, prefix: str = "abusedesk:ratelimit:") -> None:
        import redis

        self.prefix = prefix
        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(_REDIS_TAKE)

    def take(self, client: str, now: float, rate: float, burst: float) -> float | None:
        try:
            left = self.script(keys=[f"{self.prefix}{client}"], args=[now, rate, burst])
        except OSError as exc:  # pragma: no cover - redis wraps these; kept for a clear message
            raise ConfigError(f"intake.api_rate_limit_redis_url: Redis is not reachable: {exc}") from None
        return None if left == b"taken" else float(left)


def bucket_store(rt: Runtime) -> BucketStore:
    kind = rt.settings.intake.api_rate_limit_store
    if kind == "redis":
        return RedisBuckets(rt.settings.intake.api_rate_limit_redis_url, rt.settings.intake.api_rate_limit_redis_prefix)
    if kind == "memory":
        return MemoryBuckets()
    return DatabaseBuckets(rt)


class ClientLimiter:
    """Token buckets keyed by client (network, or any key the caller names); times from the runtime's clock.

    ``rate`` is tokens per second (0 turns the limit off), ``burst`` the bucket size; ``what`` names the limit in
    the refusal ("reports", "sign-in attempts") and ``setting`` the setting that sets it. ``namespace`` keeps the
    buckets of two limits apart in one store."""

    def __init__(
        self,
        rt: Runtime,
        *,
        rate: float,
        burst: int,
        what: str,
        setting: str,
        namespace: str = "",
        store: BucketStore | None = None,
    ) -> None:
        self.rt = rt
        self.rate = rate
        self.burst = max(1, burst)
        self.what, self.setting, self.namespace = what, setting, namespace
        trusted_networks(rt.settings.intake.api_trusted_proxies)  # a bad setting stops start-up, naming the value
        self.store = store or bucket_store(rt)

    def client(self, peer: str | None) -> str:
        """The key a request is counted under (see the module text)."""
        address = _address(peer)
        if address is None:
            return peer or "unknown"
        if address.version == 6:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)

    def check(self, client: str) -> None:
        """Take one token for ``client`` or raise RateLimited with the seconds until there is one."""
        if self.rate <= 0:
            return
        key = f"{self.namespace}{client}"
        tokens = self.store.take(key, self.rt.clock.now().timestamp(), self.rate, float(self.burst))
        if tokens is None:
            return
        wait = max(1, int((1.0 - tokens) / self.rate + 0.999))
        raise RateLimited(
            f"too many {self.what} from {client}: at most {self.burst} at once and "
            f"{self.rate * 60:g} a minute (setting {self.setting}); retry in {wait} s",
            retry_after=wait,
        )


class SubmissionLimiter(ClientLimiter):
    """Report submissions over HTTP (``intake.api_submissions_*``)."""

    def __init__(self, rt: Runtime, store: BucketStore | None = None) -> None:
        cfg = rt.settings.intake
        super().__init__(
            rt, rate=cfg.api_submissions_per_minute / 60.0, burst=cfg.api_submissions_burst, what="reports",
            setting="intake.api_submissions_per_minute", store=store,
        )  # fmt: skip


def _address(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
