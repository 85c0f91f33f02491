"""Helpers for the complaint-mail parser tests: wrap bytes as a Report, run a parser, split events from issues."""

from __future__ import annotations

from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers.base import Parser
from tests.parsers.feedsupport import make_report


def run(parser: Parser, data: bytes, filename: str | None = None) -> tuple[list[Event], list[ParseIssue]]:
    out = list(parser.parse(make_report(data, filename)))
    events = [o for o in out if isinstance(o, Event)]
    issues = [o for o in out if isinstance(o, ParseIssue)]
    assert len(events) + len(issues) == len(out)
    return events, issues
