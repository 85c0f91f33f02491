"""The sniffers' structural pre-checks (issue 4) decline only mail that their full checks decline too.

``xarf.may_attach_json``, ``xarf_legacy.may_hold_report`` and ``acns.may_attach_xml`` let the intake decline a
mail that holds none of their reports without a standard-library MIME parse. They may say "maybe" too often,
never too rarely: over every corpus and golden input, a file the full check accepts passes the pre-check. The
crafted cases below hide the markers in the ways the pre-checks must see through (transfer encodings, charsets,
RFC 2231, YAML escapes, folded fields).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import pytest

from abusedesk.parsers import acns, xarf, xarf_legacy
from abusedesk.parsers.acns import AcnsParser
from abusedesk.parsers.xarf import XarfParser
from abusedesk.parsers.xarf_legacy import XarfLegacyParser
from tests.conftest import CORPUS
from tests.parsers.feedsupport import make_report

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def _inputs() -> list[Path]:
    files = sorted(GOLDEN.rglob("*.in"))
    if CORPUS.is_dir():
        files += sorted(p for p in (CORPUS / "reports").rglob("*") if p.is_file() and not p.name.endswith(".license"))
    return files


def _full(parser: XarfParser | XarfLegacyParser | AcnsParser, data: bytes, monkeypatch: pytest.MonkeyPatch) -> bool:
    """The parser's recognises with its pre-check switched off."""
    with monkeypatch.context() as m:
        m.setattr(xarf, "may_attach_json", lambda _data: True)
        m.setattr(xarf_legacy, "may_hold_report", lambda _data: True)
        m.setattr(acns, "may_attach_xml", lambda _data: True)
        return parser.recognises(make_report(data))


def _json_precheck(data: bytes) -> bool:
    """XarfParser's pre-check: a bare JSON document is judged as before, a mail by may_attach_json."""
    return xarf._json_head(data) or xarf.may_attach_json(data)


def test_the_precheck_never_declines_what_the_full_check_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    files = _inputs()
    assert len(files) > 100  # the golden files at least; the corpus too where it is present
    accepted = declined = 0
    for path in files:
        data = path.read_bytes()
        for parser, precheck in (
            (XarfParser(), _json_precheck),
            (XarfLegacyParser(), xarf_legacy.may_hold_report),
            (AcnsParser(), lambda d: acns._MARKER in d or acns.may_attach_xml(d)),
        ):
            full = _full(parser, data, monkeypatch)
            assert parser.recognises(make_report(data)) == full, path  # the parser's answer is unchanged
            if full:
                accepted += 1
                assert precheck(data), f"{parser.name} pre-check declines {path}, which the full check accepts"
            elif not precheck(data):
                declined += 1
    assert accepted > 0 and declined > 0  # both sides are exercised


def _arf_like(headers: str, body: bytes) -> bytes:
    return (
        b"From: reports@example.net\r\nTo: abuse@example.net\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'
        b"--b1\r\n" + headers.encode() + b"\r\n\r\n" + body + b"\r\n--b1--\r\n"
    )


REPORT = (
    b"---\r\nReported-From: reports@example.net\r\nCategory: abuse\r\nReport-Type: login-attack\r\n"
    b"Source: 192.0.2.7\r\nSource-Type: ipv4\r\nDate: Sat, 31 Jan 2026 07:19:02 +0100\r\n"
)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ('Content-Type: text/plain; name="report.txt"', REPORT),
        (
            'Content-Type: text/plain; name="report.txt"\r\nContent-Transfer-Encoding: base64',
            base64.encodebytes(REPORT),
        ),
        (
            'Content-Type: text/plain; name="report.txt"\r\nContent-Transfer-Encoding: quoted-printable',
            binascii.b2a_qp(REPORT).replace(b"Category", b"Cat=\r\negory").replace(b"Report-Type", b"=52eport-Type"),
        ),
        ('Content-Type: text/plain; charset="utf-16"; name="report.txt"', REPORT.decode().encode("utf-16")),
        ("Content-Type: text/plain; charset*=''utf-16; name=\"report.txt\"", REPORT.decode().encode("utf-16")),
        ('Content-Type: text/plain; name="report.txt"', REPORT.replace(b"Category: abuse", b'"\\x43ategory": abuse')),
        (
            'Content-Type: text/plain; name="report.txt"',
            REPORT.replace(b"Category: abuse", b"? category # key\r\n: abuse"),
        ),
    ],
    ids=["plain", "base64", "quoted-printable", "utf-16", "rfc2231-charset", "yaml-escape", "explicit-key"],
)
def test_hidden_legacy_reports_pass_the_precheck(headers: str, body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _arf_like(headers, body)
    assert _full(XarfLegacyParser(), data, monkeypatch)  # the case is a real report
    assert xarf_legacy.may_hold_report(data)
    assert XarfLegacyParser().recognises(make_report(data))


JSON = b'{"xarf_version": "4.0.0", "report_id": "r1", "category": "spam"}'


@pytest.mark.parametrize(
    "headers",
    [
        'Content-Type: application/octet-stream; name="xarf.json"',
        "Content-Type: APPLICATION/JSON",
        "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=''xarf%2E%6Ason",
        "Content-Type: application/octet-stream\r\n"
        'Content-Disposition: attachment; filename*0="xarf.js"; filename*1="on"',
    ],
    ids=["name", "type-upper-case", "rfc2231-encoded", "rfc2231-split"],
)
def test_json_attachments_pass_the_precheck(headers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _arf_like(headers + "\r\nContent-Transfer-Encoding: base64", base64.encodebytes(JSON))
    assert _full(XarfParser(), data, monkeypatch)
    assert xarf.may_attach_json(data)
    assert XarfParser().recognises(make_report(data))


def test_a_plain_feedback_report_is_declined_without_a_mime_parse() -> None:
    data = (GOLDEN / "arf").glob("*.in").__next__().read_bytes()
    report = make_report(data)
    assert not XarfParser().recognises(report)
    assert not XarfLegacyParser().recognises(report)
    assert "message" not in report.__dict__  # the cached standard-library parse was never made


NOTICE = (
    b'<?xml version="1.0"?>\r\n<Infringement xmlns="http://www.acns.net/ACNS">'
    b"<Case><ID>c1</ID></Case><Source><IP_Address>192.0.2.7</IP_Address></Source></Infringement>\r\n"
)


@pytest.mark.parametrize(
    "headers",
    [
        'Content-Type: application/octet-stream; name="notice.XML"\r\nContent-Transfer-Encoding: base64',
        "Content-Type: Text/Xml\r\nContent-Transfer-Encoding: base64",
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename*=''notice%2E%78%6D%6C",
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename*0="notice.x"; filename*1="ml"',
        'CONTENT-TYPE: application/octet-stream;\r\n\tname="notice.xml"\r\nContent-Transfer-Encoding: base64',
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment;\r\n filename=notice.xml",
    ],
    ids=["name", "type", "rfc2231-percent", "rfc2231-pieces", "folded-name", "folded-filename"],
)
def test_hidden_acns_notices_pass_the_precheck(headers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The marker is hidden by base64; what shows the part is XML is a header field, or an RFC 2231 name."""
    data = _arf_like(headers, base64.encodebytes(NOTICE))
    assert acns._MARKER not in data
    assert _full(AcnsParser(), data, monkeypatch)  # the case is a real notice
    assert acns.may_attach_xml(data)
    assert AcnsParser().recognises(make_report(data))


def test_a_feedback_report_is_declined_without_a_mime_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.parsers.test_arf import RFC_FIELDS, arf_mail

    data = arf_mail(RFC_FIELDS).replace(b"body\n", b'<html xmlns="http://www.w3.org/1999/xhtml">body</html>\n')
    report = make_report(data)
    assert not acns.may_attach_xml(data)
    assert not AcnsParser().recognises(report)
    assert "message" not in vars(report)  # the cached parse was never made
