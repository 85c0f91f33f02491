"""ARF (RFC 5965) feedback reports: fields, historic Received-Date, IPv6, derived sender, malformed inputs."""

from __future__ import annotations

import base64
import quopri
from datetime import UTC, datetime

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.parsers.arf import ArfParser, fast_view
from tests.parsers.mailsupport import make_report, run

pytestmark = pytest.mark.unit


def arf_mail(
    fields: str,
    original: str = "",
    *,
    sender: str = "fbl@mailbox.example.net",
    report_type: str = "feedback-report",
    third_type: str = "message/rfc822",
) -> bytes:
    original = original or (
        "Received: from mta.example.com (mta.example.com [192.0.2.44])\n"
        "\tby mx.mailbox.example.net with ESMTP id 1; Mon, 02 Feb 2026 10:00:00 +0000\n"
        "From: news@example.com\nTo: redacted@mailbox.example.net\nSubject: Buy now\n"
        "Message-ID: <spam-1@example.com>\nDate: Mon, 02 Feb 2026 09:59:58 +0000\n\nbody\n"
    )
    return (
        f"From: {sender}\nTo: abuse@example.org\nSubject: FBL\nDate: Mon, 02 Feb 2026 12:00:00 +0000\n"
        f"Message-ID: <report-1@mailbox.example.net>\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="b1"\n\n'
        "--b1\nContent-Type: text/plain\n\nThis is an abuse report.\n\n"
        f"--b1\nContent-Type: message/feedback-report\n\n{fields}\n\n"
        f"--b1\nContent-Type: {third_type}\n\n{original}\n--b1--\n"
    ).encode()


RFC_FIELDS = (
    "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\n"
    "Original-Mail-From: <news@example.com>\nOriginal-Rcpt-To: <redacted@mailbox.example.net>\n"
    "Arrival-Date: Mon, 02 Feb 2026 10:00:00 +0100\nSource-IP: 192.0.2.44\n"
    "Reported-Domain: example.com\nReported-URI: http://example.com/offer\n"
    "Reported-URI: http://example.com/unsubscribe\nIncidents: 3\n"
)


def test_rfc5965_report_yields_one_spam_event_with_evidence() -> None:
    parser = ArfParser()
    data = arf_mail(RFC_FIELDS)
    assert parser.recognises(make_report(data))
    events, issues = run(parser, data)
    assert issues == []
    (ev,) = events
    assert ev.kind == "spam"
    assert ev.source_ip == "192.0.2.44"
    assert not ev.ip_derived
    assert ev.time == datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    assert ev.reporter == "fbl@mailbox.example.net"
    assert ev.source_fqdn == "example.com"
    assert ev.source_url == "http://example.com/offer"
    assert ev.extra["feedback_type"] == "abuse"
    assert ev.extra["reported_uris"] == ["http://example.com/offer", "http://example.com/unsubscribe"]
    assert ev.extra["incidents"] == "3"
    assert ev.extra["original_message_id"] == "<spam-1@example.com>"
    assert ev.extra["original_rcpt_to"] == ["<redacted@mailbox.example.net>"]
    assert ev.extra["received_chain"][0].startswith("from mta.example.com")


def test_historic_received_date_and_version_01() -> None:
    fields = "Feedback-Type: abuse\nUser-Agent: Old SComp\nVersion: 0.1\n"
    fields += "Received-Date: Tue, 19 Jan 2016 14:32:40 -0500 (EST)\nSource-IP: 192.0.2.9\n"
    (ev,), _ = run(ArfParser(), arf_mail(fields))
    assert ev.time == datetime(2016, 1, 19, 19, 32, 40, tzinfo=UTC)
    assert ev.extra["arf_version"] == "0.1"


def test_ipv6_source_ip_is_normalised() -> None:
    fields = RFC_FIELDS.replace("Source-IP: 192.0.2.44", "Source-IP: 2001:db8:0:0:0:0:0:122")
    (ev,), _ = run(ArfParser(), arf_mail(fields))
    assert ev.source_ip == "2001:db8::122"


@pytest.mark.parametrize(
    ("feedback_type", "kind"),
    [("fraud", "fraud"), ("virus", "malware"), ("auth-failure", "header-forgery"), ("not-spam", "other")],
)
def test_feedback_type_maps_to_kind(feedback_type: str, kind: str) -> None:
    (ev,), _ = run(ArfParser(), arf_mail(RFC_FIELDS.replace("Feedback-Type: abuse", f"Feedback-Type: {feedback_type}")))
    assert ev.kind == kind
    assert ev.extra["feedback_type"] == feedback_type


def test_sparse_microsoft_report_derives_ip_from_first_external_hop() -> None:
    fields = "Feedback-Type: abuse\nUser-Agent: Microsoft JMRP\nVersion: 1\n"
    original = (
        "Received: from BL0PR01MB.prod.outlook.example.com (10.167.24.3) by BL0PR01CA.prod.outlook.example.com\n"
        " with HTTPS; Mon, 02 Feb 2026 10:00:02 +0000\n"
        "Received: from mail.example.com (203.0.113.25) by mx.outlook.example.com (10.167.24.9)\n"
        " with ESMTP; Mon, 02 Feb 2026 10:00:01 +0000\n"
        "Received: from laptop (unknown [192.168.1.20]) by mail.example.com; Mon, 02 Feb 2026 10:00:00 +0000\n"
        "Subject: hi\nDate: Mon, 02 Feb 2026 10:00:00 +0000\n\nbody\n"
    )
    (ev,), _ = run(ArfParser(), arf_mail(fields, original, third_type="text/rfc822-headers"))
    assert ev.source_ip == "203.0.113.25"
    assert ev.ip_derived is True
    assert ev.time == datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
    assert ev.confidence < 0.9
    assert "derived_from_hop" in ev.extra
    assert ev.to_dict()["source.ip_derived"] is True


def test_xarf_envelope_is_left_to_the_xarf_parser() -> None:
    data = arf_mail("Feedback-Type: xarf\nVersion: 1\nSource-IP: 192.0.2.1\n")
    assert not ArfParser().recognises(make_report(data))


def test_plain_mail_is_not_recognised() -> None:
    data = b"From: a@example.com\nTo: b@example.org\nSubject: hi\n\nhello 192.0.2.1\n"
    assert not ArfParser().recognises(make_report(data))


def test_truncated_report_without_feedback_part_raises() -> None:
    data = arf_mail(RFC_FIELDS).split(b"--b1\nContent-Type: message/feedback-report")[0]
    with pytest.raises(ParseError, match="feedback-report"):
        list(ArfParser().parse(make_report(data)))


def test_missing_feedback_type_raises() -> None:
    with pytest.raises(ParseError, match="Feedback-Type"):
        list(ArfParser().parse(make_report(arf_mail("User-Agent: x\nSource-IP: 192.0.2.1\n"))))


def test_no_source_and_no_external_hop_raises() -> None:
    original = "Received: from a (a [10.0.0.1]) by b; Mon, 02 Feb 2026 10:00:00 +0000\nSubject: x\n\nbody\n"
    with pytest.raises(ParseError, match="Source-IP"):
        list(ArfParser().parse(make_report(arf_mail("Feedback-Type: abuse\n", original))))


def test_bad_source_ip_and_bad_date_become_issues_with_fallbacks() -> None:
    fields = "Feedback-Type: abuse\nArrival-Date: yesterday-ish\nSource-IP: not-an-ip\n"
    (ev,), issues = run(ArfParser(), arf_mail(fields))
    assert ev.source_ip == "192.0.2.44" and ev.ip_derived
    assert ev.time == datetime(2026, 2, 2, 9, 59, 58, tzinfo=UTC)
    assert {i.reason.split()[0] for i in issues} == {"Source-IP", "Arrival-Date"}


def test_pgp_mime_signed_wrapper_is_unwrapped() -> None:
    inner = arf_mail(RFC_FIELDS).split(b"\n", 5)[5]  # Content-Type onwards
    data = (
        b"From: fbl@mailbox.example.net\nTo: abuse@example.org\nSubject: signed\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256; boundary="s1"\n\n'
        b"--s1\n" + inner + b"\n--s1\nContent-Type: application/pgp-signature\n\n-----BEGIN PGP SIGNATURE-----\n"
        b"abc\n-----END PGP SIGNATURE-----\n--s1--\n"
    )
    assert ArfParser().recognises(make_report(data))
    (ev,), _ = run(ArfParser(), data)
    assert ev.source_ip == "192.0.2.44"


def test_non_mail_input_raises() -> None:
    with pytest.raises(ParseError):
        list(ArfParser().parse(make_report(b"\x00\x01 not a mail")))


def test_report_forwarded_as_message_rfc822_is_found() -> None:
    inner = arf_mail(RFC_FIELDS)
    data = (
        b"From: colleague@example.org\nTo: abuse@example.org\nSubject: Fwd: FBL\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="f1"\n\n--f1\nContent-Type: text/plain\n\nsee attached\n'
        b"--f1\nContent-Type: message/rfc822\n\n" + inner + b"\n--f1--\n"
    )
    assert ArfParser().recognises(make_report(data))
    (ev,), _ = run(ArfParser(), data)
    assert ev.source_ip == "192.0.2.44"
    assert ev.reporter == "fbl@mailbox.example.net"
    assert ev.extra["forwarded_by"] == "colleague@example.org"


def test_wrong_and_missing_charsets_and_long_headers_do_not_break_parsing() -> None:
    data = arf_mail(RFC_FIELDS).replace(b"Subject: FBL", b"Subject: =?bogus?Q?caf=E9?= " + b"y" * 20000)
    data = data.replace(b"Content-Type: text/plain\n", b"Content-Type: text/plain; charset=nonexistent\n\n\xff\xfe\xe9")
    (ev,), _ = run(ArfParser(), data)
    assert ev.source_ip == "192.0.2.44"


def _encoded_feedback(fields: str, encoding: str, eol: str = "\n") -> tuple[bytes, bytes]:
    """The same report twice: its feedback fields as written, and transfer-encoded (which RFC 2046 forbids)."""
    plain = arf_mail(fields)
    text = fields.encode()
    body = base64.encodebytes(text) if encoding.strip().lower() == "base64" else quopri.encodestring(text)
    encoded = plain.replace(
        b"Content-Type: message/feedback-report\n\n" + text,
        b"Content-Type: message/feedback-report\nContent-Transfer-Encoding: " + encoding.encode() + b"\n\n" + body,
    )
    assert encoded != plain
    return plain.replace(b"\n", eol.encode()), encoded.replace(b"\n", eol.encode())


LONG_FIELDS = RFC_FIELDS.replace("User-Agent: SomeGenerator/1.0", "User-Agent: " + "G" * 120 + "=x caf\u00e9")


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable", "Quoted-Printable ", " BASE64"])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("fields", [RFC_FIELDS, LONG_FIELDS], ids=["rfc", "long-8bit"])
def test_transfer_encoded_feedback_fields_are_decoded(encoding: str, eol: str, fields: str) -> None:
    """Some reporters base64 or quoted-printable encode the feedback part; it reads as the plain report does."""
    plain, encoded = _encoded_feedback(fields, encoding, eol)
    parser = ArfParser()
    assert fast_view(encoded) is None  # the fast readers leave it to the standard library, which decodes it
    assert parser.recognises(make_report(encoded))
    assert [e.to_dict() for e in parser.parse(make_report(encoded))] == [
        e.to_dict() for e in parser.parse(make_report(plain))
    ]
