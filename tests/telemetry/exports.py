"""Build IPFIX and NetFlow v9/v5 datagrams by the RFCs, for tests that need what no recorded exporter sends
(withdrawals, variable-length and enterprise fields, broken datagrams)."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

Field = tuple[int, int] | tuple[int, int, int]  # (ie, length) or (ie, length, enterprise number)

# a flow record layout like softflowd's, with absolute millisecond times
V4_FIELDS: list[Field] = [(8, 4), (12, 4), (152, 8), (153, 8), (1, 4), (2, 4), (7, 2), (11, 2), (4, 1), (6, 1)]


def ipfix_template_set(tid: int, fields: Sequence[Field], *, set_id: int = 2, scope: int | None = None) -> bytes:
    body = struct.pack("!HH", tid, len(fields))
    if scope is not None:
        body += struct.pack("!H", scope)
    for f in fields:
        if len(f) == 3:
            body += struct.pack("!HHI", f[0] | 0x8000, f[1], f[2])
        else:
            body += struct.pack("!HH", f[0], f[1])
    return struct.pack("!HH", set_id, 4 + len(body)) + body


def withdrawal_set(tid: int, *, set_id: int = 2) -> bytes:
    return struct.pack("!HHHH", set_id, 8, tid, 0)


def data_set(tid: int, records: Sequence[bytes], pad: int = 0) -> bytes:
    body = b"".join(records) + bytes(pad)
    return struct.pack("!HH", tid, 4 + len(body)) + body


def ipfix(sets: Sequence[bytes], *, seq: int = 0, domain: int = 1, export_time: int = 1_795_814_900) -> bytes:
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), export_time, seq, domain) + body


def v4_record(src: str, dst: str, start_ms: int, end_ms: int, octets: int, packets: int, sport: int, dport: int,
              proto: int = 6, flags: int = 0x02) -> bytes:  # fmt: skip
    return (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!QQIIHHBB", start_ms, end_ms, octets, packets, sport, dport, proto, flags)
    )


def v9(flowsets: Sequence[bytes], *, seq: int = 0, source: int = 0, uptime: int = 100_000,
       secs: int = 1_795_814_900) -> bytes:  # fmt: skip
    body = b"".join(flowsets)
    return struct.pack("!HHIIII", 9, 0, uptime, secs, seq, source) + body


def v9_template(tid: int, fields: Sequence[tuple[int, int]]) -> bytes:
    body = struct.pack("!HH", tid, len(fields)) + b"".join(struct.pack("!HH", *f) for f in fields)
    return struct.pack("!HH", 0, 4 + len(body)) + body


def v5(records: Sequence[tuple[str, str, int, int, int, int]], *, seq: int = 0, uptime: int = 100_000,
       secs: int = 1_795_814_900) -> bytes:  # fmt: skip
    """records: (src, dst, sport, dport, packets, octets), first/last = uptime - 1000 / uptime."""
    head = struct.pack("!HHIIIIBBH", 5, len(records), uptime, secs, 0, seq, 0, 0, 0)
    body = b""
    for src, dst, sport, dport, pkts, octets in records:
        body += (
            ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed + bytes(4)
            + struct.pack("!HHIIIIHHBBBBHHBBH", 3, 4, pkts, octets, uptime - 1000, uptime, sport, dport, 0, 0x12,
                          6, 0, 0, 0, 24, 24, 0)
        )  # fmt: skip
    return head + body
