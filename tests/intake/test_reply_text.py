"""Replies to reporters read cleanly: one-line subjects, readable bodies, an incomplete DMCA notice answered with
the 512(c)(3) elements it lacks (issue 11, item 4). Real SMTP sink on loopback; the demo's DMCA sample read in place.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from abusedesk.cli.intake import wire_all
from abusedesk.domain.mailtext import MAIL_POLICY, body_cte, clean_subject
from abusedesk.intake.reporters import ReporterDesk
from abusedesk.runtime import Runtime
from tests.intake.mailsink import Sink, point_smtp_at
from tests.intake.samples import complaint

DEMO = Path(__file__).parents[2] / "src" / "abusedesk" / "demo" / "data" / "signals"


def _unfold(value: str) -> str:
    """A header as the sink's compat32 parser keeps it, unfolded (RFC 5322 2.2.3: CRLF before WSP is removed)."""
    return str(value).replace("\r\n", "").replace("\n", "")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (
            "\r\n    Phishing site on your network:   http://x.example/",
            "Phishing site on your network: http://x.example/",
        ),
        ("=?utf-8?q?Spam_from_caf=C3=A9?= =?utf-8?q?_again?=", "Spam from café again"),
        ("=?utf-8?q?broken", "=?utf-8?q?broken"),
        ("tab\there\x00nul", "tab here nul"),
        ("", ""),
        (None, ""),
    ],
)
def test_clean_subject(raw: str | None, clean: str) -> None:
    assert clean_subject(raw) == clean


def test_clean_subject_cuts_long_subjects() -> None:
    assert clean_subject("x" * 500, 50) == "x" * 49 + "…"


@pytest.mark.parametrize("n", range(60, 100, 3))
def test_subject_never_folds_to_an_empty_first_line(n: int) -> None:
    msg = EmailMessage(policy=MAIL_POLICY)
    words = ("[d7ff757868c60c5e] Report received: DMCA Notice of Copyright Infringement " + "word " * 10)[:n]
    msg["Subject"] = words.strip()
    msg.set_content("x\n")
    data = msg.as_bytes()
    first = data.split(b"\r\n", 1)[0]
    assert first.startswith(b"Subject: [d7ff")
    assert all(len(line) <= 78 for line in data.split(b"\r\n"))
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == words.strip()


def test_body_cte() -> None:
    assert body_cte("plain ascii\n-- \nsig\n") == "7bit"
    assert body_cte("x" * 999) == "quoted-printable"
    assert body_cte("café\n") == "quoted-printable"


def test_ack_subject_is_unfolded_and_body_plain(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    runtime.settings.intake.known_reporters = ["@example.net"]  # a verified sender: the reply may quote it
    door = wire_all(runtime)
    raw = complaint(subject="x").replace(
        b"Subject: x", b"Subject: \r\n    Phishing site on your network:\r\n  http://shop.globex.example/login.php"
    )
    receipt = door.receive(raw, channel="smtp", mail_from="reporter@example.net")
    assert receipt.ack is not None
    assert receipt.ack.sent, receipt.ack.reason
    (ack,) = mail_sink.wait(1)
    assert _unfold(ack["Subject"]) == (
        f"[{receipt.reference}] Report received: Phishing site on your network: http://shop.globex.example/login.php"
    )
    assert ack["Content-Transfer-Encoding"] == "7bit"
    body = ack.get_payload().replace("\r\n", "\n")
    assert "=20" not in body
    assert "Your message: Phishing site on your network: http://shop.globex.example/login.php\n" in body


def test_incomplete_dmca_notice_is_answered_with_the_missing_elements(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    door = wire_all(runtime)
    raw = (DEMO / "06-dmca-incomplete.eml").read_bytes()
    receipt = door.receive(raw, channel="smtp", mail_from="notices@rights-agent.example.net")
    runtime.drain()
    ack, reply = mail_sink.wait(2)
    assert "Report received" in ack["Subject"]
    assert _unfold(reply["Subject"]) == f"[{receipt.reference}] Your DMCA notice is incomplete: 4 element(s) missing"
    assert reply["To"] == "notices@rights-agent.example.net"
    # not a verified sender: the reply names statutory elements only and does not thread to the sender's message
    assert reply["In-Reply-To"] is None
    assert reply["Auto-Submitted"] == "auto-replied"
    body = " ".join(reply.get_payload().split())
    assert "17 U.S.C. 512(c)(3)(A)" in body
    for element in ("(512(c)(3)(A)(i))", "(512(c)(3)(A)(ii))", "(512(c)(3)(A)(v))", "(512(c)(3)(A)(vi))"):
        assert element in body
    assert "(512(c)(3)(A)(iii))" not in body  # the URL was there
    assert "physical or electronic signature" in body
    assert "good faith belief" in body
    assert "DMCA Notice of Copyright Infringement" not in reply.get_payload()  # nothing the sender wrote
    # once per raw input: a redelivery does not mail twice
    again = ReporterDesk(runtime).reply_incomplete_notice(receipt.raw_id)
    assert not again.sent
    assert again.reason == "already replied"


def test_incomplete_dmca_reply_threads_to_a_verified_sender(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    runtime.settings.intake.known_reporters = ["@rights-agent.example.net"]
    door = wire_all(runtime)
    raw = (DEMO / "06-dmca-incomplete.eml").read_bytes()
    door.receive(raw, channel="smtp", mail_from="notices@rights-agent.example.net")
    runtime.drain()
    _, reply = mail_sink.wait(2)
    assert "incomplete" in _unfold(reply["Subject"])
    assert reply["In-Reply-To"] == "<dmca-5521@rights-agent.example.net>"


def test_complete_report_gets_no_incomplete_reply(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    door = wire_all(runtime)
    receipt = door.receive(complaint(), channel="smtp", mail_from="reporter@example.net")
    runtime.drain()
    outcome = ReporterDesk(runtime).reply_incomplete_notice(receipt.raw_id)
    assert not outcome.sent
    assert outcome.reason == "no incomplete DMCA notice in this report"
    assert len(mail_sink.wait(1)) == 1  # the acknowledgement only
