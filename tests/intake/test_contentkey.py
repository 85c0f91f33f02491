"""The content key: which differences make another report, and which are only the way the message came in."""

from __future__ import annotations

import pytest

from abusedesk.intake.contentkey import canonical_mail, content_key, is_transport_header
from tests.intake.samples import complaint

pytestmark = pytest.mark.unit

TRANSIT = (
    b"Return-Path: <reporter@example.net>\n"
    b"Delivered-To: abuse@provider.example\n"
    b"X-Original-To: abuse@provider.example\n"
    b"Envelope-To: abuse@provider.example\n"
    b"X-Envelope-From: reporter@example.net\n"
    b"Received: from mx2.example.net (mx2.example.net [192.0.2.30])\n"
    b"\tby mx.provider.example with ESMTPS id 4Q1; Sun, 1 Mar 2026 09:00:02 +0000\n"
    b"ARC-Seal: i=1; a=rsa-sha256; t=1772355602; cv=none; d=provider.example; s=arc;\n"
    b"  b=AbCdEf0123\n"
    b"ARC-Authentication-Results: i=1; mx.provider.example; spf=pass\n"
    b"Authentication-Results: mx.provider.example; dkim=pass header.d=example.net\n"
    b"Received-SPF: pass (mx.provider.example: domain of example.net designates 192.0.2.30)\n"
    b"X-Spam-Status: No, score=-0.1\n"
    b"X-Virus-Scanned: clamav\n"
    b"Status: RO\n"
)


def _key(data: bytes, reporter: str | None = "reporter@example.net") -> str:
    return content_key(data, reporter=reporter)


@pytest.mark.parametrize(
    "name",
    ["Received", "received", "X-Received", "Return-Path", "Delivered-To", "X-Original-To", "Envelope-To",
     "X-Envelope-To", "ARC-Seal", "ARC-Message-Signature", "Authentication-Results", "Received-SPF",
     "X-Spam-Score", "X-Virus-Scanned", "Status", "X-UID", "X-Mozilla-Status2"],
)  # fmt: skip
def test_transport_headers(name: str) -> None:
    assert is_transport_header(name)


@pytest.mark.parametrize(
    "name", ["From", "To", "Subject", "Date", "Message-ID", "DKIM-Signature", "X-ARF", "Content-Type", "X-Mailer"]
)
def test_author_headers_count(name: str) -> None:
    assert not is_transport_header(name)


def test_a_message_is_the_same_whatever_way_it_came_in() -> None:
    mail = complaint()
    first = _key(mail)
    assert _key(TRANSIT + mail) == first  # our MTA's and the relays' headers, folded lines included
    assert _key(mail.replace(b"\n", b"\r\n")) == first  # SMTP's CRLF, a maildir's LF
    assert _key(b"From reporter@example.net Sun Mar  1 09:00:02 2026\n" + mail) == first  # an mbox separator
    # a transport header between the author's fields is set aside too; the author's order stays
    head, body = mail.split(b"\n\n", 1)
    lines = head.split(b"\n")
    assert _key(b"\n".join([lines[0], b"Received: from x by y", *lines[1:]]) + b"\n\n" + body) == first


def test_the_canonical_form_keeps_the_authors_fields_and_the_body() -> None:
    mail = complaint()
    canon = canonical_mail(TRANSIT + mail)
    assert canon == mail
    assert b"Received" not in canon
    assert canonical_mail(b"Received: a\n\tb\nSubject: s\n\nbody\n\nmore\n") == b"Subject: s\n\nbody\n\nmore\n"


@pytest.mark.parametrize(
    "other",
    [
        complaint(body="Your host 192.0.2.21 sent us spam on 2026-03-01 08:00 UTC.\n"),
        complaint(subject="Fwd: Spam from 192.0.2.20"),
        complaint(headers={"DKIM-Signature": "v=1; d=example.net; s=s1; b=abc"}),
        complaint(headers={"X-Mailer": "another"}),
        complaint().replace(b"sent us spam", b"sent us  spam"),
    ],
    ids=["body", "subject", "dkim-signature", "x-mailer", "one-space"],
)
def test_any_change_by_the_author_is_another_report(other: bytes) -> None:
    assert _key(other) != _key(complaint())


def test_the_reporter_is_part_of_the_key() -> None:
    mail = complaint()
    assert _key(mail, "a@example.net") != _key(mail, "b@example.net") != _key(mail, None)
    assert _key(mail, None) == _key(mail, None)


def test_other_inputs_are_keyed_on_their_whole_bytes() -> None:
    csv = b'"timestamp","ip","port"\n"2026-03-01 08:00:00","192.0.2.5","23"\n'
    assert _key(csv) == _key(bytes(csv))
    assert _key(csv + b"\n") != _key(csv)  # no normalising outside mail: a byte more is other content
    assert _key(csv.replace(b"\n", b"\r\n")) != _key(csv)
    doc = b'{"xarf_version": "4.0.0", "report_id": "x"}'
    assert _key(doc) != _key(b'{"xarf_version":"4.0.0","report_id":"x"}')
    # ... unless the channel names the canonical content (the API's XARF documents)
    canon = b'{"report_id":"x","xarf_version":"4.0.0"}'
    assert content_key(doc, reporter="r", canonical=canon) == content_key(b"{ }", reporter="r", canonical=canon)
    # bytes keyed as bytes never collide with the same text given as a channel's canonical form
    assert content_key(canon, reporter="r") != content_key(b"x", reporter="r", canonical=canon)
