"""SpamCop reports: the reported IP comes from the subject and 'Email from' line, never from quoted relays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.parsers.freetext import find_ips
from abusedesk.parsers.spamcop import SpamcopParser
from tests.parsers.mailsupport import make_report, run

pytestmark = pytest.mark.unit

REPORT = """From: 6301094139@reports.spamcop.net
To: abuse@example.org
Subject: [SpamCop (192.0.2.160) id:6301094139]Your account needs verification
Date: Wed, 29 Apr 2026 17:25:00 -0400
Message-ID: <rid-6301094139@msgid.spamcop.net>

[ SpamCop V4.8.3.x ]
This message is brief for your comfort.  Please use links below for details.

Email from 192.0.2.160 / Wed, 29 Apr 2026 17:20:28 -0400
http://www.spamcop.net/w3m?i=z6301094139zexamplez

[ Offending message ]
Return-Path: <service@example.com>
Received: from mx2.victim.example.net (10.202.2.204)
 by mailstore.victim.example.net; Wed, 29 Apr 2026 17:20:30 -0400
Received: from relay.victim.example.net (relay [10.202.2.45])
 by mx2.victim.example.net; Wed, 29 Apr 2026 17:20:29 -0400
Received: from web.example.com (web.example.com [192.0.2.160])
 by relay.victim.example.net; Wed, 29 Apr 2026 17:20:28 -0400
Message-ID: <spam-42@web.example.com>
Subject: Your account needs verification

Click http://paypa1-verify.example.com/login
"""


def test_reported_ip_is_the_one_in_subject_and_email_from_line() -> None:
    parser = SpamcopParser()
    data = REPORT.encode()
    assert parser.recognises(make_report(data))
    (ev,), issues = run(parser, data)
    assert issues == []
    assert ev.kind == "spam"
    assert ev.source_ip == "192.0.2.160"
    assert ev.report_id == "6301094139"
    assert ev.time == datetime(2026, 4, 29, 21, 20, 28, tzinfo=UTC)
    assert ev.reporter == "6301094139@reports.spamcop.net"
    assert ev.extra["spamcop_version"] == "4.8.3.x"
    assert ev.extra["original_message_id"] == "<spam-42@web.example.com>"
    assert len(ev.extra["received_chain"]) == 3


def test_naive_all_ips_approach_would_pick_the_victims_relays() -> None:
    """The reason this parser exists: every address in the body includes the victim's relays."""
    assert {"10.202.2.204", "10.202.2.45"} <= set(find_ips(REPORT))
    events, _ = run(SpamcopParser(), REPORT.encode())
    assert [e.source_ip for e in events] == ["192.0.2.160"]


def test_spamvertised_site_report() -> None:
    data = (
        REPORT.replace(
            "[SpamCop (192.0.2.160) id:6301094139]", "[SpamCop (http://paypa1-verify.example.com/login) id:6301094140]"
        )
        .replace("Email from 192.0.2.160 / Wed, 29 Apr 2026 17:20:28 -0400\n", "")
        .replace(
            "http://www.spamcop.net/w3m?i=z6301094139zexamplez\n",
            "Spamvertised web site: http://paypa1-verify.example.com/login\n"
            "http://www.spamcop.net/w3m?i=z6301094140z\n"
            "http://paypa1-verify.example.com/login is 198.51.100.23; Wed, 29 Apr 2026 21:25:00 GMT\n",
        )
    )
    (ev,), _ = run(SpamcopParser(), data.encode())
    assert ev.source_url == "http://paypa1-verify.example.com/login"
    assert ev.source_ip == "198.51.100.23"
    assert ev.report_id == "6301094140"
    assert ev.extra["spamvertised"] is True
    assert ev.time == datetime(2026, 4, 29, 21, 25, tzinfo=UTC)


def test_subject_and_body_disagree_is_an_issue() -> None:
    data = REPORT.replace("Email from 192.0.2.160", "Email from 192.0.2.161").encode()
    (ev,), issues = run(SpamcopParser(), data)
    assert ev.source_ip == "192.0.2.161"
    assert "192.0.2.160" in issues[0].reason


def test_ipv6_source() -> None:
    data = REPORT.replace("192.0.2.160", "2001:db8::a0").encode()
    (ev,), _ = run(SpamcopParser(), data)
    assert ev.source_ip == "2001:db8::a0"


def test_report_without_subject_ip_or_email_from_raises() -> None:
    data = REPORT.replace("[SpamCop (192.0.2.160) id:6301094139]", "hello").replace("Email from", "Mail of").encode()
    assert SpamcopParser().recognises(make_report(data))
    with pytest.raises(ParseError, match="names no source IP"):
        list(SpamcopParser().parse(make_report(data)))


def test_unrelated_mail_is_not_recognised() -> None:
    assert not SpamcopParser().recognises(make_report(b"From: a@example.net\nTo: b@example.org\n\nspam 192.0.2.1\n"))
