"""Helpers for the complaint-mail parser tests: wrap bytes as a Report, run a parser, split events from issues."""

from __future__ import annotations

from datetime import UTC, datetime

from abusedesk.domain.ids import sha256_hex
from abusedesk.domain.records import Event, ParseIssue, RawInput
from abusedesk.parsers.base import Parser, Report


def make_report(data: bytes, filename: str | None = None) -> Report:
    meta = {"filename": filename} if filename else {}
    raw = RawInput(
        id=sha256_hex(data),
        size=len(data),
        channel="test",
        received_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        meta=meta,
    )
    return Report(raw, data)


def run(parser: Parser, data: bytes, filename: str | None = None) -> tuple[list[Event], list[ParseIssue]]:
    out = list(parser.parse(make_report(data, filename)))
    events = [o for o in out if isinstance(o, Event)]
    issues = [o for o in out if isinstance(o, ParseIssue)]
    assert len(events) + len(issues) == len(out)
    return events, issues
