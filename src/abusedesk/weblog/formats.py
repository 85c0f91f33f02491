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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from abusedesk.domain.timeutil import parse_time

FORMATS = ("squid", "combined", "jsonl")

_SQUID = (
    r"^\s*(?P<ts>\d+(?:\.\d+)?)\s+\d+\s+(?P<client>\S+)\s+\S+?/(?P<status>\d{3})\s+(?P<bytes>\d+)\s+"
    r'(?P<method>\S+)\s+(?P<url>\S+)\s+\S+\s+\S+\s+\S+(?:\s+(?P<ua>"[^"]*"))?\s*$'
)
_COMBINED = (
    r'^(?P<client>\S+)\s+\S+\s+\S+\s+\[(?P<ts>[^\]]+)\]\s+"(?P<method>[A-Z]+)\s+(?P<url>\S+)(?:\s+[^"]*)?"\s+'
    r'(?P<status>\d{3})\s+(?P<bytes>\d+|-)(?:\s+"(?:[^"\\]|\\.)*"\s+"(?P<ua>(?:[^"\\]|\\.)*)")?.*$'
)
_URL = r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?(?P<host>[^/?#]*)(?P<path>[^#]*)"


@dataclass(slots=True)
class Chunk:
    """A chunk of requests as columns; ``bad`` lists (line number, reason) of lines that did not parse."""

    # time (float64 epoch s), client, method, host, scheme, path, status (int32), ua (nullable), line (int64)
    table: pa.Table
    bad: list[tuple[int, str]]


def split_lines(data: bytes) -> pa.Array:
    """``data`` (whole lines, each ending in a newline) as one string array, a line an element, without copying
    the bytes when they are valid UTF-8 (else decoded with replacement characters: a bad byte spoils a field, not
    the log). A final line without its newline is kept."""
    if not data:
        return pa.array([], pa.large_string())
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    starts = np.concatenate([np.zeros(1, np.int64), ends + 1])
    offsets = np.concatenate([starts, [len(data)]]) if starts[-1] < len(data) else starts
    count = len(offsets) - 1
    lines = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(data))
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        text = data.decode("utf-8", "replace").encode()
        return split_lines(text)
    # the newline is not part of the line (a CR before it neither: CRLF logs)
    return pc.utf8_rtrim(lines, characters="\r\n")


def parse_lines(lines: list[str] | pa.Array, fmt: str, first_line: int = 1) -> Chunk:
    """The requests in ``lines`` (one log line each, no line ends), ``first_line`` the number of the first."""
    if fmt == "jsonl":
        text = lines if isinstance(lines, list) else lines.to_pylist()
        return _parse_jsonl(text, first_line)
    if fmt not in FORMATS:
        raise ValueError(f"unknown weblog format {fmt!r}; choose one of {', '.join(FORMATS)}")
    arr = pa.array(lines, pa.large_string()) if isinstance(lines, list) else lines
    numbers = pa.array(np.arange(first_line, first_line + len(arr), dtype=np.int64))
    parts = pc.extract_regex(arr, _SQUID if fmt == "squid" else _COMBINED)  # one RE2 pass over each line
    ok = pc.is_valid(parts)
    parts = parts.filter(ok)
    client, method, url, status = (parts.field(n) for n in ("client", "method", "url", "status"))
    if fmt == "squid":
        times = pc.cast(parts.field("ts"), pa.float64())
        # the agent group holds its quotes: an absent group reads as "", an empty agent as '""'
        quoted = parts.field("ua")
        ua = pc.if_else(pc.equal(quoted, ""), pa.scalar(None, quoted.type), pc.utf8_slice_codeunits(quoted, 1, -1))
    else:
        stamps = pc.strptime(parts.field("ts"), format="%d/%b/%Y:%H:%M:%S %z", unit="s", error_is_null=True)
        times = pc.divide(pc.cast(pc.cast(stamps, pa.int64()), pa.float64()), 1.0)
        ua = parts.field("ua")
        ua = pc.if_else(pc.equal(ua, "-"), "", ua)
    bad_idx = pc.indices_nonzero(pc.invert(ok))
    blank = pc.equal(pc.utf8_trim_whitespace(arr.take(bad_idx)), "")
    bad = [(first_line + i, f"line {first_line + i} is not a {fmt} log line")
           for i in pc.filter(bad_idx, pc.invert(blank)).to_pylist()]  # fmt: skip
    numbers = numbers.filter(ok)
    table = _with_url(client, times, method, url, pc.cast(status, pa.int32()), ua, numbers)
    if fmt == "squid":  # Squid logs connections that ended before a request line (method "-"): no request
        table = table.filter(pc.not_equal(table["method"], "-"))
    return Chunk(table, bad)


def _with_url(client: pa.Array, times: pa.Array, method: pa.Array, url: pa.Array, status: pa.Array,
              ua: pa.Array, line: pa.Array) -> pa.Table:  # fmt: skip
    u = pc.extract_regex(url, _URL)
    host = pc.utf8_lower(u.field("host"))
    host = pc.if_else(pc.equal(host, ""), "-", host)  # an origin-form request line names no host
    scheme = pc.if_else(pc.equal(u.field("scheme"), ""), "http", u.field("scheme"))
    # CONNECT host:443 has no path: a tunnel, judged as a request for the host's root
    path = pc.if_else(pc.equal(u.field("path"), ""), "/", u.field("path"))
    return pa.table({"time": times, "client": client, "method": method, "host": host,
                     "scheme": scheme, "path": path, "status": status, "ua": ua, "line": line})  # fmt: skip


def _parse_jsonl(lines: list[str], first_line: int) -> Chunk:
    cols: dict[str, list[object]] = {k: [] for k in ("time", "client", "method", "url", "status", "ua", "line")}
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
            cols["line"].append(number)
        except (ValueError, KeyError, TypeError) as exc:
            for col in cols.values():  # keep the columns aligned: drop what this line added
                del col[len(cols["line"]) :]
            bad.append((number, f"line {number}: {exc}"))
    text = pa.large_string()
    return Chunk(_with_url(pa.array(cols["client"], text), pa.array(cols["time"], pa.float64()),
                           pa.array(cols["method"], text), pa.array(cols["url"], text),
                           pa.array(cols["status"], pa.int32()), pa.array(cols["ua"], text),
                           pa.array(cols["line"], pa.int64())), bad)  # fmt: skip


def _epoch(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        when: datetime = parse_time(value)
        return when.timestamp()
    raise ValueError(f"time {value!r} is neither ISO 8601 nor epoch seconds")
