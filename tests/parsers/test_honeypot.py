"""Project Honey Pot monitor reports: one event per IP and category, PDT timestamps, spam subjects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.parsers.honeypot import HoneypotParser
from tests.parsers.mailsupport import make_report, run

pytestmark = pytest.mark.unit

BODY = """Report Date Range: 01/20/2026 - 01/22/2026
IPs Monitored: 256

IPs Engaged In Harvesting On Your Network:

192.0.2.19 (H)
  - Wed, 21 Jan 2026 11:00AM PST


IPs Engaged In Email Spamming On Your Network:

2001:db8::21 (S)
  - Wed, 21 Jan 2026 10:00AM PST
    - Subject: Powered By Example.........
    - From: "Example Inc."<bulk@example.com>
  - Wed, 21 Jan 2026 06:12AM PST
    - Subject: Powered By Example.........
    - From: "Example Inc."<bulk@example.com>

IPs Engaged In Dictionary Attacks On Your Network:

none

IPs Engaged In Comment Spamming On Your Network:

192.0.2.23 (C)
999.0.2.1 (C)

Other Potentially Suspicious IPs On Your Network:

192.0.2.23 (R)
  - Wed, 21 Jan 2026 12:00AM PST
  - sometime soon

---------------------------------------
Please see your Monitor Report for more details.
"""


def mail(body: str, subject: str = "Project Honey Pot Monitor Report (01/20/2026 - 01/22/2026)") -> bytes:
    return (
        f"From: Project Honey Pot Monitoring <monitor@example.net>\nTo: abuse@example.org\nSubject: {subject}\n"
        f"Date: Thu, 22 Jan 2026 06:56:46 -0500\n\n{body}"
    ).encode()


def test_one_event_per_ip_and_category() -> None:
    parser = HoneypotParser()
    data = mail(BODY)
    assert parser.recognises(make_report(data))
    events, issues = run(parser, data)
    got = [(e.kind, e.source_ip, e.extra["honeypot_category"]) for e in events]
    assert got == [
        ("crawling", "192.0.2.19", "H"),
        ("spam", "2001:db8::21", "S"),
        ("spam", "192.0.2.23", "C"),
        ("threat-intel", "192.0.2.23", "R"),
    ]
    spam = events[1]
    assert spam.time == datetime(2026, 1, 21, 14, 12, tzinfo=UTC)  # earliest of two PST stamps
    assert len(spam.extra["seen"]) == 2
    assert spam.extra["spam_subjects"][0].startswith("Powered By Example")
    assert events[2].time == datetime(2026, 1, 22, 11, 56, 46, tzinfo=UTC)  # no stamp: the mail's Date
    assert events[2].extra["time_source"] == "mail Date"
    assert events[3].confidence < 0.5
    assert {i.reason.split(":")[0] for i in issues} == {"comment spamming", "other potentially suspicious"}
    assert events[0].extra["report_range"] == "01/20/2026 - 01/22/2026"


def test_not_recognised_without_subject_or_sections() -> None:
    assert not HoneypotParser().recognises(make_report(mail(BODY, subject="Monitor Report")))
    data = mail("nothing here\n")
    assert not HoneypotParser().recognises(make_report(data))
    with pytest.raises(ParseError):
        list(HoneypotParser().parse(make_report(data)))
