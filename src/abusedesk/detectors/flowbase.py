"""What the flow detectors share: the batch shape, tumbling windows as explicit state, findings with samples.

A flow detector's batch is one partition's frame (one service's flows, attributed by the flow stage,
``abusedesk.telemetry.stage``): the FLOW_SCHEMA columns (addresses as their integer key columns, below; the
flows stage does not hand over the 16-byte columns), plus ``service_id``, ``project_id``, ``customer_id`` and
``spoofed`` (the source address was allocated to no one and the flow was attributed by its ingress interface).
Detectors work on it with Polars, vectorised: one filter and one group-by per batch, never a Python loop over flows.

Addresses are grouped as integers: each 16-byte address column has two ``uint64`` key columns beside it (its high
and low halves, big-endian: ``src_hi``/``src_lo``, ``dst_hi``/``dst_lo``; the flows stage adds them from the halves
its attribution already computed, ``with_addr_keys`` otherwise). A detector names ``src_addr``/``dst_addr`` in its
keys; the base groups by the two halves instead (Polars groups two u64 columns about twice as fast as one 16-byte
binary) and turns them back into addresses only for the few rows that become findings. Both halves are always in
the key, so an IPv6 address never groups with the IPv4-mapped address that shares its low half.

Windows are tumbling (aligned to the epoch), per group key. The state of a partition is two small tables: the
open windows' partial aggregates (``rows``: for a distinct count the distinct (window, key, value) triples, for a
sum the running sums) and the (window, key) pairs already reported. A batch's aggregates are merged into the
state with one concat and one group-by; a key is reported when its window's aggregate first crosses the
threshold (at once, not when the window closes); ``flush`` drops the windows that closed before the watermark.
A distinct count keeps at most its threshold's number of values per open (window, key), and nothing for a key
already reported; a sum keeps what ``keep`` says is worth it. So the state is bounded by the open windows' keys,
not by the input; ``dump_state`` writes each frame as base64 Arrow IPC inside the JSON that the detector runner
checkpoints with the stage's outputs.
"""

from __future__ import annotations

import base64
import io
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from abusedesk.detectors.base import Detector
from abusedesk.domain.records import Event, Finding
from abusedesk.telemetry.schema import TCP_ACK, TCP_SYN, addr_text, key_halves

SAMPLE_ROWS = 5
#: an address column → its integer key columns (the high and low 64 bits of the 16-byte key)
ADDR_KEYS: dict[str, tuple[str, str]] = {"src_addr": ("src_hi", "src_lo"), "dst_addr": ("dst_hi", "dst_lo")}


@dataclass(slots=True)
class WindowState:
    rows: pl.DataFrame | None = None
    reported: pl.DataFrame | None = None


def frame(batch: pa.Table | pl.DataFrame) -> pl.DataFrame:
    if isinstance(batch, pl.DataFrame):
        return batch
    out = pl.from_arrow(batch)
    assert isinstance(out, pl.DataFrame)
    return out


def with_ms(df: pl.DataFrame) -> pl.DataFrame:
    """``ts``/``te`` as int64 epoch ms beside the timestamps (the flows stage adds them once for all detectors)."""
    if "ts" in df.columns and "te" in df.columns:
        return df
    return df.with_columns(
        pl.col("time_start").dt.epoch("ms").alias("ts"), pl.col("time_end").dt.epoch("ms").alias("te")
    )


def with_addr_keys(df: pl.DataFrame, halves: dict[str, npt.NDArray[np.uint64]] | None = None) -> pl.DataFrame:
    """The ``*_hi``/``*_lo`` uint64 key columns beside each address column, from ``halves`` ((N, 2) arrays the
    caller already has, by address column) or computed from the 16-byte values."""
    new = []
    for col, (hi, lo) in ADDR_KEYS.items():
        if hi in df.columns and lo in df.columns:
            continue
        if halves is not None and col in halves:
            h = halves[col]
        elif col in df.columns:
            h = address_halves(df[col])
        else:
            continue
        new += [pl.Series(hi, h[:, 0], pl.UInt64), pl.Series(lo, h[:, 1], pl.UInt64)]
    return df.with_columns(new) if new else df


def address_halves(column: pl.Series) -> npt.NDArray[np.uint64]:
    """A column of 16-byte addresses as (N, 2) uint64 (high, low); a value of another length is an error."""
    arr = column.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        raise ValueError(f"flow column {column.name}: {arr.null_count} null address(es)")
    try:
        fixed = arr.cast(pa.binary(16))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"flow column {column.name}: an address is not a 16-byte key ({exc})") from None
    return key_halves(fixed)


def addr_key_cols(names: Iterable[str]) -> list[str]:
    """Column names with each address column replaced by its two integer key columns."""
    return [c for name in names for c in ADDR_KEYS.get(name, (name,))]


#: most bucket bits of ``heavy_buckets``' sketch: 2^20 buckets (8 MB of sums) for a chunk of a million flows or
#: more; a smaller frame (one service's partition) gets about two buckets a row, so its sketch costs what it holds
SKETCH_BITS = 20


def heavy_buckets(
    hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64], weight: npt.NDArray[Any], need: int
) -> npt.NDArray[np.bool_]:
    """Per row: whether its key (hi, lo) may total ``need`` or more of ``weight`` — its hash bucket's total does.

    Weights are non-negative, so a key's total never exceeds its bucket's: a False is exact, a True only says
    "group it exactly". One multiply-xor hash and one ``np.bincount``: no sort, no hash table of keys."""
    if len(hi) == 0:
        return np.zeros(0, bool)
    with np.errstate(over="ignore"):
        h = (lo * np.uint64(0x9E3779B97F4A7C15)) ^ (hi * np.uint64(0xC2B2AE3D27D4EB4F))
        h ^= h >> np.uint64(31)
        h *= np.uint64(0xFF51AFD7ED558CCD)
    bits = min(SKETCH_BITS, max(8, len(hi).bit_length() + 1))
    bucket = (h >> np.uint64(64 - bits)).astype(np.intp)
    sums = np.bincount(bucket, weights=weight.astype(np.float64), minlength=1 << bits)
    return np.asarray(sums[bucket] >= need)


def _join_halves(hi: int, lo: int) -> bytes:
    return ((hi << 64) | lo).to_bytes(16, "big")


#: how the partial aggregates of ``sum_aggregates`` combine
SUMS: dict[str, str] = {"flows": "sum", "packets": "sum", "bytes": "sum", "first": "min", "last": "max"}


def sum_aggregates() -> list[pl.Expr]:
    """The aggregates every summed detector keeps per (window, key)."""
    return [
        pl.len().cast(pl.Int64).alias("flows"),
        pl.col("packets").sum().cast(pl.Int64),
        pl.col("bytes").sum().cast(pl.Int64),
        pl.col("ts").min().alias("first"),
        pl.col("te").max().alias("last"),
    ]


def failed_tcp(df: pl.DataFrame) -> pl.Expr:
    """A TCP connection attempt that never completed from the initiator's side: SYN seen, ACK never (Zeek's
    "failed connection"; an nmap SYN scan's SYN+RST flows qualify)."""
    return (pl.col("proto") == 6) & ((pl.col("tcp_flags") & (TCP_SYN | TCP_ACK)) == TCP_SYN)


def tcp_attempt() -> pl.Expr:
    """A TCP flow that opened a connection (SYN seen)."""
    return (pl.col("proto") == 6) & ((pl.col("tcp_flags") & TCP_SYN) != 0)


def _encode(df: pl.DataFrame) -> str:
    """A state frame as base64 Arrow IPC (zstd): JSON-able, and fast for the large states of busy windows."""
    buf = io.BytesIO()
    df.write_ipc(buf, compression="zstd")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _decode(text: str) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(base64.b64decode(text)))


class FlowDetector(Detector):
    """Base of the windowed flow detectors: subclasses give ``aggregate`` and ``crossed`` and a finding text."""

    consumes: ClassVar[str] = "flows"
    kind: ClassVar[str]
    #: the group key columns (besides the window)
    keys: ClassVar[tuple[str, ...]]
    #: column whose distinct values are counted, or None for summed aggregates
    distinct: ClassVar[str | None] = None
    #: for sums: the aggregate columns and how two partial aggregates combine
    sums: ClassVar[dict[str, str]] = {}

    def window_ms(self) -> int:
        """The longest window this detector keeps (what ``flush`` keeps open)."""
        return int(getattr(self.params, "window_seconds", 300) * 1000)

    def window_start(self) -> pl.Expr:
        w = self.window_ms()
        return (pl.col("ts") // w) * w

    def new_state(self) -> WindowState:
        return WindowState()

    # ----------------------------------------------------------------- what a subclass gives

    def candidates(self, df: pl.DataFrame) -> pl.DataFrame:
        """The flows this detector looks at."""
        return df

    def partial(self, df: pl.DataFrame) -> pl.DataFrame:
        """Per (w, keys): the batch's partial aggregates (summed detectors): flows, packets, bytes, first, last,
        and the detector's ``extra_aggregates``."""
        return df.group_by(["w", *addr_key_cols(self.keys)]).agg(*sum_aggregates(), *self.extra_aggregates())

    def extra_aggregates(self) -> list[pl.Expr]:
        return []

    def keep(self) -> pl.Expr | None:
        """Summed detectors: which open-window aggregates are worth keeping in the state (None: all). A detector
        whose keys are nearly one per flow (a flood's (source, target)) keeps only those with a real share of its
        threshold, so its state stays small; a later batch can then undercount a key by less than that share."""
        return None

    def crossed(self, agg: pl.DataFrame) -> pl.Expr:
        """Which merged aggregates are findings."""
        raise NotImplementedError

    def describe(self, row: dict[str, Any]) -> tuple[str, str, float]:
        """(summary, group key, confidence) of a crossing aggregate row (addresses as text)."""
        raise NotImplementedError

    def kind_of(self, row: dict[str, Any]) -> str:
        return self.kind

    # ----------------------------------------------------------------- the shared machinery

    def detect(self, batch: Sequence[Event] | Any, state: Any = None) -> list[Finding]:
        st = state if isinstance(state, WindowState) else WindowState()
        df = frame(batch)
        if df.height == 0:
            return []
        df = with_addr_keys(with_ms(df))
        cand = self.candidates(df)
        if cand.height == 0:
            return []
        cand = cand.with_columns(self.window_start().alias("w"))
        group = ["w", *addr_key_cols(self.keys)]
        if self.distinct is not None:
            values = [*group, *addr_key_cols([self.distinct])]
            part = cand.group_by(values).agg(
                pl.col("ts").min().alias("first"), pl.col("te").max().alias("last"), pl.len().alias("flows")
            )
            merged = part if st.rows is None else pl.concat([st.rows, part], how="vertical_relaxed")
            merged = merged.group_by(values).agg(pl.col("first").min(), pl.col("last").max(), pl.col("flows").sum())
            # merged holds each (window, key, value) once: the distinct count is the group's length
            agg = merged.group_by(group).agg(
                pl.len().alias("distinct"),
                pl.col("first").min(),
                pl.col("last").max(),
                pl.col("flows").sum(),
            )
            if self.distinct in ("dst_port", "src_port"):
                agg = agg.join(
                    merged.group_by(group).agg(pl.col(self.distinct).sort().head(20).alias("values")), on=group
                )
        else:
            part = self.partial(cand)
            merged = part if st.rows is None else pl.concat([st.rows, part], how="vertical_relaxed")
            merged = merged.group_by(group).agg([getattr(pl.col(c), how)().alias(c) for c, how in self.sums.items()])
            agg = merged
            keep = self.keep()
            st.rows = merged if keep is None else merged.filter(keep)
        hits = agg.filter(self.crossed(agg))
        if st.reported is not None and hits.height:
            hits = hits.join(st.reported, on=group, how="anti")
        if hits.height:
            done = hits.select(group)
            st.reported = done if st.reported is None else pl.concat([st.reported, done], how="vertical_relaxed")
        if self.distinct is not None:
            # the state keeps, per open (window, key), at most as many distinct values as the threshold needs, and
            # none for a key already reported in its window: bounded by keys × threshold, not by the flows
            kept = merged if st.reported is None else merged.join(st.reported, on=group, how="anti")
            cap = self.distinct_cap()
            st.rows = kept.group_by(group).head(cap)
        if hits.height == 0:
            return []
        return self._findings(hits, cand, df)

    def distinct_cap(self) -> int:
        """Most distinct values kept per (window, key): the largest threshold of the detector's parameters."""
        values = [v for k, v in self.params.model_dump().items() if k.startswith("min_") and isinstance(v, int)]
        return max(values, default=1000)

    def _findings(self, hits: pl.DataFrame, cand: pl.DataFrame, df: pl.DataFrame) -> list[Finding]:
        first = df.row(0, named=True)
        out: list[Finding] = []
        group = ["w", *addr_key_cols(self.keys)]
        hits = hits.sort([*addr_key_cols(self.keys), "w"]).with_row_index("_hit")
        # every hit's sample in one join (the first SAMPLE_ROWS candidate flows of its window and key, in order)
        samples = (
            cand.join(hits.select("_hit", *group), on=group, how="inner", maintain_order="left")
            .group_by("_hit", maintain_order=True)
            .head(SAMPLE_ROWS)
            .partition_by("_hit", as_dict=True, include_key=False)
        )
        for row in hits.iter_rows(named=True):
            sample = samples.get((row.pop("_hit"),), cand.clear())
            for col, (hi, lo) in ADDR_KEYS.items():
                if hi in row:
                    row[col] = _join_halves(row.pop(hi), row.pop(lo))
            row = {k: row[k] for k in ("w", *self.keys)} | row  # the aggregate's keys in the detector's order
            text_row = {k: (addr_text(v) if isinstance(v, bytes) and len(v) == 16 else v) for k, v in row.items()}
            summary, group_key, confidence = self.describe(text_row)
            kind = self.kind_of(text_row)
            aggregate = {k: v for k, v in text_row.items() if k not in ("w",)}
            aggregate["window_start"] = _iso_ms(row["w"])
            aggregate["window_seconds"] = self.window_ms() // 1000
            out.append(
                Finding.create(
                    detector=self.name,
                    kind=kind,
                    clauses=self.policy.clauses_for_kind(kind),
                    group_key=group_key,
                    window_start=_dt(row["first"]),
                    window_end=_dt(max(row["last"], row["first"])),
                    severity=self.policy.severity_for_kind(kind),
                    confidence=confidence,
                    summary=summary,
                    subject_ip=text_row.get("src_addr") or None,
                    customer_id=first.get("customer_id"),
                    project_id=first.get("project_id"),
                    service_id=first.get("service_id"),
                    evidence=({"aggregate": aggregate}, {"flows": sample_rows(sample)}),
                )
            )
        return out

    def flush(self, state: Any, watermark: datetime) -> list[Finding]:
        """Drop the windows that closed before the watermark (their findings went out when they crossed)."""
        if not isinstance(state, WindowState) or state.rows is None:
            return []
        w = self.window_ms()
        cutoff = int(watermark.timestamp() * 1000) - w  # a window [s, s + w) closed when watermark ≥ s + w
        state.rows = state.rows.filter(pl.col("w") > cutoff)
        if state.reported is not None:
            state.reported = state.reported.filter(pl.col("w") > cutoff)
        return []

    def dump_state(self, state: Any) -> dict[str, Any]:
        st = state if isinstance(state, WindowState) else WindowState()
        out: dict[str, Any] = {}
        for name in ("rows", "reported"):
            df = getattr(st, name)
            if df is not None and df.height:
                out[name] = _encode(df)
        return out

    def load_state(self, data: dict[str, Any]) -> WindowState:
        st = WindowState()
        for name in ("rows", "reported"):
            if name in data:
                df = _decode(data[name])
                # a state checkpointed before addresses were keyed as integers holds the 16-byte columns
                if any(c in df.columns for c in ADDR_KEYS):
                    df = with_addr_keys(df).select(addr_key_cols(df.columns))
                setattr(st, name, df)
        return st


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _iso_ms(ms: int) -> str:
    return _dt(ms).isoformat().replace("+00:00", "Z")


SAMPLE_COLUMNS = ["ts", "te", "proto", "src_port", "dst_port", "tcp_flags", "packets", "bytes", "exporter"]


def sample_rows(df: pl.DataFrame) -> list[dict[str, Any]]:
    """Flow rows for evidence: the FLOW_SCHEMA fields, addresses and times as text."""
    rows = []
    cols = [c for c in SAMPLE_COLUMNS if c in df.columns] + addr_key_cols(ADDR_KEYS)
    for r in df.select(cols).iter_rows(named=True):
        for col, (hi, lo) in ADDR_KEYS.items():
            r[col] = _join_halves(r[hi], r[lo])
        rows.append(
            {
                "time_start": _iso_ms(r["ts"]),
                "time_end": _iso_ms(r["te"]),
                "proto": r["proto"],
                "src": addr_text(r["src_addr"]),
                "src_port": r["src_port"],
                "dst": addr_text(r["dst_addr"]),
                "dst_port": r["dst_port"],
                "tcp_flags": r["tcp_flags"],
                "packets": r["packets"],
                "bytes": r["bytes"],
                "exporter": r.get("exporter"),
            }
        )
    return rows


def cidr_mask(column: str, cidrs: Sequence[str]) -> pl.Expr:
    """``column`` (an address column, tested on its integer key columns) inside any of ``cidrs``: a 128-bit range
    test as two 64-bit comparisons, no text."""
    hi_col, lo_col = ADDR_KEYS[column]
    hi, lo = pl.col(hi_col), pl.col(lo_col)
    expr = pl.lit(False)
    for text in cidrs:
        net = ipaddress.ip_network(text, strict=False)
        first, last = int(net.network_address), int(net.broadcast_address)
        if net.version == 4:
            first, last = first | 0xFFFF_0000_0000, last | 0xFFFF_0000_0000  # ::ffff:a.b.c.d
        (f_hi, f_lo), (l_hi, l_lo) = divmod(first, 1 << 64), divmod(last, 1 << 64)

        def u64(v: int) -> pl.Expr:
            return pl.lit(v, pl.UInt64)

        above = (hi > u64(f_hi)) | ((hi == u64(f_hi)) & (lo >= u64(f_lo)))
        below = (hi < u64(l_hi)) | ((hi == u64(l_hi)) & (lo <= u64(l_lo)))
        expr = expr | (above & below)
    return expr
