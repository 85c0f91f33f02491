"""The mail helpers added for the complaint parsers: Received hops, dates, signed wrappers, opaque S/MIME."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.parsers import mime
from abusedesk.parsers.freetext import FreetextParser
from tests.parsers.mailsupport import run
from tests.support.certs import self_signed_cert
from tests.support.components import require_program

CONTENT = b"From: fbl@example.net\r\nSubject: complaint\r\n\r\nspam from 192.0.2.5 at 2026-02-01T10:00:00Z\r\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tue, 19 Jan 2016 14:32:40 -0500 (EST)", datetime(2016, 1, 19, 19, 32, 40, tzinfo=UTC)),
        ("Mon, 28 Sep 2015 21:31:04 UT", datetime(2015, 9, 28, 21, 31, 4, tzinfo=UTC)),
        ("Mon, 26 Oct 2015 11:28:27 UTz", datetime(2015, 10, 26, 11, 28, 27, tzinfo=UTC)),
        ("Mon, 18 Jan 2016 23:57:24 UTC", datetime(2016, 1, 18, 23, 57, 24, tzinfo=UTC)),
        ("2015-07-23T01:58:17+00:00", datetime(2015, 7, 23, 1, 58, 17, tzinfo=UTC)),
        ("Mon, 08 Jun 2015 09:43:15", datetime(2015, 6, 8, 9, 43, 15, tzinfo=UTC)),
    ],
)
def test_parse_mail_date(text: str, expected: datetime) -> None:
    assert mime.parse_mail_date(text) == expected


@pytest.mark.parametrize("text", [None, "", "yesterday", "Mon, 32 Foo 2026 99:99:99 +9999"])
def test_parse_mail_date_unreadable_is_none(text: str | None) -> None:
    assert mime.parse_mail_date(text) is None


def test_received_hops_and_first_external_hop() -> None:
    msg = mime.parse_message(
        b"Received: from int (int.example.net [10.0.0.5]) by mx; Mon, 02 Feb 2026 10:00:02 +0000\n"
        b"Received: from out.example.com (out.example.com [IPv6:2001:db8::25])\n\tby int.example.net; x\n"
        b"Received: from laptop ([192.168.1.2]) by out.example.com; x\nSubject: s\n\nbody\n"
    )
    hops = mime.received_hops(msg)
    assert [h.ip for h in hops] == ["10.0.0.5", "2001:db8::25", "192.168.1.2"]
    assert hops[1].from_host == "out.example.com" and hops[1].by == "int.example.net"
    hop = mime.first_external_hop(msg)
    assert hop is not None and hop.ip == "2001:db8::25"
    assert mime.is_internal_ip("100.64.1.1") and mime.is_internal_ip("fd00::1") and mime.is_internal_ip("junk")
    assert not mime.is_internal_ip("192.0.2.1")


def test_inline_pgp_is_unwrapped_with_dash_escapes_undone() -> None:
    text = (
        "pre\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n- -- line\nbody\n"
        "-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\npost"
    )
    assert mime.strip_inline_pgp(text) == "pre\n-- line\nbody\npost"
    assert mime.strip_inline_pgp("plain") == "plain"


@pytest.mark.parametrize("stream", [False, True], ids=["der", "ber-indefinite"])
def test_opaque_smime_signed_data_is_unwrapped(tmp_path: Path, stream: bool) -> None:
    openssl = require_program("openssl")
    cert, key = self_signed_cert(tmp_path, cn="fbl.example.net")
    msg, out = tmp_path / "m.txt", tmp_path / "s.eml"
    msg.write_bytes(CONTENT)
    args = [openssl, "smime", "-sign", "-nodetach", "-in", str(msg), "-signer", str(cert), "-inkey", str(key)]
    args += ["-outform", "SMIME", "-out", str(out)] + (["-stream"] if stream else [])
    subprocess.run(args, check=True, capture_output=True)
    signed = b"From: fbl@example.net\nTo: abuse@example.org\nSubject: signed\n" + out.read_bytes()
    inner = mime.signed_content(mime.parse_message(signed))
    assert inner.get("Subject") == "complaint"
    (ev,), _ = run(FreetextParser(), signed)
    assert ev.source_ip == "192.0.2.5" and ev.kind == "spam"


@pytest.mark.parametrize("der", [b"", b"\x30\x80", b"\x30\x03\x06\x01\x00", b"\x04\x82\xff\xff", b"\x30" * 100])
def test_cms_garbage_is_not_content(der: bytes) -> None:
    assert mime.cms_signed_content(der) is None


def _zip_member(method: int, payload: bytes) -> bytes:
    """A one-member zip whose member claims ``method`` and carries ``payload`` as its compressed data."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("scan_telnet.csv", b"ip,port\n192.0.2.1,23\n" * 50)
    data = bytearray(buf.getvalue())
    # local header: compression method at offset 8, compressed data after the 30-byte header and the name
    name_len = int.from_bytes(data[26:28], "little")
    start = 30 + name_len
    data[8:10] = method.to_bytes(2, "little")
    central = data.find(b"PK\x01\x02")
    data[central + 10 : central + 12] = method.to_bytes(2, "little")
    data[start : start + len(payload)] = payload
    return bytes(data)


@pytest.mark.parametrize(
    ("method", "payload", "reason"),
    [
        (99, b"", "unknown compression method"),  # zipfile: NotImplementedError
        (8, b"\xff\xff\xff\xff\xff\xff", "corrupt deflate data"),  # zlib.error
    ],
)
def test_a_corrupt_archive_is_a_parse_error_naming_the_member(method: int, payload: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=r"zip member 'scan_telnet.csv' cannot be read|zip archive is corrupt"):
        mime.expand_archive("report.zip", "application/zip", _zip_member(method, payload))
