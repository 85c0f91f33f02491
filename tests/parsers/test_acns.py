from __future__ import annotations

from email.message import EmailMessage

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.parsers.acns import AcnsParser
from tests.parsers.feedsupport import make_report, run

XML = """<?xml version="1.0" encoding="UTF-8"?>
<Infringement xmlns="http://www.acns.net/ACNS" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <Case><ID>CASE-4711</ID><Status>Open</Status></Case>
 <Complainant>
  <Entity>Example Pictures Inc.</Entity><Contact>Example Agent</Contact>
  <Address>1 Example Road, Example City</Address><Email>notices@example.com</Email>
 </Complainant>
 <Service_Provider><Entity>Example Cloud</Entity><Email>abuse@example.net</Email></Service_Provider>
 <Source>
  <TimeStamp>2026-02-27T20:35:03Z</TimeStamp>
  <IP_Address>{ip}</IP_Address>
  <Port>51413</Port>
  <Type>BitTorrent</Type>
  <SubType BaseType="P2P" Protocol="BITTORRENT"/>
 </Source>
 <Content><Item>
   <TimeStamp>2026-02-27T20:35:03Z</TimeStamp>
   <Title>An Example Film</Title><FileName>An.Example.Film.2026.1080p</FileName>
   <FileSize>1234</FileSize><Hash Type="SHA1">0123456789abcdef0123456789abcdef01234567</Hash>
 </Item></Content>
</Infringement>
"""

parser = AcnsParser()


def mail(body: str, attachment: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Notices <notices@example.com>"
    msg["To"] = "abuse@example.net"
    msg["Subject"] = "Notice of Claimed Infringement - Case ID CASE-4711"
    msg["Date"] = "Sat, 28 Feb 2026 09:00:00 +0000"
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment.encode(), maintype="text", subtype="xml", filename="CASE-4711.xml")
    return msg.as_bytes()


def test_attached_xml_gives_one_p2p_event() -> None:
    data = mail("Dear Sir or Madam, see the attached notice.\n", XML.format(ip="192.0.2.44"))
    assert parser.recognises(make_report(data))
    events, issues = run(parser, data)
    assert issues == []
    (e,) = events
    assert (e.kind, e.source_ip, e.source_port) == ("copyright-p2p", "192.0.2.44", 51413)
    assert e.time.isoformat() == "2026-02-27T20:35:03+00:00"
    assert e.report_id == "CASE-4711" and e.reporter == "notices@example.com"
    assert e.application == "bittorrent"
    assert e.extra["rights_holder"] == "Example Pictures Inc."
    assert e.extra["works"][0]["title"] == "An Example Film"
    assert e.extra["works"][0]["hash_type"] == "SHA1"


def test_inline_pgp_signed_xml_with_dash_escapes_and_duplicate_copy() -> None:
    body = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA1\n\nNotice text.\n- - ---Start ACNS XML\n"
        + XML.format(ip="2001:db8::44")
        + "- - ---End ACNS XML\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n"
    )
    events, _ = run(parser, mail(body, XML.format(ip="2001:db8::44")))
    assert len(events) == 1 and events[0].source_ip == "2001:db8::44"
    assert events[0].extra["acns_found_in"] == "CASE-4711.xml"


def test_bare_xml_file() -> None:
    events, _ = run(parser, XML.format(ip="198.51.100.3").encode(), "notice.xml")
    assert events[0].source_ip == "198.51.100.3"


def test_web_notice_is_copyright_with_url() -> None:
    xml = (
        XML.format(ip="")
        .replace("<Type>BitTorrent</Type>", "<Type>HTTP</Type>")
        .replace('<SubType BaseType="P2P" Protocol="BITTORRENT"/>', "")
        .replace("<FileSize>", "<URL>https://files.example.net/film.mkv</URL><FileSize>")
    )
    events, _ = run(parser, xml.encode())
    assert events[0].kind == "copyright" and events[0].source_url == "https://files.example.net/film.mkv"
    assert events[0].source_ip is None


def test_notice_without_address_or_url_is_an_issue() -> None:
    events, issues = run(parser, XML.format(ip="").encode())
    assert events == [] and "neither an IP address nor a URL" in issues[0].reason


def test_truncated_xml_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="malformed or truncated"):
        run(parser, XML.format(ip="192.0.2.1")[:600].encode())


def test_entities_are_refused() -> None:
    evil = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Infringement xmlns="http://www.acns.net/ACNS">&a;</Infringement>'
    with pytest.raises(ParseError, match="DTD or entities"):
        run(parser, evil.encode())


def test_bad_address_is_an_issue() -> None:
    events, issues = run(parser, XML.format(ip="192.0.2.300").encode())
    assert events == [] and "source.ip" in issues[0].reason


def test_other_mail_is_not_recognised() -> None:
    assert not parser.recognises(make_report(mail("Hello, your server 192.0.2.1 is sending spam.\n")))
    with pytest.raises(ParseError, match="no ACNS"):
        run(parser, mail("Hello.\n"))
