"""Per-client limit on report submissions over HTTP: a token bucket per client network.

``POST /api/v1/reports`` is open to the internet; one client must not be able to fill the raw store or the
parsers' queue. Each client gets ``intake.api_submissions_burst`` submissions at once and then
``intake.api_submissions_per_minute`` per minute; past that the answer is 429 with ``Retry-After`` and nothing
is stored (a well-behaved reporter retries; the REST door is retry-safe by report id).

The client is the peer address, or, when the peer is one of ``intake.api_trusted_proxies`` (addresses or
networks), the right-most address of ``X-Forwarded-For`` that is not a trusted proxy. IPv6 clients are counted
per /64, since one host usually holds a whole /64 and could otherwise rotate addresses. Buckets are kept for the
most recent 100,000 clients of this process (a ``serve`` process limits its own traffic; behind several processes
each keeps its own count).
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from collections.abc import Iterable

from abusedesk.domain.errors import ConfigError, RateLimited
from abusedesk.runtime import Runtime

MAX_CLIENTS = 100_000
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(values: Iterable[str]) -> list[_Network]:
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"intake.api_trusted_proxies: {value!r} is not an address or network") from None
    return out


class SubmissionLimiter:
    """Token buckets keyed by client network; times from the runtime's clock."""

    def __init__(self, rt: Runtime) -> None:
        cfg = rt.settings.intake
        self.rt = rt
        self.rate = cfg.api_submissions_per_minute / 60.0  # tokens per second; 0 turns the limit off
        self.burst = max(1, cfg.api_submissions_burst)
        self.proxies = _networks(cfg.api_trusted_proxies)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The key a submission is counted under (see the module text)."""
        address = _address(peer)
        if address is not None and forwarded_for and self._trusted(address):
            for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
                hop_address = _address(hop)
                if hop_address is None:
                    break  # a malformed hop: count the request under the last address we could trust
                address = hop_address
                if not self._trusted(hop_address):
                    break
        if address is None:
            return peer or "unknown"
        if address.version == 6:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)

    def _trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in net for net in self.proxies if net.version == address.version)

    def check(self, client: str) -> None:
        """Take one token for ``client`` or raise RateLimited with the seconds until there is one."""
        if self.rate <= 0:
            return
        now = self.rt.clock.now().timestamp()
        with self._lock:
            tokens, at = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                wait = max(1, int((1.0 - tokens) / self.rate + 0.999))
                raise RateLimited(
                    f"too many reports from {client}: at most {self.burst} at once and "
                    f"{self.rate * 60:g} a minute (setting intake.api_submissions_per_minute); retry in {wait} s",
                    retry_after=wait,
                )
            self._buckets[client] = (tokens - 1.0, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)


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
