"""The weblog formats: Squid native (with and without the agent), combined, JSON lines; bad lines; fuzzed lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abusedesk.weblog.formats import parse_lines
from abusedesk.weblog.sessions import Caps, summarise
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
                       "scheme": "http", "path": "/a?b=1", "status": 404, "ua": None}  # fmt: skip
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


def test_summaries_group_per_client_agent_host_and_window() -> None:
    table = parse_lines(squid_log().decode().splitlines(), "squid").table
    out = summarise(table, Caps(window_seconds=600))
    by_client = {s["client"]: s for s in out}
    assert len(out) == 3
    polite = by_client["198.51.100.10"]
    assert polite["requests"] == 41 and polite["robots"] == [T0] and polite["paths_total"] == 41
    assert polite["times"] == sorted(polite["times"]) and polite["statuses"] == {"200": 41}
    capped = summarise(table, Caps(window_seconds=600, max_times=10, max_paths=10))
    assert all(len(s["times"]) <= 10 and len(s["paths"]) <= 10 for s in capped)
    assert {s["times_dropped"] for s in capped} == {31, 50, 71}


@given(st.lists(st.text(max_size=200), max_size=20), st.sampled_from(["squid", "combined", "jsonl"]))
@settings(max_examples=150, deadline=None)
def test_any_lines_parse_or_are_named(lines: list[str], fmt: str) -> None:
    lines = [x.replace("\n", " ").replace("\r", " ") for x in lines]
    chunk = parse_lines(lines, fmt)
    assert chunk.table.num_rows + len(chunk.bad) <= len(lines)
    summarise(chunk.table, Caps())
