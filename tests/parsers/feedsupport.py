"""Helpers shared by the feed and legal-notice parser tests: build a Report, run a parser, split the output."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from abusedesk.domain.ids import sha256_hex
from abusedesk.domain.records import Event, ParseIssue, RawInput
from abusedesk.parsers.base import Parser, Report

RECEIVED = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def make_report(data: bytes, filename: str | None = None, **meta: Any) -> Report:
    if filename:
        meta["filename"] = filename
    raw = RawInput(id=sha256_hex(data), size=len(data), channel="test", received_at=RECEIVED, meta=meta)
    return Report(raw, data)


def run(parser: Parser, data: bytes, filename: str | None = None, **meta: Any) -> tuple[list[Event], list[ParseIssue]]:
    events: list[Event] = []
    issues: list[ParseIssue] = []
    for item in parser.parse(make_report(data, filename, **meta)):
        (events if isinstance(item, Event) else issues).append(item)  # type: ignore[arg-type]
    return events, issues


def mail_with_attachment(
    filename: str,
    payload: bytes,
    *,
    zipped: bool = True,
    sender: str = "autoreports@example.net",
    subject: str = "Shadowserver report",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "abuse@example.com"
    msg["Subject"] = subject
    msg["Date"] = "Sun, 01 Mar 2026 09:00:00 +0000"
    msg["Message-ID"] = "<report-1@example.net>"
    msg.set_content("Attached is your report.\n")
    if zipped:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(filename, payload)
        msg.add_attachment(buf.getvalue(), maintype="application", subtype="zip", filename=filename + ".zip")
    else:
        msg.add_attachment(payload, maintype="text", subtype="csv", filename=filename)
    return msg.as_bytes()
