"""MX intelligence: a domain on no list whose mail goes to a disposable provider's mail servers is flagged.

A disposable service registers fresh domains faster than any list follows, but points them at the same mail
servers. So a domain the lists do not name is looked up (MX, through the configured resolver) and flagged when an
MX host

* is, or lies below, a domain a list names (``mx.tempmail.example`` for a listed ``tempmail.example``), or
* is a *known disposable MX host*: named by the operator (``screening.disposable_mx_hosts``) or learned by
  ``abusedesk screen learn-mx``, which resolves the MX of listed domains and keeps the hosts that
  ``screening.mx_min_domains`` or more of them share (table ``disposable_mx_hosts``).

DNS goes only to ``screening.nameservers`` when they are set (tests run their own server on loopback); answers
are cached for their TTL (at most an hour) so a burst of signups from one domain costs one query.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import dns.exception
import dns.nameserver
import dns.resolver

from abusedesk.screening.knowledge import DomainKnowledge, normalise_domain

CACHE_SIZE = 50_000
MAX_TTL = 3600.0
NEGATIVE_TTL = 300.0


def make_resolver(nameservers: Iterable[str], timeout: float) -> dns.resolver.Resolver:
    """A dnspython resolver for ``host`` / ``host:port`` / ``[v6]:port`` servers; none: the system's config."""
    servers = list(nameservers)
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [_nameserver(s) for s in servers]
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def _nameserver(text: str) -> dns.nameserver.Nameserver:
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    return dns.nameserver.Do53Nameserver(host, port)


def mx_hosts(resolver: dns.resolver.Resolver, domain: str) -> tuple[tuple[str, ...], float]:
    """The MX hosts of ``domain`` (lower case, no trailing dot, by preference) and the answer's TTL.

    No MX record, no such domain or no answer in time: no hosts (a negative answer is cached briefly).
    """
    try:
        answer = resolver.resolve(domain, "MX", raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers, dns.exception.Timeout, dns.resolver.NoAnswer):
        return (), NEGATIVE_TTL
    if answer.rrset is None:
        return (), NEGATIVE_TTL
    records = sorted(answer.rrset, key=lambda r: r.preference)
    hosts = tuple(str(r.exchange).lower().rstrip(".") for r in records if str(r.exchange) not in (".", ""))
    return hosts, float(min(answer.rrset.ttl, MAX_TTL))


class MxIntel:
    """Which MX hosts are disposable providers', and the look-up of a domain's MX through one resolver."""

    def __init__(
        self,
        knowledge: DomainKnowledge,
        resolver: dns.resolver.Resolver,
        known_hosts: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.knowledge = knowledge
        self.resolver = resolver
        #: MX host → the listed domains (or "operator") that made it known
        self.known: dict[str, tuple[str, ...]] = {normalise_domain(h): tuple(v) for h, v in (known_hosts or {}).items()}
        digest = hashlib.sha256("\n".join(sorted(self.known)).encode()).hexdigest()[:12]
        self.version = f"{len(self.known)} hosts {digest}"
        self._cache: OrderedDict[str, tuple[float, tuple[str, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, domain: str) -> tuple[str, ...]:
        """The domain's MX hosts, from the cache while its TTL lasts."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(domain)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(domain)
                return hit[1]
        hosts, ttl = mx_hosts(self.resolver, domain)
        with self._lock:
            self._cache[domain] = (now + ttl, hosts)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return hosts

    def disposable_mx(self, domain: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(the domain's MX hosts that are disposable providers', why each is) or None."""
        hosts = self.lookup(domain)
        flagged: list[str] = []
        why: list[str] = []
        for host in hosts:
            known = self.known.get(host)
            if known is not None:
                flagged.append(host)
                why.extend(known[:3])
                continue
            m = self.knowledge.match(host)
            if m is not None and m.operator in (None, "deny"):
                flagged.append(host)
                why.append(m.matched)
        if not flagged:
            return None
        return tuple(flagged), tuple(dict.fromkeys(why))

    def learn(self, domains: Iterable[str], min_domains: int) -> dict[str, list[str]]:
        """MX host → the given (listed) domains that use it, for hosts shared by ``min_domains`` or more."""
        users: dict[str, list[str]] = {}
        for domain in domains:
            for host in self.lookup(domain):
                users.setdefault(host, []).append(domain)
        return {host: sorted(ds) for host, ds in users.items() if len(ds) >= min_domains}
