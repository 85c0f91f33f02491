"""Flow files into FLOW_SCHEMA tables: AWS VPC flow logs, nfdump CSV, our CSV, Parquet.

* ``vpc``: AWS VPC flow log records, space-separated. Without a header line the version 2 default format
  (``version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action
  log-status``); with one, its field names in its order (a custom format), and the later versions' fields
  (``tcp-flags``, ``pkt-srcaddr`` ...) are read where we keep them and ignored otherwise. ``NODATA``/``SKIPDATA``
  records and ``-`` values carry no flow and are skipped (counted).
* ``nfdump-csv``: ``nfdump -o csv`` (1.7: ``ts,te,td,pr,sa,sp,da,dp,flg,pkt,byt``), times in UTC.
* ``csv``: our own columns (``time_start,time_end,proto,src_addr,dst_addr,src_port,dst_port,tcp_flags,packets,
  bytes``), times ISO 8601 or epoch milliseconds.
* ``parquet``: a file with FLOW_SCHEMA, or the CSV columns with addresses as text.

A bad record is a :class:`ParseError` naming the file, the line and the field; nothing of the file is taken.
"""

from __future__ import annotations

import gzip
import io
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from abusedesk.domain.errors import ParseError
from abusedesk.telemetry.schema import FLOW_SCHEMA, V4_PREFIX, flow_table

FORMATS = ("vpc", "nfdump-csv", "csv", "parquet")
VPC_V2 = [
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets",
    "bytes", "start", "end", "action", "log-status",
]  # fmt: skip
_PROTO_NAMES = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMP6": 58, "IPV6-ICMP": 58, "GRE": 47, "ESP": 50}
_NFDUMP_FLAGS = "CEUAPRSF"  # nfdump's flag letters, most significant bit first


def _nfdump_flags(text: str) -> int:
    return sum(1 << (7 - i) for i, ch in enumerate(text[-8:].rjust(8, ".")) if ch != ".")


def _nfdump_port(text: str) -> str:
    """nfdump writes an ICMP flow's destination port as type.code; flows carry it as type * 256 + code."""
    if "." not in text:
        return text
    t, _, c = text.partition(".")
    return str(int(t) * 256 + int(c)) if t.isdigit() and c.isdigit() else text


def sniff(path: Path) -> str:
    """The format a file looks like (its extension, else its first line)."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        return "parquet"
    head = _open_text(path).readline().strip()
    if head.startswith("ts,te,td,pr"):
        return "nfdump-csv"
    if head.startswith("time_start,") or "src_addr" in head.split(",")[:6]:
        return "csv"
    return "vpc"


def _open_text(path: Path) -> io.TextIOBase:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return io.StringIO(raw.decode("utf-8", errors="strict"))


def _bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def read_flow_file(path: Path, fmt: str | None = None) -> pa.Table:
    """``path`` as one FLOW_SCHEMA table (``exporter`` = the file's name)."""
    fmt = fmt or sniff(path)
    readers: dict[str, Callable[[Path], pa.Table]] = {
        "vpc": read_vpc, "nfdump-csv": read_nfdump_csv, "csv": read_csv, "parquet": read_parquet,
    }  # fmt: skip
    if fmt not in readers:
        raise ParseError(f"unknown flow file format {fmt!r}; choose one of {', '.join(FORMATS)}", source=str(path))
    try:
        return readers[fmt](path)
    except UnicodeDecodeError as exc:
        raise ParseError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); is --format right?",
                         source=str(path), offset=exc.start) from None  # fmt: skip


def _addr_keys(values: pl.Series, path: Path, field: str, line_of: Callable[[int], int]) -> np.ndarray[Any, Any]:
    """Text addresses → (N, 16) keys, parsing each distinct address once."""
    uniq = values.unique()
    table: dict[str, bytes] = {}
    for text in uniq.to_list():
        try:
            a = ipaddress.ip_address(str(text).strip())
        except ValueError:
            bad = int(values.to_frame("v").with_row_index("i").filter(pl.col("v") == text)["i"][0])
            raise ParseError(f"{field} {text!r} is not an IP address in {path.name}", source=str(path),
                             line=line_of(bad)) from None  # fmt: skip
        table[str(text)] = V4_PREFIX + a.packed if a.version == 4 else a.packed
    keys = values.replace_strict(list(table), list(table.values()), return_dtype=pl.Binary)
    return np.frombuffer(b"".join(keys.to_list()), np.uint8).reshape(-1, 16)


def _ints(df: pl.DataFrame, col: str, path: Path, line_of: Callable[[int], int], dtype: Any = pl.Int64) -> Any:
    s = df[col].cast(dtype, strict=False)
    bad = s.is_null() & df[col].is_not_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise ParseError(f"{col} {df[col][i]!r} is not a number in {path.name}", source=str(path), line=line_of(i))
    return s.fill_null(0).to_numpy()


def _finish(path: Path, cols: dict[str, Any], n: int) -> pa.Table:
    return flow_table(cols, [path.name], np.zeros(n, np.int32))


def read_vpc(path: Path) -> pa.Table:
    text = _open_text(path).read()
    lines = text.splitlines()
    if not lines:
        return FLOW_SCHEMA.empty_table()
    first = lines[0].split()
    has_header = bool(first) and not first[0].isdigit() and first[0] != "-"
    fields = first if has_header else VPC_V2
    need = {"srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end"}
    missing = need - set(fields)
    if missing:
        raise ParseError(f"VPC flow log {path.name} lacks the fields {', '.join(sorted(missing))} in its header",
                         source=str(path), line=1)  # fmt: skip
    body = lines[1:] if has_header else lines
    offset = 2 if has_header else 1
    rows = [ln.split() for ln in body if ln.strip()]
    for i, r in enumerate(rows):
        if len(r) != len(fields):
            raise ParseError(f"VPC record has {len(r)} fields, the header {len(fields)}, in {path.name}",
                             source=str(path), line=i + offset)  # fmt: skip
    df = pl.DataFrame(rows, schema=list(fields), orient="row") if rows else pl.DataFrame(schema=list(fields))
    df = df.with_row_index("_line")
    if "log-status" in df.columns:
        df = df.filter(~pl.col("log-status").is_in(["NODATA", "SKIPDATA"]))
    df = df.filter(~pl.any_horizontal([pl.col(c) == "-" for c in sorted(need)]))
    lines_idx = df["_line"].to_numpy()

    def line_of(i: int) -> int:
        return int(lines_idx[i]) + offset

    n = df.height
    flags = _ints(df, "tcp-flags", path, line_of) if "tcp-flags" in df.columns else np.zeros(n, np.int64)
    cols = {
        "time_start": _ints(df, "start", path, line_of) * 1000,
        "time_end": _ints(df, "end", path, line_of) * 1000,
        "proto": _ints(df, "protocol", path, line_of),
        "src_addr": _addr_keys(df["srcaddr"], path, "srcaddr", line_of),
        "dst_addr": _addr_keys(df["dstaddr"], path, "dstaddr", line_of),
        "src_port": _ints(df, "srcport", path, line_of),
        "dst_port": _ints(df, "dstport", path, line_of),
        "tcp_flags": flags & 0xFF,
        "packets": _ints(df, "packets", path, line_of),
        "bytes": _ints(df, "bytes", path, line_of),
    }
    return _finish(path, cols, n)


def read_nfdump_csv(path: Path) -> pa.Table:
    df = pl.read_csv(io.BytesIO(_bytes(path)), infer_schema_length=0)
    need = ["ts", "te", "pr", "sa", "sp", "da", "dp", "flg", "pkt", "byt"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ParseError(f"nfdump CSV {path.name} lacks the columns {', '.join(missing)}", source=str(path), line=1)
    # nfdump appends a summary block after an empty line in older versions: stop at the first row without a time
    df = df.filter(pl.col("te").is_not_null())
    # nfdump 1.7's CSV abbreviates IPv6 addresses longer than 16 characters ("fe80::3..31:783c"): such a row has
    # lost its addresses and is skipped, counted in the table's metadata (``skipped``)
    abbreviated = pl.col("sa").str.contains("..", literal=True) | pl.col("da").str.contains("..", literal=True)
    skipped = int(df.select(abbreviated.sum()).item())
    df = df.filter(~abbreviated)

    def line_of(i: int) -> int:
        return i + 2

    times = {}
    for c in ("ts", "te"):
        t = df[c].str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC", strict=False)
        if t.is_null().any():
            i = int(t.is_null().arg_true()[0])
            raise ParseError(f"{c} {df[c][i]!r} is not a time in {path.name}", source=str(path), line=line_of(i))
        times[c] = t.dt.epoch("ms").to_numpy()
    proto = df["pr"].map_elements(lambda v: _PROTO_NAMES.get(v.strip().upper(), v), return_dtype=pl.String)
    dp = df["dp"].map_elements(_nfdump_port, return_dtype=pl.String)
    flags = df["flg"].map_elements(_nfdump_flags, return_dtype=pl.Int64)
    tmp = df.with_columns(proto.alias("pr"), dp.alias("dp"))
    cols = {
        "time_start": times["ts"],
        "time_end": times["te"],
        "proto": _ints(tmp, "pr", path, line_of),
        "src_addr": _addr_keys(df["sa"], path, "sa", line_of),
        "dst_addr": _addr_keys(df["da"], path, "da", line_of),
        "src_port": _ints(tmp, "sp", path, line_of),
        "dst_port": _ints(tmp, "dp", path, line_of),
        "tcp_flags": flags.to_numpy(),
        "packets": _ints(tmp, "pkt", path, line_of),
        "bytes": _ints(tmp, "byt", path, line_of),
    }
    table = _finish(path, cols, df.height)
    return table.replace_schema_metadata({"skipped": str(skipped)}) if skipped else table


_CSV_COLS = ["time_start", "time_end", "proto", "src_addr", "dst_addr", "src_port", "dst_port", "tcp_flags",
             "packets", "bytes"]  # fmt: skip


def _from_text_frame(df: pl.DataFrame, path: Path, line_of: Callable[[int], int]) -> pa.Table:
    missing = [c for c in _CSV_COLS if c not in df.columns]
    if missing:
        raise ParseError(f"flow file {path.name} lacks the columns {', '.join(missing)}", source=str(path), line=1)
    times = {}
    for c in ("time_start", "time_end"):
        s = df[c]
        if s.dtype.is_temporal():
            times[c] = s.dt.replace_time_zone(None).dt.epoch("ms").to_numpy()
            continue
        s = s.cast(pl.String)
        as_int = s.cast(pl.Int64, strict=False)
        as_time = s.str.to_datetime(time_zone="UTC", strict=False)
        ok = as_int.is_not_null() | as_time.is_not_null()
        if not ok.all():
            i = int((~ok).arg_true()[0])
            raise ParseError(f"{c} {s[i]!r} is neither ISO 8601 nor epoch ms in {path.name}", source=str(path),
                             line=line_of(i))  # fmt: skip
        times[c] = as_int.fill_null(as_time.dt.epoch("ms")).to_numpy()
    cols = {
        **times,
        "src_addr": _addr_keys(df["src_addr"].cast(pl.String), path, "src_addr", line_of),
        "dst_addr": _addr_keys(df["dst_addr"].cast(pl.String), path, "dst_addr", line_of),
    }
    for c in ("proto", "src_port", "dst_port", "tcp_flags", "packets", "bytes"):
        cols[c] = _ints(df, c, path, line_of)
    return _finish(path, cols, df.height)


def read_csv(path: Path) -> pa.Table:
    df = pl.read_csv(io.BytesIO(_bytes(path)), infer_schema_length=0)
    return _from_text_frame(df, path, lambda i: i + 2)


def read_parquet(path: Path) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ParseError(f"{path.name} is not a readable Parquet file: {exc}", source=str(path)) from None
    if table.schema.equals(FLOW_SCHEMA):
        return table
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    if "src_addr" in df.columns and df.schema["src_addr"] == pl.Binary:
        df = df.with_columns(
            [pl.col(c).map_elements(lambda b: str(ipaddress.ip_address(b[12:] if b[:12] == V4_PREFIX else b)),
                                    return_dtype=pl.String) for c in ("src_addr", "dst_addr")]
        )  # fmt: skip
    return _from_text_frame(df, path, lambda i: i + 1)
