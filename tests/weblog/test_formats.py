"""The weblog formats: Squid native (with and without the agent), combined, JSON lines; bad lines; fuzzed lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abusedesk.weblog.formats import parse_lines, split_lines
from tests.weblog.sample import T0, squid_log

pytestmark = pytest.mark.unit

SQUID_NATIVE = "1733580000.123    250 192.0.2.10 TCP_MISS/404 1234 GET http://h.example/a?b=1 - HIER_DIRECT/1.2.3.4 -"
COMBINED = [
    '192.0.2.5 - - [10/Oct/2000:13:55:36 -0700] "GET http://E.example/a HTTP/1.1" 200 2326 "-" "curl/8.0"',
    '192.0.2.5 - - [10/Oct/2000:13:55:37 -0700] "GET /b HTTP/1.1" 304 - "http://r/" "-"',
    '192.0.2.6 - - [10/Oct/2000:13:55:38 +0000] "CONNECT e.example:443 HTTP/1.1" 200 0 "-" "Go-http-client/1.1"',
]


def test_squid_native_with_and_without_the_agent() -> None:
    chunk = parse_lines([SQUID_NATIVE, squid_log().decode().splitlines()[0], "", "garbage here"], "squid", 10)
    rows = chunk.table.to_pylist()
    assert rows[0] == {"time": 1733580000.123, "client": "192.0.2.10", "method": "GET", "host": "h.example",
                       "scheme": "http", "path": "/a?b=1", "status": 404, "ua": None, "line": 10}  # fmt: skip
    assert rows[1]["ua"].startswith("ExampleBot/1.0") and rows[1]["time"] == T0
    assert chunk.bad == [(13, "line 13 is not a squid log line")]


def test_combined() -> None:
    rows = parse_lines(COMBINED, "combined").table.to_pylist()
    assert [(r["host"], r["path"], r["status"], r["ua"]) for r in rows] == [
        ("e.example", "/a", 200, "curl/8.0"), ("-", "/b", 304, ""), ("e.example:443", "/", 200, "Go-http-client/1.1"),
    ]  # fmt: skip
    assert rows[0]["time"] == 971_211_336.0  # 13:55:36 -0700 is 20:55:36Z


def test_jsonl_mapping_and_bad_lines() -> None:
    good = {"time": "2026-06-01T00:00:00Z", "client": "192.0.2.1", "url": "https://e.example/x", "status": 200,
            "user_agent": "x"}  # fmt: skip
    chunk = parse_lines([json.dumps(good), json.dumps({**good, "time": T0}), '{"time": 1}', "[1]"], "jsonl")
    assert [r["time"] for r in chunk.table.to_pylist()] == [T0, T0]
    assert [n for n, _ in chunk.bad] == [3, 4]
    with pytest.raises(ValueError, match="unknown weblog format"):
        parse_lines([], "w3c")


def test_a_chunk_of_bytes_is_split_into_lines_without_losing_a_line_number() -> None:
    log = squid_log()
    lines = log.decode().splitlines()
    data = (lines[0] + "\r\n" + "\n".join(lines[1:5]) + "\nnot a line\n\n" + lines[5]).encode()  # CRLF, no last LF
    arr = split_lines(data)
    assert arr.to_pylist() == [lines[0], *lines[1:5], "not a line", "", lines[5]]
    chunk = parse_lines(arr, "squid", 101)
    assert chunk.table["line"].to_pylist() == [101, 102, 103, 104, 105, 108]
    assert chunk.bad == [(106, "line 106 is not a squid log line")]  # the empty line is no issue
    listed = parse_lines([*lines[:5], "not a line", "", lines[5]], "squid", 101)
    assert chunk.table.to_pylist() == listed.table.to_pylist()
    whole = parse_lines(split_lines(log), "squid")
    assert whole.table.num_rows == len(lines) and whole.bad == []


def test_bytes_that_are_not_utf8_spoil_a_field_not_the_chunk() -> None:
    line = squid_log().splitlines()[0]
    arr = split_lines(line + b"\n" + line.replace(b"ExampleBot", b"Example\xffBot") + b"\n")
    rows = parse_lines(arr, "squid").table.to_pylist()
    assert [r["ua"][:10] for r in rows] == ["ExampleBot", "Example\ufffdBot"[:10]]


def test_squid_agent_absent_empty_and_quoted() -> None:
    base = SQUID_NATIVE[: SQUID_NATIVE.rindex(" -")] + " text/html"
    rows = parse_lines([base, base + ' ""', base + ' "curl/8.0"', base + ' "a"b"'], "squid").table.to_pylist()
    assert [r["ua"] for r in rows] == [None, "", "curl/8.0"]  # a quote inside the agent is not a squid line


@given(st.lists(st.text(max_size=200), max_size=20), st.sampled_from(["squid", "combined", "jsonl"]))
@settings(max_examples=150, deadline=None)
def test_any_lines_parse_or_are_named(lines: list[str], fmt: str) -> None:
    lines = [x.replace("\n", " ").replace("\r", " ") for x in lines]
    chunk = parse_lines(lines, fmt)
    assert chunk.table.num_rows + len(chunk.bad) <= len(lines)
    assert {n for n, _ in chunk.bad}.isdisjoint(chunk.table["line"].to_pylist())
    blank = {i + 1 for i, x in enumerate(lines) if not x.strip()}
    # every line is a request (or, for squid, a connection without one), a named issue, or blank
    assert {n for n, _ in chunk.bad} | set(chunk.table["line"].to_pylist()) | blank <= set(range(1, len(lines) + 1))
    if fmt != "squid":
        assert len(chunk.bad) + chunk.table.num_rows + len(blank) == len(lines)
    arr = split_lines("".join(x + "\n" for x in lines).encode())  # the columnar path reads the same lines
    assert arr.to_pylist() == [x.rstrip("\r") for x in lines]
    assert parse_lines(arr, fmt).table.to_pylist() == chunk.table.to_pylist()
