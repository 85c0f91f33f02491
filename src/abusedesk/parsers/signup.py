"""Signup events from the provider's signup flow: JSON lines, one object a signup (issue 14).

The signup hook (``POST /api/v1/screen/signup``) and ``abusedesk screen signup`` store each signup at the door
like any input, then this parser turns it into an Event of kind ``signup``; the attribute stage screens its address
and links it to suspended or terminated customers, and the ``signup`` detector judges it (sections 2 and 1.10).

One line (docs/reference/screening.md lists the fields)::

    {"type": "signup", "time": "2026-03-01T10:00:00Z", "email": "a.b+x@gmail.com", "account_id": "acct-91",
     "customer_id": "cust-new", "ip": "198.51.100.7", "device": "fp:3b1c...", "user_agent": "Mozilla/5.0 ..."}

``type``, ``time`` and ``email`` are required; a line without them, or not JSON, is a ParseIssue naming the line.
False positives: none of its own; it reports what the signup flow says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from abusedesk.domain.errors import ParseError
from abusedesk.domain.ipnet import normalise_ip
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.domain.timeutil import parse_time
from abusedesk.parsers import textstream
from abusedesk.parsers.base import Parser, Report

FEED = "signup"
#: the optional text fields a signup line may carry, kept in ``extra``
TEXT_FIELDS = ("account_id", "customer_id", "device", "user_agent", "country", "name")
MAX_FIELD = 1000


def signup_event(record: dict[str, Any]) -> Event:
    """The Event of one signup record; ValueError naming the field that is missing or wrong."""
    if record.get("type") != "signup":
        raise ValueError(f"field 'type' must be \"signup\", not {record.get('type')!r}")
    email = record.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        raise ValueError("field 'email' must be an e-mail address (text with an '@', at most 320 characters)")
    when = record.get("time")
    if not isinstance(when, str):
        raise ValueError("field 'time' must be an ISO 8601 time with a zone")
    try:
        time = parse_time(when)
    except ValueError as exc:
        raise ValueError(f"field 'time': {exc}") from None
    extra: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = record.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or len(value) > MAX_FIELD:
            raise ValueError(f"field {name!r} must be text of at most {MAX_FIELD} characters")
        extra[name] = value
    ip = record.get("ip")
    if ip not in (None, ""):
        if not isinstance(ip, str):
            raise ValueError("field 'ip' must be an IPv4 or IPv6 address")
        try:
            ip = normalise_ip(ip)
        except ValueError as exc:
            raise ValueError(f"field 'ip': {exc}") from None
    else:
        ip = None
    return Event.create(
        kind="signup",
        time=time,
        feed=FEED,
        report_id=extra.get("account_id"),
        source_ip=ip,
        source_account=email.strip(),
        extra=extra,
    )


class SignupParser(Parser):
    """Reads signup events (JSON lines, ``"type": "signup"``) from the signup hook and ``screen signup``.

    For: the provider's own signup flow. Makes one ``signup`` event per line; judging it is the ``signup``
    detector's work. False positives: none of its own.
    """

    name = "signup"
    priority: ClassVar[int] = 12

    def recognises(self, report: Report) -> bool:
        head = report.head.lstrip()
        if not head.startswith(b"{") or b'"signup"' not in head:
            return False
        first = head.split(b"\n", 1)[0]
        try:
            record = json.loads(first)
        except ValueError:
            return False
        return isinstance(record, dict) and record.get("type") == "signup"

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        seen = False
        for number, line in enumerate(textstream.strip_bom(report.lines()), 1):
            text = line.strip()
            if not text:
                continue
            seen = True
            try:
                record = json.loads(text)
            except ValueError as exc:
                yield ParseIssue(f"line {number} is not JSON: {exc}", line=number)
                continue
            if not isinstance(record, dict):
                yield ParseIssue(f"line {number} is not a JSON object", line=number)
                continue
            try:
                yield signup_event(record)
            except ValueError as exc:
                yield ParseIssue(f"line {number}: {exc}", line=number)
        if not seen:
            raise ParseError("the signup input is empty", source=report.filename, parser=self.name)
