"""URL reports: Google Safe Browsing (IPv6 literals, ports), Netcraft plain text, Lexsi, Clean-MX."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.parsers.urlreport import UrlReportParser
from tests.parsers.mailsupport import make_report, run

pytestmark = pytest.mark.unit


def mail(sender: str, subject: str, body: str, ctype: str = "text/plain") -> bytes:
    return (
        f"From: {sender}\nTo: abuse@example.org\nSubject: {subject}\nDate: Wed, 04 Feb 2026 06:36:10 +0000\n"
        f"Message-ID: <u1@example.net>\nContent-Type: {ctype}; charset=utf-8\n\n{body}\n"
    ).encode()


GSB = """<notification_message asn="64496" date="2026-02-01">
 <list type="0">
  <url_info url="http://malware.example.com/" ip="192.0.2.23" />
  <url_info url="http://malware.example.com/wp/?a=1&amp;b=2" ip="192.0.2.23" />
 </list>
 <list type="1">
  <url_info url="http://2001:db8:0:19b0:f3:22:0:2:2222/CMD_FILE_MANAGER/domains/x/" />
  <url_info url="http://192.0.2.26:2222/CMD_FILE_MANAGER/" />
  <url_info ip="192.0.2.1" />
 </list>
</notification_message>"""


def test_google_safe_browsing_lists_ipv6_and_ports() -> None:
    parser = UrlReportParser()
    data = mail("Google Safe Browsing <noreply@google.example.com>", "Safe Browsing Report for AS64496", GSB)
    assert parser.recognises(make_report(data))
    events, issues = run(parser, data)
    assert [(e.kind, e.source_url, e.source_ip, e.source_port) for e in events] == [
        ("malware", "http://malware.example.com/", "192.0.2.23", None),
        ("malware", "http://malware.example.com/wp/?a=1&b=2", "192.0.2.23", None),
        (
            "compromised-host",
            "http://[2001:db8:0:19b0:f3:22:0:2]:2222/CMD_FILE_MANAGER/domains/x/",
            "2001:db8:0:19b0:f3:22:0:2",
            2222,
        ),
        ("compromised-host", "http://192.0.2.26:2222/CMD_FILE_MANAGER/", "192.0.2.26", 2222),
    ]
    assert issues[0].reason == "url_info without a url attribute"
    assert events[0].extra["gsb_asn"] == "64496"
    assert events[0].time == datetime(2026, 2, 4, 6, 36, 10, tzinfo=UTC)


NETCRAFT = """Hello,

An IP address within your delegated space is currently involved in an ongoing brute force attack against
the following services:

 * SSH (Secure Shell)

SSH (Secure Shell) (3 total)
Date\tSource IP\tTarget IP
2026-01-27 23:27:05\t192.0.2.3\t198.51.100.0/24
2026-01-27 23:25:52\t192.0.2.3\t198.51.100.0/24
2026-01-27 23:19:49\t2001:db8::3\t198.51.100.0/24

More information about the detected issue is provided at https://incident.netcraft.com/a01bcdef123a4/
Netcraft Issue Number: 12345678
"""


def test_netcraft_attack_table_one_event_per_source() -> None:
    data = mail(
        "Netcraft <takedown-response+12345678@netcraft.com>",
        "Issue 12345678: Brute force attack at 192.0.2.3",
        NETCRAFT,
    )
    events, _ = run(UrlReportParser(), data)
    assert [(e.kind, e.source_ip, e.extra["count"]) for e in events] == [
        ("brute-force", "192.0.2.3", 2),
        ("brute-force", "2001:db8::3", 1),
    ]
    assert events[0].time == datetime(2026, 1, 27, 23, 25, 52, tzinfo=UTC)
    assert events[0].report_id == "12345678"
    assert events[0].extra["incident_url"] == "https://incident.netcraft.com/a01bcdef123a4/"


def test_netcraft_defanged_url_with_ip() -> None:
    body = (
        "Je vindt de aanval op de volgende pagina:\nhxxp://johndoe.example[.]com/survey/ [192.0.2.77]\n\n"
        "We found a phishing site.\nhxxp://johndoe.example[.]com/survey/ [192.0.2.77]\n"
        "https://incident.netcraft.com/01abc2d345ef/\n"
    )
    data = mail("Netcraft <takedown-response+1@netcraft.com>", "Phishing found [Issue 87654321]", body)
    (ev,), _ = run(UrlReportParser(), data)
    assert (ev.kind, ev.source_url, ev.source_ip, ev.report_id) == (
        "phishing",
        "http://johndoe.example.com/survey/",
        "192.0.2.77",
        "87654321",
    )


def test_lexsi_phishing_notice_in_html() -> None:
    body = (
        "<br />Bonjour,<br /><br />Nous avons decouvert un site de phishing.<br /><br />"
        "Site concerne : http://evil.example.com/reactivation/ <br /><br />Adresse IP : 192.0.2.4<br />"
    )
    data = mail("cert-soc@lexsi.example.net", "[URGENT] site FRAUDULEUX", body, ctype="text/html")
    (ev,), _ = run(UrlReportParser(), data)
    assert (ev.kind, ev.source_url, ev.source_ip, ev.source_fqdn) == (
        "phishing",
        "http://evil.example.com/reactivation/",
        "192.0.2.4",
        "evil.example.com",
    )


def test_cleanmx_virus_table() -> None:
    body = (
        "|date                          |id     |virusname     |ip            |domain         |Url|\n"
        "+------------------------------------------\n"
        "|2026-01-14 07:49:54 CEST    |81328588      |JS/iFrame.cqq |192.0.2.13 |example.com        |http://a.example.com/x.js\n"
    )
    data = mail("abuse@clean-mx.example.net", "[clean-mx-viruses-81328588](192.0.2.13) viruses sites", body)
    (ev,), _ = run(UrlReportParser(), data)
    assert (ev.kind, ev.source_url, ev.source_ip, ev.report_id) == (
        "malware",
        "http://a.example.com/x.js",
        "192.0.2.13",
        "81328588",
    )
    assert ev.time == datetime(2026, 1, 14, 5, 49, 54, tzinfo=UTC)
    assert ev.extra["virus_name"] == "JS/iFrame.cqq"


def test_empty_google_report_raises_and_other_mail_is_not_recognised() -> None:
    data = mail("noreply@google.example.com", "SB", '<notification_message asn="1"><url_info /></notification_message>')
    with pytest.raises(ParseError, match="names no URL"):
        list(UrlReportParser().parse(make_report(data)))
    other = mail("a@example.net", "hi", "see http://example.com/")
    assert not UrlReportParser().recognises(make_report(other))
    with pytest.raises(ParseError):
        list(UrlReportParser().parse(make_report(other)))
