from __future__ import annotations

from email.message import EmailMessage

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.parsers.dmca import DmcaParser, check_counter_notice, check_notice
from tests.parsers.feedsupport import make_report, run

COMPLETE = """Dear Abuse Team,

This is a notice under the Digital Millennium Copyright Act, 17 U.S.C. 512(c)(3).

Copyrighted work: "An Example Song" by Example Records Ltd.

Infringing URL: https://files.example.net/share/example-song.mp3
Infringing URL: https://files.example.net/share/example-song-2.mp3

Contact: Jane Doe, Example Records Ltd., 1 Example Road, Example City
Email: rights@example.com  Phone: +1 555 010 0000

I have a good faith belief that use of the material in the manner complained of is not authorized by the
copyright owner, its agent, or the law. The information in this notification is accurate, and under penalty of
perjury, I am authorized to act on behalf of the owner of an exclusive right that is allegedly infringed.

/s/ Jane Doe
"""

COUNTER = """To the designated agent,

This is a DMCA counter-notice under 17 U.S.C. 512(g)(3).
The material that was removed was at https://blog.example.net/post/42 before it was disabled.
I swear, under penalty of perjury, that I have a good faith belief that the material was removed or disabled as a
result of mistake or misidentification of the material to be removed or disabled.
I consent to the jurisdiction of the Federal District Court for the judicial district in which my address is located.
John Doe, 2 Example Street, Example Town, phone +1 555 010 0001, john@example.org

Signed: John Doe
"""

parser = DmcaParser()


def mail(
    body: str, subject: str = "DMCA Notice of Copyright Infringement [Ref ID: EX-2026-0001]", attach: bool = False
) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Rights Desk <rights@example.com>"
    msg["To"] = "abuse@example.net"
    msg["Subject"] = subject
    msg["Date"] = "Sat, 28 Feb 2026 09:00:00 +0100"
    msg["Message-ID"] = "<n1@example.com>"
    msg.set_content(body)
    if attach:
        msg.add_attachment(b"%PDF-1.4 power of attorney", maintype="application", subtype="pdf", filename="poa.pdf")
    return msg.as_bytes()


def test_complete_notice_one_event_per_infringing_url() -> None:
    data = mail(COMPLETE)
    assert parser.recognises(make_report(data))
    events, issues = run(parser, data)
    assert issues == []
    assert [e.source_url for e in events] == [
        "https://files.example.net/share/example-song.mp3",
        "https://files.example.net/share/example-song-2.mp3",
    ]
    e = events[0]
    assert e.kind == "copyright" and e.extra["dmca_complete"] is True and e.extra["dmca_missing"] == []
    assert "triage" not in e.extra and e.confidence == 0.9
    assert e.report_id == "EX-2026-0001" and e.reporter == "rights@example.com"
    assert e.time.isoformat() == "2026-02-28T08:00:00+00:00"


@pytest.mark.parametrize(
    ("remove", "element"),
    [
        ("/s/ Jane Doe", "signature"),
        ('Copyrighted work: "An Example Song" by Example Records Ltd.', "work"),
        ("I have a good faith belief", "good_faith"),
        ("under penalty of\nperjury", "accuracy_perjury"),
        ("I am authorized to act", "accuracy_perjury"),
    ],
)
def test_each_missing_element_is_named(remove: str, element: str) -> None:
    body = COMPLETE.replace(remove, "")
    assert remove not in body
    assert element in check_notice(body)
    events, issues = run(parser, mail(body))
    e = events[0]
    assert e.extra["dmca_complete"] is False and element in e.extra["dmca_missing"]
    assert e.extra["triage"] is True and e.confidence < 0.9
    assert "incomplete" in issues[0].reason


def test_contact_and_location_elements() -> None:
    body = (
        "DMCA notice. I have a good faith belief ... penalty of perjury, accurate, authorized to act.\n"
        "Title: X\nSincerely,\nJane\n"
    )
    missing = check_notice(body)
    assert "contact" in missing and "infringing_material" in missing


def test_incomplete_notice_without_location_keeps_one_event_for_triage() -> None:
    events, issues = run(parser, mail("We found infringing material of our client on your network. DMCA.\n"))
    assert len(events) == 1 and events[0].source_url is None and events[0].extra["triage"] is True
    assert any("names no URL" in i.reason for i in issues)


def test_counter_notice() -> None:
    events, issues = run(parser, mail(COUNTER, subject="DMCA counter-notice"))
    (e,) = events
    assert e.kind == "copyright" and e.extra["counter_notice"] is True
    assert e.extra["dmca_complete"] is True and e.extra["triage"] is True
    assert e.source_url == "https://blog.example.net/post/42"
    assert issues == []
    assert "consent_jurisdiction" in check_counter_notice(COUNTER.replace("I consent to the jurisdiction", ""))


def test_attachments_are_listed_as_evidence_not_parsed() -> None:
    events, _ = run(parser, mail(COMPLETE, attach=True))
    (att,) = events[0].extra["attachments"]
    assert att["filename"] == "poa.pdf" and att["content_type"] == "application/pdf" and len(att["sha256"]) == 64


def test_labelled_ip_address() -> None:
    body = COMPLETE.replace(
        "Infringing URL: https://files.example.net/share/example-song.mp3\n", "IP address: 192.0.2.80\n"
    )
    events, _ = run(parser, mail(body))
    assert {e.source_ip for e in events} == {"192.0.2.80", None}


def test_contact_urls_are_not_subjects() -> None:
    body = "DMCA notice.\nPlease visit our website http://www.example.com/contact for details.\nThe copy is at http://warez.example.net/a\n"
    events, _ = run(parser, mail(body))
    assert [e.source_url for e in events] == ["http://warez.example.net/a"]


def test_plain_text_file_and_not_a_notice() -> None:
    events, _ = run(parser, COMPLETE.encode(), "notice.txt")
    assert len(events) == 2
    assert not parser.recognises(make_report(mail("Your server 192.0.2.1 sends spam.", subject="Spam report")))
    with pytest.raises(ParseError, match="no DMCA"):
        run(parser, mail("Your server 192.0.2.1 sends spam.", subject="Spam report"))
    with pytest.raises(ParseError, match="no readable text"):
        run(parser, b"   ")


def test_ipv6_literal_url_keeps_its_brackets() -> None:
    """The demo's notice names http://[2001:db8:100:5::7]/...; the URL must survive whole to be attributed."""
    from abusedesk.parsers.dmca import _URL

    text = "hosted here:\n  http://[2001:db8:100:5::7]/files/movie.mkv\n and (see http://example.net/a)."
    assert [m.group(0) for m in _URL.finditer(text)] == [
        "http://[2001:db8:100:5::7]/files/movie.mkv",
        "http://example.net/a",
    ]
