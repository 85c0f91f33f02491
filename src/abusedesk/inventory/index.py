"""The attribution index: "whose was this address at that time?", for one address or a columnar batch.

Design (issue 2, item 5). Addresses stay integers end to end, in the shared 128-bit space of
``abusedesk.domain.ipnet`` (IPv4 mapped into ::ffff:0:0/96); times are integer microseconds since the epoch.

Allocated prefixes form a laminar family (two CIDR prefixes are disjoint or nested), so they form a tree. The build
walks the prefixes once in address order and produces:

* **Elementary address intervals**: the address space cut at every prefix start and end+1. Every address in one
  interval is covered by the same chain of prefixes, so it maps to one *node*: the deepest prefix covering it
  (-1 = no prefix covers it). IPv4 intervals are kept as int64 offsets from ::ffff:0.0.0.0 (numpy has no 128-bit
  integers, and IPv4 is the bulk of telemetry); the rest of the space is kept as 16-byte big-endian keys (``S16``,
  which numpy compares like the 128-bit integers they encode).
* **Per node, its effective timeline**: the node's own allocations overlaid on its parent's effective timeline,
  i.e. a sorted list of non-overlapping time segments ``[start, next start)``, each naming the allocation row that
  wins there (the most specific prefix valid at that time) or -1. Adjacent segments with the same winner are
  merged. Every node's first segment starts at -infinity, so a lookup always lands in its own node's block.

A single lookup is then two ``bisect`` calls on compact ``array.array`` buffers (no numpy per-call overhead): the
address interval, then the time segment inside that node's block. A batch lookup sorts the addresses (two
16-bit radix passes), finds every address interval with one ``np.searchsorted`` (sorted keys walk cached memory),
then runs the time binary search level by level over all queries at once (log2 of the longest timeline levels,
each an independent gather). Validity intervals are half-open ``[valid_from, valid_to)``.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from abusedesk.domain.errors import Conflict
from abusedesk.domain.ipnet import V4_BASE, int_to_ip, ip_to_int
from abusedesk.domain.records import Attribution
from abusedesk.domain.timeutil import as_utc, iso

V4_END = V4_BASE + 0xFFFF_FFFF
MAX_ADDR = (1 << 128) - 1
NEG_INF_US = -(1 << 62)  # "since forever": the start of every node's first time segment
POS_INF_US = 1 << 62  # an open valid_to
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SORT_MIN = 4096  # below this, sorting a batch costs more than the cache misses it saves


def to_us(value: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch (naive is refused)."""
    return (as_utc(value) - EPOCH) // _US


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class AllocationEntry(NamedTuple):
    """One allocation as the index needs it; ``first``/``last`` in the shared 128-bit space, times in µs."""

    id: int
    prefix: str
    first: int
    last: int
    service_id: str
    valid_from: int
    valid_to: int | None  # None = open


@dataclass(frozen=True, slots=True)
class AllocationInfo:
    """One allocation row of the index, resolved to its service, project and customer."""

    row: int
    id: int
    prefix: str
    service_id: str
    project_id: str | None
    customer_id: str | None
    valid_from: datetime
    valid_to: datetime | None

    def interval(self) -> str:
        return f"[{iso(self.valid_from)}, {iso(self.valid_to) if self.valid_to else 'open'})"


def _u128_keys(values: Iterable[int]) -> npt.NDArray[Any]:
    """Python ints (< 2**128) as 16-byte big-endian keys that sort like the integers."""
    raw = b"".join(v.to_bytes(16, "big") for v in values)
    return np.frombuffer(raw, dtype="S16").copy() if raw else np.empty(0, dtype="S16")


def _pairs_to_keys(pairs: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """An (N, 2) array of (high, low) uint64 halves as 16-byte big-endian keys."""
    be = np.empty((len(pairs), 2), dtype=">u8")
    be[:, 0] = pairs[:, 0]
    be[:, 1] = pairs[:, 1]
    return be.view("S16").ravel()


def times_to_us(times: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """``datetime64`` (any unit, taken as UTC) or int64 epoch-µs as int64 epoch-µs."""
    arr = np.asarray(times)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[us]").astype(np.int64)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    raise TypeError(f"times must be datetime64 or int64 epoch microseconds, not {arr.dtype}")


def _fill_from_parent(
    seg_start: array[int], seg_row: array[int], p_lo: int, p_hi: int, a: int, b: int, last: int
) -> int:
    """Append the parent's segments (block ``[p_lo, p_hi)``; empty = no parent, i.e. -1) covering ``[a, b)``,
    merging equal neighbours; returns the row of the last segment."""
    if p_lo == p_hi:
        if last != -1:
            seg_start.append(a)
            seg_row.append(-1)
        return -1
    i = bisect_right(seg_start, a, p_lo, p_hi) - 1
    row = seg_row[i]
    if row != last:
        seg_start.append(a)
        seg_row.append(row)
        last = row
    i += 1
    while i < p_hi and seg_start[i] < b:
        row = seg_row[i]
        if row != last:
            seg_start.append(seg_start[i])
            seg_row.append(row)
            last = row
        i += 1
    return last


class AttributionIndex:
    """Answers ``attribute(ip, at)`` for one address and ``lookup_batch(ips, times)`` for arrays.

    Build it with :meth:`build` from :class:`AllocationEntry` rows and a ``service_id → (project_id,
    customer_id)`` mapping; ``InventoryService.index()`` builds it from the database and caches it.
    Overlapping intervals of one prefix are refused with :class:`Conflict` (the importer refuses them earlier).
    """

    def __init__(self) -> None:
        # allocation rows (the "row" every lookup returns)
        self.alloc_ids: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self.alloc_service: npt.NDArray[np.int32] = np.empty(0, np.int32)
        self.alloc_from_us: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self.alloc_to_us: npt.NDArray[np.int64] = np.empty(0, np.int64)  # POS_INF_US = open
        self.alloc_prefix: list[str] = []
        self.service_ids: list[str] = []
        self.project_ids: list[str | None] = []
        self.customer_ids: list[str | None] = []
        # nodes (distinct prefixes): parent, own allocation rows
        self._node_parent = array("i")
        self._node_rows_off = array("q", [0])
        self._node_rows = array("i")
        self._node_prefix: list[str] = []
        # segments, per node contiguous: start µs and winning row
        self._node_off = array("q", [0])
        self._seg_start = array("q")
        self._seg_row = array("i")
        # address intervals
        self._v4_starts = array("q", [0])
        self._v4_node = array("i", [-1])
        self._v4_block = array("q", [0] * 65537)  # per /16 block: index of the last interval starting at or before it
        self._v6_starts: list[int] = [0]
        self._v6_node: list[int] = [-1]
        self._np: dict[str, npt.NDArray[Any]] = {}
        self._finish()

    # ------------------------------------------------------------------ build

    @classmethod
    def build(
        cls, allocations: Iterable[AllocationEntry], services: Mapping[str, tuple[str | None, str | None]]
    ) -> AttributionIndex:
        """Build from allocation rows and ``service_id → (project_id, customer_id)``."""
        idx = cls()
        entries = list(allocations)
        if not entries:
            idx._finish()
            return idx
        # columns at C speed (zip(*rows)), then one Python pass to group rows by prefix
        ids, prefixes, firsts, lasts, sids, vfs, vts = zip(*entries, strict=True)
        svc_pos = {sid: i for i, sid in enumerate(dict.fromkeys(sids))}
        idx.service_ids = list(svc_pos)
        for sid in idx.service_ids:
            project_id, customer_id = services.get(sid, (None, None))
            idx.project_ids.append(project_id)
            idx.customer_ids.append(customer_id)
        idx.alloc_service = np.array([svc_pos[s] for s in sids], np.int32)
        idx.alloc_ids = np.array(ids, np.int64)
        idx.alloc_from_us = np.array(vfs, np.int64)
        idx.alloc_to_us = np.array([POS_INF_US if v is None else v for v in vts], np.int64)
        idx.alloc_prefix = list(prefixes)
        if min(firsts) < 0 or max(lasts) > MAX_ADDR or any(f > last for f, last in zip(firsts, lasts, strict=True)):
            raise ValueError("an allocation has a bad address range (first > last or outside 128 bits)")
        bad = np.flatnonzero(idx.alloc_to_us <= idx.alloc_from_us)
        if len(bad):
            e = entries[int(bad[0])]
            raise Conflict(f"allocation {e.id} of {e.prefix} ends before it starts (valid_to <= valid_from)")
        by_prefix: dict[tuple[int, int], list[int]] = {}
        for i, key in enumerate(zip(firsts, lasts, strict=True)):
            rows = by_prefix.get(key)
            if rows is None:
                by_prefix[key] = [i]
            else:
                rows.append(i)
        # parents before children: by first address, then widest first
        keys = sorted(by_prefix, key=lambda k: (k[0], -k[1]))
        idx._sweep(keys, by_prefix, entries)
        idx._finish()
        return idx

    def _sweep(
        self, keys: list[tuple[int, int]], by_prefix: dict[tuple[int, int], list[int]], entries: list[AllocationEntry]
    ) -> None:
        vf_of = self.alloc_from_us.tolist()
        vt_of = self.alloc_to_us.tolist()
        # fresh buffers: the ones from __init__ are exported to numpy and cannot grow
        node_parent, node_rows_off, node_rows = array("i"), array("q", [0]), array("i")
        node_off, seg_start, seg_row = array("q", [0]), array("q"), array("i")
        self._node_prefix = []
        starts: list[int] = []  # elementary interval starts, full 128-bit space
        nodes: list[int] = []

        def emit(start: int, node: int) -> None:
            if nodes and nodes[-1] == node:
                return
            if starts and starts[-1] == start:
                nodes[-1] = node
                if len(nodes) > 1 and nodes[-2] == node:
                    starts.pop()
                    nodes.pop()
                return
            starts.append(start)
            nodes.append(node)

        stack: list[tuple[int, int]] = []  # (node id, last address)
        pos = 0
        for node, key in enumerate(keys):
            first, last = key
            while stack and stack[-1][1] < first:
                top, top_last = stack.pop()
                if pos <= top_last:
                    emit(pos, top)
                    pos = top_last + 1
            if pos < first:
                emit(pos, stack[-1][0] if stack else -1)
            pos = first
            parent = stack[-1][0] if stack else -1
            stack.append((node, last))
            rows = sorted(by_prefix[key], key=vf_of.__getitem__)
            for a, b in pairwise(rows):
                if vf_of[b] < vt_of[a]:
                    ea, eb = entries[a], entries[b]
                    raise Conflict(
                        f"allocations {ea.id} and {eb.id} of {ea.prefix} overlap in time "
                        f"({iso(from_us(ea.valid_from))}–{'open' if ea.valid_to is None else iso(from_us(ea.valid_to))}"
                        f" and from {iso(from_us(eb.valid_from))}); one prefix has one owner at a time"
                    )
            node_parent.append(parent)
            node_rows.extend(rows)
            node_rows_off.append(len(node_rows))
            self._node_prefix.append(entries[rows[0]].prefix)
            # effective timeline: own rows overlaid on the parent's effective timeline
            p_lo = node_off[parent] if parent >= 0 else 0
            p_hi = node_off[parent + 1] if parent >= 0 else 0
            cur, last = NEG_INF_US, -2  # last: the row of this node's latest segment (-2: none yet)
            for r in rows:
                vf = vf_of[r]
                if cur < vf:
                    last = _fill_from_parent(seg_start, seg_row, p_lo, p_hi, cur, vf, last)
                if last != r:
                    seg_start.append(vf)
                    seg_row.append(r)
                    last = r
                cur = vt_of[r]
            if cur < POS_INF_US:
                _fill_from_parent(seg_start, seg_row, p_lo, p_hi, cur, POS_INF_US, last)
            node_off.append(len(seg_start))
        while stack:
            top, top_last = stack.pop()
            if pos <= top_last:
                emit(pos, top)
                pos = top_last + 1
        if pos <= MAX_ADDR:
            emit(pos, -1)
        if not starts or starts[0] != 0:  # pragma: no cover - emit always starts at address 0
            raise AssertionError("address intervals must start at 0")

        # IPv4: the intervals overlapping ::ffff:0.0.0.0/96, clipped, as offsets from V4_BASE
        i0 = bisect_right(starts, V4_BASE) - 1
        i1 = bisect_right(starts, V4_END) - 1
        self._v4_starts = array("q", [0] + [s - V4_BASE for s in starts[i0 + 1 : i1 + 1]])
        self._v4_node = array("i", nodes[i0 : i1 + 1])
        # a single lookup bisects only within its /16 block's intervals: ~3 comparisons instead of ~21
        v4s = self._v4_starts
        self._v4_block = array("q", [bisect_right(v4s, b << 16) - 1 for b in range(65537)])
        # the rest: everything outside the IPv4 range (the IPv4 range itself is answered by the IPv4 table)
        j = bisect_right(starts, V4_END + 1) - 1
        self._v6_starts = [*starts[: i0 + (starts[i0] < V4_BASE)], V4_BASE, V4_END + 1, *starts[j + 1 :]]
        self._v6_node = [*nodes[: i0 + (starts[i0] < V4_BASE)], -1, nodes[j], *nodes[j + 1 :]]
        self._node_parent, self._node_rows_off, self._node_rows = node_parent, node_rows_off, node_rows
        self._node_off, self._seg_start, self._seg_row = node_off, seg_start, seg_row

    def _finish(self) -> None:
        """Numpy views of the buffers for the batch path (no copies, except the IPv6 keys)."""
        node_off = np.frombuffer(self._node_off, np.int64)
        blocks = np.diff(node_off)
        self._iterations = int(np.ceil(np.log2(int(blocks.max())))) if len(blocks) and blocks.max() > 1 else 0
        self._np = {
            "node_off": node_off,
            "seg_start": np.frombuffer(self._seg_start, np.int64) if len(self._seg_start) else np.empty(0, np.int64),
            "seg_row": np.frombuffer(self._seg_row, np.int32) if len(self._seg_row) else np.empty(0, np.int32),
            "v4_starts": np.frombuffer(self._v4_starts, np.int64),
            "v4_node": np.frombuffer(self._v4_node, np.int32),
            "v6_starts": _u128_keys(self._v6_starts),
            "v6_node": np.asarray(self._v6_node, np.int32),
        }

    # ------------------------------------------------------------------ lookups

    def __len__(self) -> int:
        return len(self.alloc_ids)

    def node_of(self, ip: int) -> int:
        """The deepest allocated prefix (node) covering ``ip`` at any time, or -1."""
        if V4_BASE <= ip <= V4_END:
            return self._v4_node[bisect_right(self._v4_starts, ip - V4_BASE) - 1]
        return self._v6_node[bisect_right(self._v6_starts, ip) - 1]

    def lookup(self, ip: int, at_us: int) -> int:
        """The allocation row that owns ``ip`` (shared 128-bit space) at ``at_us`` (epoch µs), or -1."""
        if V4_BASE <= ip <= V4_END:
            x = ip - V4_BASE
            block = self._v4_block
            b = x >> 16
            node = self._v4_node[bisect_right(self._v4_starts, x, block[b], block[b + 1] + 1) - 1]
        else:
            node = self._v6_node[bisect_right(self._v6_starts, ip) - 1]
        if node < 0:
            return -1
        return self._seg_row[bisect_right(self._seg_start, at_us, self._node_off[node], self._node_off[node + 1]) - 1]

    def lookup_batch(self, ips: npt.NDArray[Any], times: npt.NDArray[Any]) -> npt.NDArray[np.int32]:
        """Allocation rows for many (address, time) pairs; -1 = not ours.

        ``ips``: a 1-D array of IPv4 addresses as integers (uint32, or int64 in 0..2**32-1), or an (N, 2) uint64
        array of (high, low) halves of 128-bit addresses in the shared space (IPv4 as ::ffff:a.b.c.d).
        ``times``: ``datetime64`` (UTC) or int64 epoch microseconds, one per address (or one for all).
        """
        arr = np.asarray(ips)
        t = times_to_us(times)
        if arr.ndim == 1:
            return self._lookup_v4(arr, t)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"ips must be 1-D IPv4 integers or (N, 2) uint64 halves, not shape {arr.shape}")
        pairs = arr.astype(np.uint64, copy=False)
        t = np.broadcast_to(t, (len(pairs),))
        out = np.empty(len(pairs), np.int32)
        mapped = (pairs[:, 0] == 0) & ((pairs[:, 1] >> np.uint64(32)) == np.uint64(0xFFFF))
        if mapped.any():
            v4 = (pairs[mapped, 1] & np.uint64(0xFFFF_FFFF)).astype(np.int64)
            out[mapped] = self._lookup_v4(v4, t[mapped])
        rest = ~mapped
        if rest.any():
            d = self._np
            keys = _pairs_to_keys(pairs[rest])
            order = np.argsort(keys) if len(keys) >= _SORT_MIN else np.arange(len(keys))
            e = np.searchsorted(d["v6_starts"], keys[order], "right") - 1
            part = np.empty(len(keys), np.int32)
            part[order] = self._segments(d["v6_node"][e], t[rest][order])
            out[rest] = part
        return out

    def _lookup_v4(self, ips: npt.NDArray[Any], t: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
        a = ips if ips.dtype == np.int64 else ips.astype(np.int64)
        if a.size and (int(a.min()) < 0 or int(a.max()) > 0xFFFF_FFFF):
            raise ValueError("IPv4 addresses must be integers in 0..2**32-1")
        t = np.broadcast_to(t, a.shape)
        d = self._np
        if len(a) < _SORT_MIN:
            return self._segments(d["v4_node"][np.searchsorted(d["v4_starts"], a, "right") - 1], t)
        # Sorted keys make every binary search walk cached memory: random lookups into a 10 MB table are
        # latency-bound, sorted ones are not. Two stable 16-bit passes are numpy's radix sort (LSD order).
        order = np.argsort((a & 0xFFFF).astype(np.uint16), kind="stable")
        order = order[np.argsort((a[order] >> 16).astype(np.uint16), kind="stable")]
        node = d["v4_node"][np.searchsorted(d["v4_starts"], a[order], "right") - 1]
        out = np.empty(len(a), np.int32)
        out[order] = self._segments(node, t[order])
        return out

    def _segments(self, node: npt.NDArray[np.int32], t: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
        """The winning row in each node's timeline at ``t``: a binary search run level by level over all queries.

        Each node's block starts at -infinity, so the answer lies in ``[lo, hi)``; ``_iterations`` levels (log2 of
        the longest block) settle every query. Level by level, the loads are independent gathers, not a chain.
        """
        d = self._np
        if not len(d["seg_start"]):
            return np.full(len(node), -1, np.int32)
        safe = np.maximum(node, 0)
        off, seg_start = d["node_off"], d["seg_start"]
        lo = off[safe]
        hi = off[safe + 1]
        for _ in range(self._iterations):
            mid = (lo + hi) >> 1
            take = seg_start[mid] <= t
            lo = np.where(take, mid, lo)
            hi = np.where(take, hi, mid)
        return np.where(node < 0, np.int32(-1), d["seg_row"][lo]).astype(np.int32, copy=False)

    # ------------------------------------------------------------------ records

    def info(self, row: int) -> AllocationInfo:
        """The allocation behind a row returned by a lookup."""
        svc = int(self.alloc_service[row])
        vt = int(self.alloc_to_us[row])
        return AllocationInfo(
            row=row,
            id=int(self.alloc_ids[row]),
            prefix=self.alloc_prefix[row],
            service_id=self.service_ids[svc],
            project_id=self.project_ids[svc],
            customer_id=self.customer_ids[svc],
            valid_from=from_us(int(self.alloc_from_us[row])),
            valid_to=None if vt >= POS_INF_US else from_us(vt),
        )

    def columns(self, rows: npt.NDArray[Any]) -> dict[str, npt.NDArray[Any]]:
        """Columns for batch results: allocation_id (int64, -1), service/project/customer ids (object, None)."""
        rows = np.asarray(rows)
        ok = rows >= 0
        safe = np.where(ok, rows, 0)
        svc = np.where(ok, self.alloc_service[safe] if len(self.alloc_service) else 0, -1)
        out: dict[str, npt.NDArray[Any]] = {
            "allocation_id": np.where(ok, self.alloc_ids[safe] if len(self.alloc_ids) else 0, -1)
        }
        for name, values in (
            ("service_id", self.service_ids),
            ("project_id", self.project_ids),
            ("customer_id", self.customer_ids),
        ):
            table = np.array([*values, None], dtype=object)
            out[name] = table[svc]  # -1 picks the trailing None
        return out

    def attribute(self, ip: str, at: datetime) -> Attribution:
        """Whose was ``ip`` at ``at``, with the reason (also when it was not ours: never covered, or not then)."""
        addr = ip_to_int(ip)
        at = as_utc(at)
        at_us = to_us(at)
        text = int_to_ip(addr)
        row = self.lookup(addr, at_us)
        if row >= 0:
            a = self.info(row)
            covering = self._chain(self.node_of(addr))
            extra = f"; most specific of {len(covering)} allocated prefixes covering it" if len(covering) > 1 else ""
            return Attribution(
                ip=text,
                at=at,
                service_id=a.service_id,
                project_id=a.project_id,
                customer_id=a.customer_id,
                allocation_id=a.id,
                prefix=a.prefix,
                valid_from=a.valid_from,
                valid_to=a.valid_to,
                reason=(
                    f"{text} is in {a.prefix}, allocated to service {a.service_id} {a.interval()} "
                    f"(allocation {a.id}){extra}"
                ),
            )
        return Attribution(ip=text, at=at, reason=self._why_not(addr, at_us, text, at))

    def _chain(self, node: int) -> list[int]:
        out = []
        while node >= 0:
            out.append(node)
            node = self._node_parent[node]
        return out

    def _why_not(self, addr: int, at_us: int, text: str, at: datetime) -> str:
        chain = self._chain(self.node_of(addr))
        if not chain:
            return f"not ours: no allocation covers {text} at any time"
        before: tuple[int, int] | None = None  # (valid_to, row): the latest allocation that ended by `at`
        after: tuple[int, int] | None = None  # (valid_from, row): the earliest that starts after `at`
        for node in chain:
            for row in self._node_rows[self._node_rows_off[node] : self._node_rows_off[node + 1]]:
                vf, vt = int(self.alloc_from_us[row]), int(self.alloc_to_us[row])
                if vt <= at_us and (before is None or vt > before[0]):
                    before = (vt, row)
                if vf > at_us and (after is None or vf < after[0]):
                    after = (vf, row)
        parts = [f"not ours at {iso(at)}: {text} is covered by {self._node_prefix[chain[0]]} but no allocation of it"]
        if len(chain) > 1:
            parts[0] += " or of its parent prefixes"
        parts[0] += " was valid then"
        if before is not None:
            b = self.info(before[1])
            parts.append(f"last held by service {b.service_id} via {b.prefix} {b.interval()} (allocation {b.id})")
        if after is not None:
            a = self.info(after[1])
            parts.append(
                f"next held by service {a.service_id} via {a.prefix} from {iso(a.valid_from)} (allocation {a.id})"
            )
        return "; ".join(parts)

    # ------------------------------------------------------------------ size

    def memory_bytes(self) -> int:
        """Approximate bytes held by the index (arrays, buffers and the Python lists of ids and bounds)."""
        total = sum(int(a.nbytes) for a in self._np.values() if a.base is None)  # views of buffers count below
        for arr in (self.alloc_ids, self.alloc_service, self.alloc_from_us, self.alloc_to_us):
            total += int(arr.nbytes)
        for buf in (
            self._node_parent,
            self._node_rows_off,
            self._node_rows,
            self._node_off,
            self._seg_start,
            self._seg_row,
            self._v4_starts,
            self._v4_node,
            self._v4_block,
        ):
            total += buf.itemsize * len(buf)
        for lst in (self.alloc_prefix, self._node_prefix, self._v6_starts, self._v6_node):
            total += sys.getsizeof(lst) + sum(sys.getsizeof(x) for x in lst)
        return total

    def stats(self) -> dict[str, int]:
        return {
            "allocations": len(self.alloc_ids),
            "prefixes": len(self._node_parent),
            "segments": len(self._seg_start),
            "v4_intervals": len(self._v4_starts),
            "v6_intervals": len(self._v6_starts),
            "memory_bytes": self.memory_bytes(),
        }
