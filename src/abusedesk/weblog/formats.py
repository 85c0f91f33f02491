"""Egress HTTP log lines → columns (pyarrow), a chunk of lines at a time, regexes run vectorised (RE2).

Formats (docs/admin/weblogs.md has the field mapping):

- ``squid``: Squid's native ``access.log`` line — ``time.ms elapsed client code/status bytes method URL ident
  hierarchy/peer type`` — with the request's User-Agent appended in double quotes when the proxy logs it
  (``logformat abusedesk``, docs/admin/weblogs.md). Without it the agent is unknown (not empty).
- ``combined``: ``client ident user [dd/Mon/yyyy:HH:MM:SS +zzzz] "METHOD URL HTTP/x" status bytes "referer" "UA"``
  (Apache/nginx, and Squid's built-in ``combined`` logformat); a proxy logs the absolute URL.
- ``jsonl``: one JSON object a line: ``time`` (ISO 8601 or epoch seconds), ``client``, ``method``, ``url``,
  ``status``, ``bytes``, ``user_agent``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from abusedesk.domain.timeutil import parse_time

FORMATS = ("squid", "combined", "jsonl")

_SQUID = (
    r"^\s*(?P<ts>\d+(?:\.\d+)?)\s+\d+\s+(?P<client>\S+)\s+\S+?/(?P<status>\d{3})\s+(?P<bytes>\d+)\s+"
    r'(?P<method>\S+)\s+(?P<url>\S+)\s+\S+\s+\S+\s+\S+(?:\s+"(?P<ua>[^"]*)")?\s*$'
)
_COMBINED = (
    r'^(?P<client>\S+)\s+\S+\s+\S+\s+\[(?P<ts>[^\]]+)\]\s+"(?P<method>[A-Z]+)\s+(?P<url>\S+)(?:\s+[^"]*)?"\s+'
    r'(?P<status>\d{3})\s+(?P<bytes>\d+|-)(?:\s+"(?:[^"\\]|\\.)*"\s+"(?P<ua>(?:[^"\\]|\\.)*)")?.*$'
)
_URL = r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?(?P<host>[^/?#]*)(?P<path>[^#]*)"


@dataclass(slots=True)
class Chunk:
    """A chunk of requests as columns; ``bad`` lists (line number, reason) of lines that did not parse."""

    table: pa.Table  # time (float64 epoch s), client, method, host, scheme, path, status (int32), ua (nullable)
    bad: list[tuple[int, str]]


def parse_lines(lines: list[str], fmt: str, first_line: int = 1) -> Chunk:
    """The requests in ``lines`` (one log line each, no line ends), ``first_line`` the number of the first."""
    if fmt == "jsonl":
        return _parse_jsonl(lines, first_line)
    if fmt not in FORMATS:
        raise ValueError(f"unknown weblog format {fmt!r}; choose one of {', '.join(FORMATS)}")
    arr = pa.array(lines, pa.string())
    parts = pc.extract_regex(arr, _SQUID if fmt == "squid" else _COMBINED)
    ok = pc.is_valid(parts)
    bad = [(first_line + i, f"line {first_line + i} is not a {fmt} log line") for i in
           pc.indices_nonzero(pc.invert(ok)).to_pylist() if lines[i].strip()]  # fmt: skip
    parts = parts.filter(ok)
    if fmt == "squid":  # Squid logs connections that ended before a request line (method "-"): no request
        real = pc.not_equal(parts.field("method"), "-")
        parts, arr = parts.filter(real), pc.array_filter(arr, ok).filter(real)
    else:
        arr = pc.array_filter(arr, ok)
    ts = parts.field("ts")
    if fmt == "squid":
        times = pc.cast(ts, pa.float64())
    else:
        stamps = pc.strptime(ts, format="%d/%b/%Y:%H:%M:%S %z", unit="s", error_is_null=True)
        times = pc.divide(pc.cast(pc.cast(stamps, pa.int64()), pa.float64()), 1.0)
    ua = parts.field("ua")
    if fmt == "squid":  # an absent group reads as "": whether the line carries an agent is the closing quote
        ua = pc.if_else(pc.match_substring_regex(arr, r'"\s*$'), ua, pa.scalar(None, pa.string()))
    if fmt == "combined":
        ua = pc.if_else(pc.equal(ua, "-"), "", ua)
    return Chunk(_with_url(parts.field("client"), times, parts.field("method"), parts.field("url"),
                           pc.cast(parts.field("status"), pa.int32()), ua), bad)  # fmt: skip


def _with_url(client: pa.Array, times: pa.Array, method: pa.Array, url: pa.Array, status: pa.Array,
              ua: pa.Array) -> pa.Table:  # fmt: skip
    u = pc.extract_regex(url, _URL)
    host = pc.utf8_lower(u.field("host"))
    host = pc.if_else(pc.equal(host, ""), "-", host)  # an origin-form request line names no host
    scheme = pc.if_else(pc.equal(u.field("scheme"), ""), "http", u.field("scheme"))
    # CONNECT host:443 has no path: a tunnel, judged as a request for the host's root
    path = pc.if_else(pc.equal(u.field("path"), ""), "/", u.field("path"))
    return pa.table({"time": times, "client": client, "method": method, "host": host,
                     "scheme": scheme, "path": path, "status": status, "ua": ua})  # fmt: skip


def _parse_jsonl(lines: list[str], first_line: int) -> Chunk:
    cols: dict[str, list[object]] = {k: [] for k in ("time", "client", "method", "url", "status", "ua")}
    bad: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        number = first_line + i
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
            cols["time"].append(_epoch(item["time"]))
            cols["client"].append(str(item["client"]))
            cols["method"].append(str(item.get("method") or "GET"))
            cols["url"].append(str(item["url"]))
            cols["status"].append(int(item.get("status") or 0))
            agent = item.get("user_agent")
            cols["ua"].append(None if agent is None else str(agent))
        except (ValueError, KeyError, TypeError) as exc:
            for col in cols.values():  # keep the columns aligned: drop what this line added
                del col[len(cols["ua"]) :]
            bad.append((number, f"line {number}: {exc}"))
    return Chunk(_with_url(pa.array(cols["client"], pa.string()), pa.array(cols["time"], pa.float64()),
                           pa.array(cols["method"], pa.string()), pa.array(cols["url"], pa.string()),
                           pa.array(cols["status"], pa.int32()), pa.array(cols["ua"], pa.string())), bad)  # fmt: skip


def _epoch(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        when: datetime = parse_time(value)
        return when.timestamp()
    raise ValueError(f"time {value!r} is neither ISO 8601 nor epoch seconds")
