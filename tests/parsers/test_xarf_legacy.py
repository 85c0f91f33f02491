"""X-ARF 0.1/0.2 YAML reports: safe YAML with unknown tags, broken YAML, masked sources, several reports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.parsers.xarf_legacy import XarfLegacyParser, load_report
from tests.parsers.mailsupport import make_report, run

pytestmark = pytest.mark.unit


def xarf_mail(*reports: str, log: str = "192.0.2.7 - - [31/Jan/2026:07:19:02 +0100] POST /wp-login.php\n") -> bytes:
    parts = "".join(
        f'--x1\nContent-Type: text/plain; charset=utf-8; name="report{i or ""}.txt"\n'
        f'Content-Disposition: attachment; filename="report{i or ""}.txt"\n\n{r}\n'
        for i, r in enumerate(reports)
    )
    return (
        'From: "Abuse-Team" <abuse-team@example.net>\nTo: abuse@example.org\nSubject: abuse report\n'
        "Date: Sat, 31 Jan 2026 07:25:31 +0100\nMessage-ID: <x1@example.net>\nX-ARF: yes\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="x1"\n\n'
        "--x1\nContent-Type: text/plain\n\nYour customer attacked us.\n\n"
        + parts
        + '--x1\nContent-Type: text/plain; name="logfile.log"\n'
        + f'Content-Disposition: attachment; filename="logfile.log"\n\n{log}'
        "--x1--\n"
    ).encode()


LOGIN = """---
Reported-From: abuse-team@example.net
Category: abuse
Report-Type: login-attack
Service: ssh
Version: 0.2
User-Agent: Fail2BanFeedBackScript
Date: Sat, 31 Jan 2026 07:19:02 +0100
Source-Type: ip-address
Source: 192.0.2.7
Port: 22
Report-ID: 42@example.net
Schema-URL: http://www.x-arf.org/schema/abuse_login-attack_0.1.2.json
Attachment: text/plain
"""


def test_login_attack_report() -> None:
    parser = XarfLegacyParser()
    data = xarf_mail(LOGIN)
    assert parser.recognises(make_report(data))
    (ev,), issues = run(parser, data)
    assert issues == []
    assert ev.kind == "brute-force"
    assert ev.source_ip == "192.0.2.7"
    assert ev.destination_port == 22 and ev.source_port is None
    assert ev.time == datetime(2026, 1, 31, 6, 19, 2, tzinfo=UTC)
    assert ev.report_id == "42@example.net"
    assert ev.reporter == "abuse-team@example.net"
    assert ev.extra["xarf_report_type"] == "login-attack"
    assert ev.extra["service"] == "ssh"
    assert "POST /wp-login.php" in ev.extra["evidence"]["logfile.log"]


def test_python_unicode_tags_are_read_as_plain_values_never_executed() -> None:
    report = """Category: abuse
Report-Type: web-attack
Date: '2026-01-15 17:03:11-07:00'
Source: 192.0.2.20
Source-Type: ip-address
Port: '80'
Targeted-URL: !!python/unicode 'http://www.example.com/robots.txt'
Evil: !!python/object/apply:os.system ['echo pwned']
Report-ID: 00000000-aaaa-ffff-3333-000000000001
"""
    fields = load_report(report)
    assert fields["targeted-url"] == "http://www.example.com/robots.txt"
    (ev,), _ = run(XarfLegacyParser(), xarf_mail(report))
    assert ev.kind == "sql-injection"
    assert ev.time == datetime(2026, 1, 16, 0, 3, 11, tzinfo=UTC)
    assert ev.destination_port == 80


def test_broken_yaml_falls_back_to_key_value_lines() -> None:
    report = LOGIN.replace("Schema-URL: http://www", "Schema-URL: http: //www")
    (ev,), _ = run(XarfLegacyParser(), xarf_mail(report))
    assert ev.source_ip == "192.0.2.7"
    assert ev.extra["schema_url"].startswith("http: //")


def test_uri_source_is_a_url_event_with_source_port() -> None:
    report = """---
Category: fraud
Report-Type: phishing
Date: 2026-01-12T06:40:56+00:00
Domain: example.com
Port: 8080
Source: http://example.com:8080/login/
Source-Type: uri
Report-ID: takedown+1@example.net
"""
    (ev,), _ = run(XarfLegacyParser(), xarf_mail(report))
    assert ev.kind == "phishing"
    assert ev.source_url == "http://example.com:8080/login/"
    assert ev.source_fqdn == "example.com"
    assert ev.source_port == 8080


def test_masked_source_falls_back_to_download_link_with_an_issue() -> None:
    report = LOGIN.replace("Source: 192.0.2.7", "Source: 122.XXX.XXX.XXX").replace(
        "Report-Type: login-attack", "Report-Type: malware-attack\nDownload-Link: http://www.example.com/help.htm"
    )
    (ev,), issues = run(XarfLegacyParser(), xarf_mail(report))
    assert ev.kind == "malware"
    assert ev.source_url == "http://www.example.com/help.htm"
    assert ev.extra["source_as_reported"] == "122.XXX.XXX.XXX"
    assert "masked" in issues[0].reason


def test_two_reports_yield_two_events() -> None:
    second = LOGIN.replace("192.0.2.7", "2001:db8::7").replace("42@", "43@")
    events, _ = run(XarfLegacyParser(), xarf_mail(LOGIN, second))
    assert [e.source_ip for e in events] == ["192.0.2.7", "2001:db8::7"]
    assert len({e.id for e in events}) == 2


def test_bad_date_uses_the_mail_date() -> None:
    (ev,), issues = run(
        XarfLegacyParser(), xarf_mail(LOGIN.replace("Date: Sat, 31 Jan 2026 07:19:02 +0100", "Date: soon"))
    )
    assert ev.time == datetime(2026, 1, 31, 6, 25, 31, tzinfo=UTC)
    assert "Date" in issues[0].reason


def test_unknown_type_is_other_with_low_confidence() -> None:
    (ev,), _ = run(XarfLegacyParser(), xarf_mail(LOGIN.replace("login-attack", "something-new")))
    assert ev.kind == "other" and ev.confidence < 0.5


def test_report_without_any_source_raises() -> None:
    report = "---\nCategory: abuse\nReport-Type: login-attack\nSource: \nDate: 2026-01-01T00:00:00Z\n"
    with pytest.raises(ParseError):
        list(XarfLegacyParser().parse(make_report(xarf_mail(report))))


def test_mail_without_report_is_not_recognised_and_raises() -> None:
    data = b"From: a@example.net\nTo: b@example.org\nSubject: hi\n\nhello\n"
    assert not XarfLegacyParser().recognises(make_report(data))
    with pytest.raises(ParseError, match="no X-ARF report"):
        list(XarfLegacyParser().parse(make_report(data)))


def test_yaml_alias_bomb_does_not_explode() -> None:
    bomb = "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(8)
    )
    report = LOGIN + bomb
    (ev,), _ = run(XarfLegacyParser(), xarf_mail(report))
    assert ev.source_ip == "192.0.2.7"
