"""IPFIX (RFC 7011), NetFlow v9 (RFC 3954) and NetFlow v5 datagrams → Arrow flow batches, vectorised.

How it is fast without native code: a template compiles once to a numpy structured dtype (big-endian fields at
their offsets, enterprise and unwanted fields as opaque padding). ``feed`` only walks a datagram's header and set
headers in Python and queues each data set's bytes with its template; ``take`` joins the queued bytes of one
template and decodes them with **one** ``np.frombuffer`` per template, so the per-record cost is numpy's, not the
interpreter's. A template with a variable-length field (RFC 7011 §7) has no fixed layout: its records are walked
one by one (rare in flow export; counted as ``varlen_records``).

Templates are cached per (exporter, observation domain / source id, template id); a template set with field count
0 withdraws one template, template id 2 (IPFIX) or 3 withdraws them all (RFC 7011 §8.1). Options templates are
parsed too; their data records give ``systemInitTimeMilliseconds`` (IE 160), which turns uptime-relative times
(IEs 21/22) into absolute ones. A malformed datagram is dropped whole — nothing it carried is kept, not even its
templates — and counted under its reason; the decoder never raises on input.

Sequence gaps: v9 numbers datagrams, v5 and IPFIX number records. softflowd's IPFIX numbers *include* the current
message's records (RFC 7011 says the previous ones'); the first messages of an exporter settle which convention it
uses, so neither convention reports false losses (docs/admin/telemetry.md, the corpus README's pitfalls).
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from abusedesk.telemetry.schema import empty_flows, flow_table, v4_keys

VARLEN = 0xFFFF

# Information elements we keep (IPFIX IANA numbers; NetFlow v9 uses the same numbers for these).
IE_OCTETS, IE_PACKETS, IE_PROTO, IE_TCP_FLAGS, IE_INPUT_IF = 1, 2, 4, 6, 10
IE_SRC_PORT, IE_SRC_V4, IE_DST_PORT, IE_DST_V4 = 7, 8, 11, 12
IE_END_UPTIME, IE_START_UPTIME, IE_SRC_V6, IE_DST_V6 = 21, 22, 27, 28
IE_TOTAL_OCTETS, IE_TOTAL_PACKETS = 85, 86
IE_START_S, IE_END_S, IE_START_MS, IE_END_MS, IE_START_US, IE_END_US, IE_START_NS, IE_END_NS = range(150, 158)
IE_SYS_INIT_MS = 160
IE_ICMP_V4, IE_ICMP_V6 = 32, 139  # icmpTypeCode: type * 256 + code, carried as the destination port (as nfdump)

_TIME_FIELDS = {
    IE_START_S: ("time_start", "s"),
    IE_END_S: ("time_end", "s"),
    IE_START_MS: ("time_start", "ms"),
    IE_END_MS: ("time_end", "ms"),
    IE_START_US: ("time_start", "ntp"),
    IE_END_US: ("time_end", "ntp"),
    IE_START_NS: ("time_start", "ntp"),
    IE_END_NS: ("time_end", "ntp"),
    IE_START_UPTIME: ("time_start", "uptime"),
    IE_END_UPTIME: ("time_end", "uptime"),
}
_INT_FIELDS = {
    IE_PROTO: "proto",
    IE_TCP_FLAGS: "tcp_flags",
    IE_SRC_PORT: "src_port",
    IE_DST_PORT: "dst_port",
    IE_PACKETS: "packets",
    IE_OCTETS: "bytes",
    IE_TOTAL_PACKETS: "packets",
    IE_TOTAL_OCTETS: "bytes",
    IE_INPUT_IF: "input_if",
}
_ADDR_FIELDS = {IE_SRC_V4: ("src_addr", 4), IE_DST_V4: ("dst_addr", 4), IE_SRC_V6: ("src_addr", 16),
                IE_DST_V6: ("dst_addr", 16)}  # fmt: skip
_UINT = {1: ">u1", 2: ">u2", 4: ">u4", 8: ">u8"}
NTP_EPOCH_OFFSET_S = 2_208_988_800  # 1900-01-01 → 1970-01-01


class Malformed(Exception):
    """A datagram that breaks its format; ``reason`` is the counter it goes under."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TemplateField:
    ie: int
    length: int
    enterprise: int = 0


@dataclass(slots=True)
class Template:
    """A template compiled to a record layout: ``dtype`` for fixed-length records, None with variable fields."""

    tid: int
    fields: tuple[TemplateField, ...]
    scope_count: int = 0
    options: bool = False
    dtype: np.dtype[Any] | None = None
    length: int = 0
    #: canonical column → (dtype field name, how to read it)
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def compile(cls, tid: int, fields: tuple[TemplateField, ...], *, scope_count: int = 0,
                options: bool = False) -> Template:  # fmt: skip
        t = cls(tid, fields, scope_count, options)
        if any(f.length == VARLEN for f in fields):
            t.columns = _columns_for(fields)
            return t
        names: list[str] = []
        formats: list[Any] = []
        offsets: list[int] = []
        off = 0
        for i, f in enumerate(fields):
            name = f"f{i}"
            if f.enterprise:
                fmt: Any = f"V{f.length}"  # enterprise-specific: skipped, it only takes its room
            elif f.ie in _ADDR_FIELDS and f.length == _ADDR_FIELDS[f.ie][1]:
                fmt = ("u1", (f.length,))
            elif f.ie in (IE_START_US, IE_END_US, IE_START_NS, IE_END_NS) and f.length == 8:
                fmt = ">u8"
            elif f.length in _UINT:
                fmt = _UINT[f.length]
            else:
                fmt = f"V{f.length}"
            names.append(name)
            formats.append(fmt)
            offsets.append(off)
            off += f.length
        t.length = off
        t.dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": off})
        t.columns = _columns_for(fields)
        return t


def _columns_for(fields: tuple[TemplateField, ...]) -> dict[str, tuple[str, str]]:
    cols: dict[str, tuple[str, str]] = {}
    for i, f in enumerate(fields):
        if f.enterprise:
            continue
        name = f"f{i}"
        if f.ie in _ADDR_FIELDS and f.length == _ADDR_FIELDS[f.ie][1]:
            cols.setdefault(_ADDR_FIELDS[f.ie][0], (name, f"v{f.length}"))
        elif f.ie in _TIME_FIELDS and f.length in _UINT:
            col, how = _TIME_FIELDS[f.ie]
            # an absolute time wins over an uptime-relative one
            if col not in cols or cols[col][1] == "uptime":
                cols[col] = (name, how)
        elif f.ie in _INT_FIELDS and f.length in _UINT:
            cols.setdefault(_INT_FIELDS[f.ie], (name, "int"))
        elif f.ie in (IE_ICMP_V4, IE_ICMP_V6) and f.length == 2:
            cols.setdefault("dst_port", (name, "int"))
        elif f.ie == IE_SYS_INIT_MS and f.length == 8:
            cols["sys_init_ms"] = (name, "int")
    return cols


@dataclass(slots=True)
class ExporterState:
    """Per (exporter, domain, version): expected next sequence number and the gaps seen."""

    next_seq: int | None = None
    last_seq: int | None = None
    last_records: int = 0
    inclusive: bool | None = None  # softflowd-style IPFIX numbering (counts this message's records)
    lost: int = 0
    sys_init_ms: int | None = None


@dataclass
class DecodeStats:
    datagrams: int = 0
    flows: int = 0
    templates: int = 0
    options_templates: int = 0
    withdrawals: int = 0
    options_records: int = 0
    varlen_records: int = 0
    #: records (IPFIX, v5) or datagrams (v9) that a sequence gap says were lost on the way
    lost_records: int = 0
    lost_datagrams: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    #: data sets whose template was not (yet) known: RFC 7011 allows them; they cannot be decoded
    no_template_sets: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "datagrams": self.datagrams,
            "flows": self.flows,
            "templates": self.templates,
            "options_templates": self.options_templates,
            "withdrawals": self.withdrawals,
            "options_records": self.options_records,
            "varlen_records": self.varlen_records,
            "lost_records": self.lost_records,
            "lost_datagrams": self.lost_datagrams,
            "no_template_sets": self.no_template_sets,
            "dropped": dict(sorted(self.dropped.items())),
        }


_V5_DTYPE = np.dtype(
    {
        "names": ["src", "dst", "first", "last", "sport", "dport", "flags", "proto", "pkts", "octets", "input"],
        "formats": [("u1", (4,)), ("u1", (4,)), ">u4", ">u4", ">u2", ">u2", "u1", "u1", ">u4", ">u4", ">u2"],
        "offsets": [0, 4, 24, 28, 32, 34, 37, 38, 16, 20, 12],
        "itemsize": 48,
    }
)
_V5_HEADER = struct.Struct("!HHIIIIBBH")
_V9_HEADER = struct.Struct("!HHIIII")
_IPFIX_HEADER = struct.Struct("!HHIII")
_SET_HEADER = struct.Struct("!HH")
_FIELD = struct.Struct("!HH")
_ENT = struct.Struct("!I")


@dataclass(slots=True)
class _Chunk:
    data: bytes
    count: int
    base_ms: int  # added to uptime-relative times (ms); the exporter's boot time in epoch ms
    exporter: int


class FlowDecoder:
    """Decode export datagrams into Arrow flow tables (``feed`` many, then ``take``)."""

    def __init__(self) -> None:
        self.stats = DecodeStats()
        self.templates: dict[tuple[str, int, int, int], Template] = {}
        self.exporters: dict[tuple[str, int, int], ExporterState] = {}
        self._exporter_names: list[str] = []
        self._exporter_ids: dict[str, int] = {}
        self._pending: dict[int, tuple[Template, list[_Chunk]]] = {}
        self._v5: list[_Chunk] = []
        self._flat: dict[int, tuple[Template, Template]] = {}
        #: template sets seen before → their compiled templates: exporters resend the same sets every few
        #: datagrams (softflowd: every 16), and one compiled object per layout keeps one decode group per layout
        self._template_cache: dict[tuple[int, int, bytes], list[tuple[int, Template | None]]] = {}

    # ------------------------------------------------------------------ datagrams

    def feed(self, data: bytes, exporter: str) -> int:
        """Queue one datagram's flows; returns how many. A malformed datagram is counted and dropped (0)."""
        self.stats.datagrams += 1
        try:
            if len(data) < 4:
                raise Malformed("short header")
            version = (data[0] << 8) | data[1]
            if version == 10:
                n = self._ipfix(data, exporter)
            elif version == 9:
                n = self._v9(data, exporter)
            elif version == 5:
                n = self._v5_datagram(data, exporter)
            else:
                raise Malformed("unknown version")
        except Malformed as exc:
            self.stats.dropped[exc.reason] += 1
            return 0
        self.stats.flows += n
        return n

    def _exporter_id(self, exporter: str) -> int:
        idx = self._exporter_ids.get(exporter)
        if idx is None:
            idx = self._exporter_ids[exporter] = len(self._exporter_names)
            self._exporter_names.append(exporter)
        return idx

    def _sequence(self, key: tuple[str, int, int], seq: int, records: int, *, per_datagram: bool) -> None:
        st = self.exporters.setdefault(key, ExporterState())
        if per_datagram:  # v9: one number per datagram
            if st.next_seq is not None and seq != st.next_seq:
                gap = (seq - st.next_seq) & 0xFFFFFFFF
                if gap < 0x8000_0000:  # a reordered or repeated datagram is no loss
                    st.lost += gap
                    self.stats.lost_datagrams += gap
            st.next_seq = (seq + 1) & 0xFFFFFFFF
            return
        if st.last_seq is not None:
            rfc = (st.last_seq + st.last_records) & 0xFFFFFFFF
            incl = (st.last_seq + records) & 0xFFFFFFFF
            if st.inclusive is None and seq != rfc and seq == incl:
                st.inclusive = True
            elif st.inclusive is None and seq == rfc:
                st.inclusive = False
            expected = incl if st.inclusive else rfc
            gap = (seq - expected) & 0xFFFFFFFF
            if gap and gap < 0x8000_0000:
                st.lost += gap
                self.stats.lost_records += gap
        st.last_seq, st.last_records = seq, records

    def _v5_datagram(self, data: bytes, exporter: str) -> int:
        if len(data) < 24:
            raise Malformed("short header")
        _, count, uptime, secs, nsecs, seq, _et, _eid, _sampling = _V5_HEADER.unpack_from(data)
        count = int(count)
        if count == 0 or count > 30:
            raise Malformed("v5 record count out of range")
        if len(data) < 24 + 48 * count:
            raise Malformed("v5 datagram shorter than its count")
        self._sequence((exporter, 0, 5), seq, count, per_datagram=False)
        base = secs * 1000 + nsecs // 1_000_000 - uptime
        self._v5.append(_Chunk(data[24 : 24 + 48 * count], count, base, self._exporter_id(exporter)))
        return count

    def _v9(self, data: bytes, exporter: str) -> int:
        if len(data) < 20:
            raise Malformed("short header")
        _, _count, uptime, secs, seq, source = _V9_HEADER.unpack_from(data)
        base = secs * 1000 - uptime
        # the header's count omits template records in some exporters (softflowd): parse by set lengths
        new_templates: list[tuple[tuple[str, int, int, int], Template | None]] = []
        chunks: list[tuple[tuple[str, int, int, int], bytes]] = []
        off = 20
        while off < len(data):
            if len(data) - off < 4:
                raise Malformed("truncated set header")
            set_id, length = _SET_HEADER.unpack_from(data, off)
            if length < 4 or off + length > len(data):
                raise Malformed("set length out of bounds")
            body = data[off + 4 : off + length]
            if set_id in (0, 1):
                parsed = self._template_cache.get((9, set_id, body))
                if parsed is None:
                    found = self._v9_templates(body) if set_id == 0 else self._v9_options(body)
                    parsed = self._remember((9, set_id, body), [(t.tid, t) for t in found])
                new_templates.extend(((exporter, 9, source, tid), t) for tid, t in parsed)
            elif set_id >= 256:
                chunks.append(((exporter, 9, source, set_id), body))
            off += length
        flows, _ = self._commit(new_templates, chunks, base, exporter)
        self._sequence((exporter, source, 9), seq, 0, per_datagram=True)
        return flows

    def _ipfix(self, data: bytes, exporter: str) -> int:
        if len(data) < 16:
            raise Malformed("short header")
        _, length, _export_time, seq, domain = _IPFIX_HEADER.unpack_from(data)
        if length != len(data):
            raise Malformed("message length mismatch")
        new_templates: list[tuple[tuple[str, int, int, int], Template | None]] = []
        chunks: list[tuple[tuple[str, int, int, int], bytes]] = []
        off = 16
        while off < length:
            if length - off < 4:
                raise Malformed("truncated set header")
            set_id, slen = _SET_HEADER.unpack_from(data, off)
            if slen < 4 or off + slen > length:
                raise Malformed("set length out of bounds")
            body = data[off + 4 : off + slen]
            if set_id in (2, 3):
                parsed = self._template_cache.get((10, set_id, body))
                if parsed is None:
                    parsed = self._remember((10, set_id, body), self._ipfix_templates(body, options=set_id == 3))
                for tid, tmpl in parsed:
                    if tid in (2, 3) and tmpl is None:  # withdraw all of this domain's (options) templates
                        for key in [k for k in self.templates if k[:3] == (exporter, 10, domain)]:
                            new_templates.append((key, None))
                    else:
                        new_templates.append(((exporter, 10, domain, tid), tmpl))
            elif set_id >= 256:
                chunks.append(((exporter, 10, domain, set_id), body))
            elif set_id not in (0, 1):
                pass  # reserved set ids 4..255: skipped (RFC 7011 §3.3.2)
            else:
                raise Malformed("NetFlow v9 set id in an IPFIX message")
            off += slen
        state = self.exporters.get((exporter, domain, 10))
        base = state.sys_init_ms if state is not None and state.sys_init_ms is not None else 0
        flows, records = self._commit(new_templates, chunks, base, exporter)
        self._sequence((exporter, domain, 10), seq, records, per_datagram=False)
        return flows

    def _commit(
        self,
        new_templates: list[tuple[tuple[str, int, int, int], Template | None]],
        chunks: list[tuple[tuple[str, int, int, int], bytes]],
        base: int,
        exporter: str,
    ) -> tuple[int, int]:
        """Apply a datagram whose sets are well formed: its templates, then queue its data sets.

        Returns (flow records, all data records). Everything is decided before anything is kept, so a record
        that overruns its set (variable-length fields) still drops the whole datagram."""
        if new_templates:
            templates = dict(self.templates)
            for key, tmpl in new_templates:
                if tmpl is None:
                    templates.pop(key, None)
                else:
                    templates[key] = tmpl
        else:
            templates = self.templates
        eid = self._exporter_id(exporter)
        flows = records = 0
        queued: list[tuple[Template, _Chunk]] = []
        options: list[tuple[tuple[str, int, int, int], Template, bytes, int]] = []
        no_template = 0
        for key, body in chunks:
            tmpl = templates.get(key)
            if tmpl is None:
                no_template += 1
                continue
            if tmpl.dtype is None:
                flat, packed, n = self._varlen(tmpl, body)
                records += n
                if tmpl.options:
                    self.stats.options_records += n
                elif n:
                    flows += n
                    queued.append((flat, _Chunk(packed, n, base, eid)))
                continue
            if tmpl.length == 0:
                continue
            n = len(body) // tmpl.length  # the rest is padding (RFC 7011 §3.3.1)
            records += n
            if tmpl.options:
                options.append((key, tmpl, body[: n * tmpl.length], n))
            elif n:
                flows += n
                queued.append((tmpl, _Chunk(body if n * tmpl.length == len(body) else body[: n * tmpl.length],
                                            n, base, eid)))  # fmt: skip
        # the datagram is good: keep what it carried
        if new_templates:
            for _key, tmpl in new_templates:
                if tmpl is None:
                    self.stats.withdrawals += 1
                elif tmpl.options:
                    self.stats.options_templates += 1
                else:
                    self.stats.templates += 1
            self.templates = templates
        self.stats.no_template_sets += no_template
        pending = self._pending
        for tmpl, chunk in queued:
            pend = pending.get(id(tmpl))
            if pend is None:
                pend = pending[id(tmpl)] = (tmpl, [])
            pend[1].append(chunk)
        for key, tmpl, body, n in options:
            self._options(key, tmpl, body, n)
        return flows, records

    def _options(self, key: tuple[str, int, int, int], tmpl: Template, body: bytes, n: int) -> None:
        self.stats.options_records += n
        col = tmpl.columns.get("sys_init_ms")
        if col is not None and n and tmpl.dtype is not None:
            recs = np.frombuffer(body, tmpl.dtype, count=n)
            st = self.exporters.setdefault((key[0], key[2], key[1]), ExporterState())
            st.sys_init_ms = int(recs[col[0]][-1])

    # ------------------------------------------------------------------ templates

    def _remember(
        self, key: tuple[int, int, bytes], parsed: list[tuple[int, Template | None]]
    ) -> list[tuple[int, Template | None]]:
        if len(self._template_cache) >= 4096:  # bounded: a stream of ever-new templates cannot grow it
            self._template_cache.clear()
        self._template_cache[key] = parsed
        return parsed

    @staticmethod
    def _read_fields(body: bytes, off: int, count: int, *, enterprise_bit: bool) -> tuple[list[TemplateField], int]:
        fields: list[TemplateField] = []
        for _ in range(count):
            if off + 4 > len(body):
                raise Malformed("truncated template")
            ie, length = _FIELD.unpack_from(body, off)
            off += 4
            ent = 0
            if enterprise_bit and ie & 0x8000:
                if off + 4 > len(body):
                    raise Malformed("truncated template")
                (ent,) = _ENT.unpack_from(body, off)
                off += 4
                ie &= 0x7FFF
                ent = ent or 1
            if length == 0:
                raise Malformed("zero-length template field")
            fields.append(TemplateField(ie, length, ent))
        return fields, off

    def _ipfix_templates(self, body: bytes, *, options: bool) -> list[tuple[int, Template | None]]:
        out: list[tuple[int, Template | None]] = []
        off = 0
        while len(body) - off >= 4:
            tid, count = _FIELD.unpack_from(body, off)
            off += 4
            if count == 0:  # a withdrawal (RFC 7011 §8.1)
                out.append((tid, None))
                continue
            if tid < 256:
                raise Malformed("template id below 256")
            scope = 0
            if options:
                if len(body) - off < 2:
                    raise Malformed("truncated template")
                (scope,) = struct.unpack_from("!H", body, off)
                off += 2
                if scope == 0 or scope > count:
                    raise Malformed("options template scope count out of range")
            fields, off = self._read_fields(body, off, count, enterprise_bit=True)
            out.append((tid, Template.compile(tid, tuple(fields), scope_count=scope, options=options)))
        return out

    def _v9_templates(self, body: bytes) -> list[Template]:
        out: list[Template] = []
        off = 0
        while len(body) - off >= 4:
            tid, count = _FIELD.unpack_from(body, off)
            off += 4
            if tid < 256 or count == 0:
                raise Malformed("bad v9 template header")
            fields, off = self._read_fields(body, off, count, enterprise_bit=False)
            if any(f.length == VARLEN for f in fields):
                raise Malformed("variable-length field in a v9 template")
            out.append(Template.compile(tid, tuple(fields)))
        return out

    def _v9_options(self, body: bytes) -> list[Template]:
        out: list[Template] = []
        off = 0
        while len(body) - off >= 6:
            tid, scope_len, opt_len = struct.unpack_from("!HHH", body, off)
            off += 6
            if tid < 256 or scope_len % 4 or opt_len % 4 or scope_len + opt_len == 0:
                raise Malformed("bad v9 options template header")
            n = (scope_len + opt_len) // 4
            fields, off = self._read_fields(body, off, n, enterprise_bit=False)
            # scope fields use their own type space (1 system, 2 interface ...): never read as flow fields
            scoped = [TemplateField(0, f.length, 1) for f in fields[: scope_len // 4]] + fields[scope_len // 4 :]
            out.append(Template.compile(tid, tuple(scoped), scope_count=scope_len // 4, options=True))
            off += (4 - off % 4) % 4 if off < len(body) and len(body) - off < 6 else 0
        return out

    def _varlen(self, tmpl: Template, body: bytes) -> tuple[Template, bytes, int]:
        """Records of a template with variable-length fields, walked one at a time (RFC 7011 §7), repacked at
        fixed widths (a variable field as 16 bytes, truncated or zero-filled) for the vectorised decode."""
        rows: list[list[bytes]] = []
        off = 0
        while off < len(body):
            row: list[bytes] = []
            start = off
            try:
                for f in tmpl.fields:
                    length = f.length
                    if length == VARLEN:
                        if off >= len(body):
                            raise IndexError
                        length = body[off]
                        off += 1
                        if length == 255:
                            if off + 2 > len(body):
                                raise IndexError
                            length = int.from_bytes(body[off : off + 2], "big")
                            off += 2
                    if off + length > len(body):
                        raise IndexError
                    row.append(body[off : off + length])
                    off += length
            except IndexError:
                if any(body[start:]):
                    raise Malformed("variable-length record overruns its set") from None
                break  # trailing padding
            if off == start:
                break
            rows.append(row)
        fixed = tuple(TemplateField(f.ie, 16 if f.length == VARLEN else f.length, f.enterprise) for f in tmpl.fields)
        flat = self._flat.get(id(tmpl))
        if flat is None or flat[0] is not tmpl:
            flat = self._flat[id(tmpl)] = (tmpl, Template.compile(tmpl.tid, fixed, options=tmpl.options))
        packed = b"".join(
            b"".join(v.rjust(fixed[i].length, b"\0")[: fixed[i].length] for i, v in enumerate(r)) for r in rows
        )
        if not tmpl.options:
            self.stats.varlen_records += len(rows)
        return flat[1], packed, len(rows)

    # ------------------------------------------------------------------ columns

    def pending(self) -> int:
        return sum(c.count for _, chunks in self._pending.values() for c in chunks) + sum(c.count for c in self._v5)

    def take(self) -> pa.Table:
        """Everything queued since the last ``take``, decoded into one FLOW_SCHEMA table."""
        tables: list[pa.Table] = []
        if self._v5:
            tables.append(self._decode_v5(self._v5))
            self._v5 = []
        for tmpl, chunks in self._pending.values():
            tables.append(self._decode(tmpl, chunks))
        self._pending = {}
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return empty_flows()
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables).combine_chunks()

    def _exporter_column(self, chunks: list[_Chunk]) -> npt.NDArray[np.int32]:
        return np.repeat(np.fromiter((c.exporter for c in chunks), np.int32, len(chunks)),
                         [c.count for c in chunks])  # fmt: skip

    def _decode_v5(self, chunks: list[_Chunk]) -> pa.Table:
        recs = np.frombuffer(b"".join(c.data for c in chunks), _V5_DTYPE)
        base = np.repeat(np.fromiter((c.base_ms for c in chunks), np.int64, len(chunks)), [c.count for c in chunks])
        cols = {
            "time_start": base + recs["first"].astype(np.int64),
            "time_end": base + recs["last"].astype(np.int64),
            "proto": recs["proto"],
            "src_addr": v4_keys(recs["src"]),
            "dst_addr": v4_keys(recs["dst"]),
            "src_port": recs["sport"],
            "dst_port": recs["dport"],
            "tcp_flags": recs["flags"],
            "packets": recs["pkts"].astype(np.uint64),
            "bytes": recs["octets"].astype(np.uint64),
            "input_if": recs["input"],
        }
        return flow_table(cols, self._exporter_names, self._exporter_column(chunks))

    def _decode(self, tmpl: Template, chunks: list[_Chunk]) -> pa.Table:
        assert tmpl.dtype is not None
        recs = np.frombuffer(b"".join(c.data for c in chunks), tmpl.dtype)
        n = len(recs)
        cols: dict[str, Any] = {}
        spec = tmpl.columns
        for col in ("proto", "tcp_flags", "src_port", "dst_port", "packets", "bytes", "input_if"):
            if col in spec:
                cols[col] = recs[spec[col][0]]
            else:
                cols[col] = np.zeros(n, np.uint64)
        for col in ("src_addr", "dst_addr"):
            if col not in spec:
                cols[col] = np.zeros((n, 16), np.uint8)
            elif spec[col][1] == "v4":
                cols[col] = v4_keys(recs[spec[col][0]])
            else:
                cols[col] = recs[spec[col][0]]
        base: npt.NDArray[np.int64] | None = None
        for col in ("time_start", "time_end"):
            if col not in spec:
                cols[col] = np.zeros(n, np.int64)
                continue
            name, how = spec[col]
            raw = recs[name]
            if how == "ms":
                cols[col] = raw.astype(np.int64)
            elif how == "s":
                cols[col] = raw.astype(np.int64) * 1000
            elif how == "ntp":  # 32-bit seconds since 1900, 32-bit fraction
                v = raw.astype(np.uint64)
                secs = (v >> np.uint64(32)).astype(np.int64) - NTP_EPOCH_OFFSET_S
                frac = (v & np.uint64(0xFFFFFFFF)).astype(np.int64)
                cols[col] = secs * 1000 + (frac * 1000 >> 32)
            else:
                if base is None:
                    base = np.repeat(np.fromiter((c.base_ms for c in chunks), np.int64, len(chunks)),
                                     [c.count for c in chunks])  # fmt: skip
                cols[col] = base + raw.astype(np.int64)
        if "time_start" not in spec:
            cols["time_start"] = cols["time_end"]
        if "time_end" not in spec:
            cols["time_end"] = cols["time_start"]
        return flow_table(cols, self._exporter_names, self._exporter_column(chunks))
