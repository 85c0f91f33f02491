"""The one columnar shape of a flow, whatever it came from (IPFIX, NetFlow, VPC flow logs, nfdump CSV).

Addresses are 16-byte big-endian values in the shared 128-bit space of :mod:`abusedesk.domain.ipnet` (IPv4 as
``::ffff:a.b.c.d``), so the attribution index takes them as (high, low) halves without a text round trip; times are
UTC milliseconds. ``exporter`` names who sent the record (the exporter's address, or the file it came from);
``input_if`` is the exporter's ingress interface index (0 when unknown), which attributes a flow whose source
address is allocated to no one (``telemetry.interfaces``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

FLOW_SCHEMA = pa.schema(
    [
        pa.field("time_start", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("time_end", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("proto", pa.uint8(), nullable=False),
        pa.field("src_addr", pa.binary(16), nullable=False),
        pa.field("dst_addr", pa.binary(16), nullable=False),
        pa.field("src_port", pa.uint16(), nullable=False),
        pa.field("dst_port", pa.uint16(), nullable=False),
        pa.field("tcp_flags", pa.uint8(), nullable=False),
        pa.field("packets", pa.uint64(), nullable=False),
        pa.field("bytes", pa.uint64(), nullable=False),
        pa.field("input_if", pa.uint32(), nullable=False),
        pa.field("exporter", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    ]
)

V4_PREFIX = bytes(10) + b"\xff\xff"
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


def addr_bytes(text: str) -> bytes:
    """An address as its 16-byte key (IPv4 mapped)."""
    a = ipaddress.ip_address(text.strip())
    return V4_PREFIX + a.packed if a.version == 4 else a.packed


def addr_text(value: bytes) -> str:
    """The 16-byte key as text (IPv4-mapped keys as dotted quads)."""
    if value[:12] == V4_PREFIX:
        return str(ipaddress.IPv4Address(value[12:]))
    return str(ipaddress.IPv6Address(value))


def v4_keys(octets: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """(N, 4) address octets → (N, 16) mapped keys."""
    out = np.zeros((len(octets), 16), np.uint8)
    out[:, 10:12] = 0xFF
    out[:, 12:] = octets
    return out


def binary16(keys: npt.NDArray[np.uint8]) -> pa.Array:
    """(N, 16) uint8 → an Arrow fixed_size_binary(16) array without a per-row copy."""
    flat = np.ascontiguousarray(keys, dtype=np.uint8).reshape(-1)
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(flat) // 16, [None, pa.py_buffer(flat)])


def key_halves(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.uint64]:
    """A binary(16) column as an (N, 2) uint64 array of (high, low) halves: what the attribution index takes."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(arr) == 0:
        return np.zeros((0, 2), np.uint64)
    buf = arr.buffers()[1]
    raw = np.frombuffer(buf, dtype=">u8", count=2 * len(arr), offset=arr.offset * 16)
    return raw.astype(np.uint64).reshape(-1, 2)


def flow_table(columns: dict[str, Any], exporters: list[str], exporter_idx: npt.NDArray[np.int32]) -> pa.Table:
    """A FLOW_SCHEMA table from numpy columns (times as int64 ms, addresses as (N, 16) uint8)."""
    n = len(columns["proto"])
    arrays = [
        pa.array(np.asarray(columns["time_start"], np.int64), pa.int64()).cast(FLOW_SCHEMA.field("time_start").type),
        pa.array(np.asarray(columns["time_end"], np.int64), pa.int64()).cast(FLOW_SCHEMA.field("time_end").type),
        pa.array(np.asarray(columns["proto"], np.uint8)),
        binary16(columns["src_addr"]),
        binary16(columns["dst_addr"]),
        pa.array(np.asarray(columns["src_port"], np.uint16)),
        pa.array(np.asarray(columns["dst_port"], np.uint16)),
        pa.array(np.asarray(columns["tcp_flags"], np.uint8)),
        pa.array(np.asarray(columns["packets"], np.uint64)),
        pa.array(np.asarray(columns["bytes"], np.uint64)),
        pa.array(np.asarray(columns.get("input_if", np.zeros(n, np.uint32)), np.uint32)),
        pa.DictionaryArray.from_arrays(pa.array(np.asarray(exporter_idx, np.int32)), pa.array(exporters, pa.string())),
    ]
    assert all(len(a) == n for a in arrays)
    return pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA)


def empty_flows() -> pa.Table:
    return FLOW_SCHEMA.empty_table()
