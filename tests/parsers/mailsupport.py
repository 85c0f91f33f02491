"""Helpers for the complaint-mail parser tests: wrap bytes as a Report, run a parser, split events from issues."""

from __future__ import annotations

from hypothesis import strategies as st

from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers.base import Parser
from tests.parsers.feedsupport import make_report


def run(parser: Parser, data: bytes, filename: str | None = None) -> tuple[list[Event], list[ParseIssue]]:
    out = list(parser.parse(make_report(data, filename)))
    events = [o for o in out if isinstance(o, Event)]
    issues = [o for o in out if isinstance(o, ParseIssue)]
    assert len(events) + len(issues) == len(out)
    return events, issues


def mutate(
    draw: st.DrawFn, data: bytes, tokens: list[bytes], *, insert: int = 8, delete: int = 80, copy: int = 300
) -> bytes:
    """One to four byte-level mutations of ``data`` (truncate, flip, insert a token or random bytes of at most
    ``insert``, delete at most ``delete``, duplicate a run of at most ``copy``): the fuzz tests' shared mutator."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not out:
            break
        i = draw(st.integers(0, len(out) - 1))
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "duplicate"]))
        if op == "truncate":
            del out[i:]
        elif op == "flip":
            out[i] ^= draw(st.integers(1, 255))
        elif op == "insert":
            out[i:i] = draw(st.sampled_from(tokens)) if draw(st.booleans()) else draw(st.binary(max_size=insert))
        elif op == "delete":
            del out[i : i + draw(st.integers(1, delete))]
        else:
            j = draw(st.integers(i, min(len(out), i + copy)))
            out[j:j] = out[i:j]
    return bytes(out)
