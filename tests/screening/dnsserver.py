"""A real DNS server on loopback for the tests (dnslib's DNSServer): zones given as MX records by domain.

No test resolves through the system resolver: the screening's resolver is pointed at this server's port.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from dnslib import MX, QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.support.components import free_port


class MxZone(BaseResolver):  # type: ignore[misc]
    """Answers MX queries from ``zones`` (domain → MX hosts); any other name is NXDOMAIN; counts the queries."""

    def __init__(self, zones: Mapping[str, Sequence[str]]) -> None:
        self.zones = {k.lower().rstrip("."): list(v) for k, v in zones.items()}
        self.queries: list[str] = []

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        qname = str(request.q.qname).lower().rstrip(".")
        self.queries.append(qname)
        hosts = self.zones.get(qname)
        if hosts is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype == QTYPE.MX:
            for pref, host in enumerate(hosts, 1):
                reply.add_answer(RR(qname, QTYPE.MX, rdata=MX(host, pref * 10), ttl=300))
        return reply


@contextmanager
def dns_server(zones: Mapping[str, Sequence[str]]) -> Iterator[tuple[str, MxZone]]:
    """A UDP DNS server on 127.0.0.1:<free port> for the block; yields ("127.0.0.1:port", the zone)."""
    zone = MxZone(zones)
    port = free_port()
    server = DNSServer(
        zone, port=port, address="127.0.0.1", logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")
    )
    server.start_thread()
    try:
        yield f"127.0.0.1:{port}", zone
    finally:
        server.stop()
        server.server.server_close()
