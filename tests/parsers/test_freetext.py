"""Free-text complaints: extraction of IPs, URLs (defanged, IPv6, ports), times with zones; classification."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.parsers.freetext import (
    FreetextParser,
    classify,
    find_ips,
    find_ports,
    find_report_id,
    find_times,
    find_urls,
    registered_domain,
    split_url,
)
from tests.parsers.mailsupport import make_report, run

pytestmark = pytest.mark.unit


def mail(subject: str, body: str, sender: str = "Alice <alice@victim.example.net>") -> bytes:
    return (
        f"From: {sender}\nTo: abuse@example.org\nSubject: {subject}\nDate: Mon, 02 Feb 2026 12:00:00 +0100\n"
        f"Message-ID: <c1@victim.example.net>\n\n{body}\n"
    ).encode()


def test_find_ips_skips_unusable_and_keeps_order() -> None:
    text = "0.0.0.1 192.0.2.1 224.5.6.7 127.0.0.1 2001:db8::1 999.1.1.1 1.2.3.4.5 192.0.2.1 ::1"
    assert find_ips(text) == ["192.0.2.1", "2001:db8::1"]


@pytest.mark.parametrize(
    ("raw", "url", "ip", "port", "host"),
    [
        ("hxxp://phish.example[.]com/login", "http://phish.example.com/login", None, None, "phish.example.com"),
        ("http://[2001:db8::5]:8443/a", "http://[2001:db8::5]:8443/a", "2001:db8::5", 8443, None),
        (
            "http://2001:db8:0:0:f3:22:0:2:2222/CMD",
            "http://[2001:db8::f3:22:0:2]:2222/CMD",
            "2001:db8::f3:22:0:2",
            2222,
            None,
        ),
        ("http://192.0.2.9:2222/x).", "http://192.0.2.9:2222/x", "192.0.2.9", 2222, None),
        ("https://user@example.net:8080/", "https://example.net:8080/", None, 8080, "example.net"),
    ],
)
def test_split_url(raw: str, url: str, ip: str | None, port: int | None, host: str | None) -> None:
    hit = split_url(raw)
    assert hit is not None
    assert (hit.url, hit.ip, hit.port, hit.host) == (url, ip, port, host)


@pytest.mark.parametrize("raw", ["http://", "http://exa mple", "http://nodot/", "http://example.com:99999/"])
def test_split_url_rejects_garbage(raw: str) -> None:
    assert split_url(raw) is None


def test_find_urls_dedupes() -> None:
    hits = find_urls("see http://example.com/a and hxxp://example[.]com/a, also ftp://198.51.100.3/x")
    assert [h.url for h in hits] == ["http://example.com/a", "ftp://198.51.100.3/x"]


def test_find_ports() -> None:
    assert find_ports("attack on port 22, dst port: 2222 and port 99999") == [22, 2222]


@pytest.mark.parametrize(
    ("text", "expected", "zoned"),
    [
        ("at 2026-01-27 23:27:05 UTC", datetime(2026, 1, 27, 23, 27, 5, tzinfo=UTC), True),
        ("2026-01-15T17:03:11-07:00", datetime(2026, 1, 16, 0, 3, 11, tzinfo=UTC), True),
        ("Mon, 21 Sep 2015 11:00AM PDT", datetime(2015, 9, 21, 18, 0, tzinfo=UTC), True),
        ("on 14 Sep 2015 07:49:54 CEST", datetime(2015, 9, 14, 5, 49, 54, tzinfo=UTC), True),
        ("01/31/2026 10:00 PM EST", datetime(2026, 2, 1, 3, 0, tzinfo=UTC), True),
        ("2026-01-27 23:27:05", datetime(2026, 1, 27, 23, 27, 5, tzinfo=UTC), False),
    ],
)
def test_find_times_with_zones(text: str, expected: datetime, zoned: bool) -> None:
    assert find_times(text)[0] == (expected, zoned)


def test_registered_domain() -> None:
    assert registered_domain("a.b.example.co.uk") == "example.co.uk"
    assert registered_domain("www.example.net") == "example.net"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("a phishing site imitating our login page", "phishing"),
        ("SSH brute force, many failed login attempts", "brute-force"),
        ("your host is port scanning our network", "scan"),
        ("we received unsolicited bulk email (spam)", "spam"),
        ("DDoS amplification attack from your NTP server", "dos"),
        ("DMCA copyright infringement notice", "copyright"),
    ],
)
def test_classify(text: str, kind: str) -> None:
    got, confidence, hits = classify(text)
    assert got == kind
    assert confidence >= 0.5
    assert hits


def test_classify_nothing_is_other_with_low_confidence() -> None:
    kind, confidence, hits = classify("please look at this")
    assert (kind, hits) == ("other", [])
    assert confidence < 0.5


def test_complaint_with_subject_ip_and_time() -> None:
    body = (
        "Hello,\nyour server 192.0.2.7 attacked our SSH service with a brute force attack.\n"
        "First seen 2026-02-02 08:15:00 CET on port 22.\nOur site https://www.victim.example.net/ is fine.\n"
        "Received: from mx.victim.example.net (mx [198.51.100.9])\n\tby x; Mon, 02 Feb 2026 08:00:00 +0000\n"
    )
    parser = FreetextParser()
    data = mail("Attack from 192.0.2.7", body)
    assert parser.recognises(make_report(data))
    (ev,), _ = run(parser, data)
    assert ev.kind == "brute-force"
    assert ev.source_ip == "192.0.2.7"
    assert ev.source_port == 22
    assert ev.time == datetime(2026, 2, 2, 7, 15, tzinfo=UTC)
    assert ev.reporter == "alice@victim.example.net"
    assert "triage" not in ev.extra


def test_body_subjects_skip_own_site_reference_links_and_cidrs() -> None:
    body = (
        "Phishing page at hxxp://login-bank.example[.]com/secure and http://[2001:db8::66]:8080/x\n"
        "Targeted range 198.51.100.0/24. See https://www.spamhaus.org/faq and https://victim.example.net/help\n"
    )
    events, _ = run(FreetextParser(), mail("Please help", body))
    assert [(e.source_url, e.source_ip, e.source_port) for e in events] == [
        ("http://login-bank.example.com/secure", None, None),
        ("http://[2001:db8::66]:8080/x", "2001:db8::66", 8080),
    ]
    assert {e.kind for e in events} == {"phishing"}
    assert len({e.id for e in events}) == 2


def test_unclassifiable_complaint_is_marked_for_triage() -> None:
    (ev,), _ = run(FreetextParser(), mail("hello", "something odd with 192.0.2.50, please check"))
    assert ev.kind == "other"
    assert ev.extra["triage"] is True
    assert ev.confidence < 0.5
    assert ev.time == datetime(2026, 2, 2, 11, 0, tzinfo=UTC)
    assert ev.extra["time_source"] == "mail Date"


def test_no_subject_at_all_raises() -> None:
    with pytest.raises(ParseError, match="no IP address or URL"):
        list(FreetextParser().parse(make_report(mail("hi", "Nothing to parse here."))))


def test_plain_text_input_and_binary_input() -> None:
    parser = FreetextParser()
    text = b"spam from 203.0.113.80 at 2026-02-01T10:00:00Z"
    assert parser.recognises(make_report(text))
    (ev,), _ = run(parser, text)
    assert (ev.kind, ev.source_ip, ev.reporter) == ("spam", "203.0.113.80", None)
    assert not parser.recognises(make_report(b"\x00\x01\x02\xff" * 100))


def test_inline_pgp_signed_complaint_is_read() -> None:
    body = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n- --\nspam from 192.0.2.33\n"
        "-----BEGIN PGP SIGNATURE-----\n\niQEz\n-----END PGP SIGNATURE-----\n"
    )
    (ev,), _ = run(FreetextParser(), mail("report", body))
    assert ev.source_ip == "192.0.2.33" and ev.kind == "spam"


@pytest.mark.parametrize(
    ("text", "rid"),
    [
        ("SBL123456 - The Spamhaus Project", "SBL123456"),
        ("[CSIRT#2026012310000001] Malicious content", "2026012310000001"),
        ("Notice, Please React Ref ID:[HL55754793.8BD69-2c75]", "HL55754793.8BD69-2c75"),
        ("- Report ID:  c141a958-6477-466b-8fec-235a460a5fa7", "c141a958-6477-466b-8fec-235a460a5fa7"),
        ("Ticket #A-2026-77", "A-2026-77"),
        ("- Issue:  Client software hosts", None),
    ],
)
def test_find_report_id(text: str, rid: str | None) -> None:
    assert find_report_id(text) == rid


def test_blocklist_notice_is_blocklisted_with_its_listing_id() -> None:
    body = (
        "SBL123456 - Example Block List\n\nThis is an automated message to advise you that the IP below has been "
        "added to the block list:\n\nIP/cidr: 192.0.2.40\n\nProblem: spammer hosting\n"
    )
    (ev,), _ = run(FreetextParser(), mail("Block List Notify: IP: 192.0.2.40 added", body))
    assert (ev.kind, ev.source_ip, ev.report_id) == ("blocklisted", "192.0.2.40", "SBL123456")


def test_url_list_without_mail_headers_is_read_as_text() -> None:
    data = b"http://phish.example.com/a\nhttp://www..example.com/empty-label\n"
    (ev,), _ = run(FreetextParser(), data)
    assert ev.source_url == "http://phish.example.com/a"
