"""Read the UDP payloads of a pcap capture (classic libpcap format; Ethernet, Linux cooked or raw IP).

Used to replay recorded export streams through the collector (the demo, the tests, ``telemetry replay``); the
payloads keep their capture order and their sender's address as the exporter.
"""

from __future__ import annotations

import gzip
import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from abusedesk.domain.errors import ParseError


@dataclass(frozen=True, slots=True)
class Datagram:
    time: float
    src: str
    src_port: int
    dst_port: int
    payload: bytes


_LINK_OFFSETS = {1: 14, 113: 16, 101: 0, 228: 0, 0: 4}  # Ethernet, Linux SLL, raw, IPv4, BSD loopback


def read_pcap(path: Path) -> Iterator[Datagram]:
    """The UDP datagrams of ``path`` (gzip-compressed or not); non-UDP packets are skipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ParseError(f"{path} is too short to be a pcap file", source=str(path))
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ParseError(f"{path} is not a pcap file (magic {magic.hex()}); pcapng is not read", source=str(path))
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0xFFFF
    if linktype not in _LINK_OFFSETS:
        raise ParseError(f"{path}: link type {linktype} is not read", source=str(path))
    rec = struct.Struct(endian + "IIII")
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = rec.unpack_from(data, off)
        off += 16
        pkt = data[off : off + incl]
        off += incl
        if len(pkt) < incl:
            raise ParseError(f"{path}: the capture is truncated", source=str(path), offset=off)
        d = _udp(pkt, linktype)
        if d is not None:
            src, sport, dport, payload = d
            yield Datagram(sec + frac / (1e9 if nano else 1e6), src, sport, dport, payload)


def _udp(pkt: bytes, linktype: int) -> tuple[str, int, int, bytes] | None:
    o = _LINK_OFFSETS[linktype]
    if linktype == 1:
        ethertype = struct.unpack_from("!H", pkt, 12)[0]
        while ethertype == 0x8100 and len(pkt) >= o + 4:  # VLAN tags
            ethertype = struct.unpack_from("!H", pkt, o + 2)[0]
            o += 4
    if len(pkt) < o + 20:
        return None
    version = pkt[o] >> 4
    if version == 4:
        ihl = (pkt[o] & 0x0F) * 4
        if pkt[o + 9] != 17:
            return None
        src = str(ipaddress.IPv4Address(pkt[o + 12 : o + 16]))
        u = o + ihl
    elif version == 6 and len(pkt) >= o + 40:
        if pkt[o + 6] != 17:
            return None
        src = str(ipaddress.IPv6Address(pkt[o + 8 : o + 24]))
        u = o + 40
    else:
        return None
    if len(pkt) < u + 8:
        return None
    sport, dport, ulen = struct.unpack_from("!HHH", pkt, u)
    return src, sport, dport, pkt[u + 8 : u + max(ulen, 8)]
