"""Reporters: acknowledgements through a real SMTP sink, loop protection, rate limit, duplicates, accuracy."""

from __future__ import annotations

import email
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from abusedesk.bus.worker import replay_raw
from abusedesk.cli.intake import wire_all
from abusedesk.clock import ManualClock
from abusedesk.intake.reporters import (
    ReporterDesk,
    accuracy,
    auto_generated_reason,
    record_case_outcome,
    reference_of,
    reporter_stats,
)
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import EventRow, RawInputRow, ReporterRow
from tests.intake.mailsink import Sink, point_smtp_at
from tests.intake.samples import complaint, xarf_bytes

OWN = {"abuse@provider.example"}


def _msg(headers: dict[str, str], ctype: str = "text/plain") -> email.message.Message:
    text = "".join(f"{k}: {v}\n" for k, v in headers.items())
    text += f"Content-Type: {ctype}\n\nbody\n"
    return email.message_from_string(text)


@pytest.mark.parametrize(
    ("headers", "mail_from", "expected"),
    [
        ({"From": "a@example.net"}, "a@example.net", None),
        ({"From": "a@example.net", "Auto-Submitted": "no"}, "a@example.net", None),
        ({"From": "a@example.net", "Auto-Submitted": "auto-replied"}, "a@example.net", "Auto-Submitted"),
        ({"From": "a@example.net", "Auto-Submitted": "auto-generated; x=1"}, None, "Auto-Submitted"),
        ({"From": "a@example.net", "Precedence": "bulk"}, None, "Precedence: bulk"),
        ({"From": "a@example.net", "Precedence": "junk"}, None, "Precedence: junk"),
        ({"From": "a@example.net", "Precedence": "list"}, None, "Precedence: list"),
        ({"From": "a@example.net", "List-Id": "<abuse.lists.example.net>"}, None, "List-Id"),
        ({"From": "a@example.net"}, "", "empty return path"),
        ({"From": "a@example.net"}, "<>", "empty return path"),
        ({"From": "a@example.net"}, "MAILER-DAEMON@mx.example.net", "mail system address"),
        ({"From": "MAILER-DAEMON@mx.example.net"}, None, "mail system address"),
        ({"From": "Desk <abuse@provider.example>"}, None, "our own address"),
        ({"From": "a@example.net", "Reply-To": "abuse@provider.example"}, None, "our own address"),
        ({"From": "a@example.net"}, "abuse@provider.example", "our own address"),
        ({"From": "a@example.net", "X-Auto-Response-Suppress": "All"}, None, "X-Auto-Response-Suppress"),
    ],
)
def test_auto_generated_reason(headers: dict[str, str], mail_from: str | None, expected: str | None) -> None:
    reason = auto_generated_reason(_msg(headers), mail_from, OWN)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason


def test_bounce_report_is_automatic() -> None:
    msg = _msg({"From": "a@example.net"}, 'multipart/report; report-type="delivery-status"; boundary="b"')
    assert auto_generated_reason(msg, None, OWN) == "delivery status notification (bounce)"
    arf = _msg({"From": "a@example.net"}, 'multipart/report; report-type="feedback-report"; boundary="b"')
    assert "feedback-loop report" in str(auto_generated_reason(arf, None, OWN))  # a machine; no reply (issue 10)


def test_ack_is_sent_with_reference_and_rfc3834_headers(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    runtime.settings.intake.known_reporters = ["@example.net"]  # a verified sender: the reply may quote it
    door = wire_all(runtime)
    receipt = door.receive(complaint(), channel="smtp", mail_from="reporter@example.net")
    assert receipt.ack is not None
    assert receipt.ack.sent, receipt.ack.reason
    (ack,) = mail_sink.wait(1)
    assert mail_sink.messages[0][1] == ["reporter@example.net"]
    assert receipt.reference == reference_of(receipt.raw_id)
    assert f"[{receipt.reference}]" in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == "<c1@example.net>"
    assert ack["From"] == runtime.settings.intake.ack_from
    assert receipt.reference in ack.get_payload()
    assert "Spam from 192.0.2.20" in ack["Subject"]


SPAM = "CHEAP PILLS at pills.example.com"


def _spoofed(n: int = 1, sender: str = "victim@example.org", headers: dict[str, str] | None = None) -> bytes:
    return complaint(sender=sender, message_id=f"<s{n}@example.org>", subject=SPAM, body=f"{SPAM}\n", headers=headers)


def test_an_unverified_sender_gets_a_plain_receipt_quoting_nothing(runtime: Runtime, mail_sink: Sink) -> None:
    """The issue's attack: From a victim, a spam subject. The victim gets our reference and nothing of the text."""
    point_smtp_at(runtime, mail_sink)
    door = wire_all(runtime)
    receipt = door.receive(_spoofed(), channel="smtp", mail_from="victim@example.org")
    assert receipt.ack is not None and receipt.ack.sent
    assert "plain receipt" in receipt.ack.reason
    (ack,) = mail_sink.wait(1)
    assert ack["Subject"] == f"[{receipt.reference}] Report received"
    raw = ack.as_string()
    assert "PILLS" not in raw and "pills.example.com" not in raw
    assert ack["In-Reply-To"] is None and ack["References"] is None


@pytest.mark.parametrize(
    ("results", "quoted"),
    [
        ("mx.provider.example; dkim=pass header.d=example.org header.s=s1", True),
        ("mx.provider.example; dkim=pass (good) header.i=@mail.example.org", True),
        ("mx.provider.example; spf=pass smtp.mailfrom=bounces.example.org", True),
        ("mx.provider.example; dmarc=pass header.from=example.org", True),
        ("mx.provider.example; dkim=pass header.d=attacker.example", False),  # signed, but not by the From domain
        ("mx.provider.example; dkim=fail header.d=example.org", False),
        ("mx.provider.example; spf=pass smtp.mailfrom=org", False),  # a bare TLD aligns with nothing
        ("mx.attacker.example; dkim=pass header.d=example.org", False),  # not our MTA: the sender wrote it
    ],
)
def test_only_our_mtas_aligned_authentication_results_verify(
    runtime: Runtime, mail_sink: Sink, results: str, quoted: bool
) -> None:
    point_smtp_at(runtime, mail_sink)
    runtime.settings.intake.authserv_ids = ["mx.provider.example"]
    door = wire_all(runtime)
    door.receive(_spoofed(headers={"Authentication-Results": results}), channel="smtp", mail_from="victim@example.org")
    (ack,) = mail_sink.wait(1)
    assert (SPAM in ack["Subject"]) is quoted


def test_no_reply_to_spamcop_or_feedback_loops(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    door = wire_all(runtime)
    spamcop = door.receive(
        _spoofed(1, sender="spamcop@devnull.spamcop.net"), channel="smtp", mail_from="1234@reports.spamcop.net"
    )
    assert spamcop.ack is not None and not spamcop.ack.sent
    assert "no-reply domain" in spamcop.ack.reason
    msg = email.message_from_bytes(_spoofed(2, sender="fbl@isp.example"))
    msg.replace_header("Content-Type", 'multipart/report; report-type="feedback-report"; boundary="b"')
    fbl = door.receive(msg.as_bytes(), channel="smtp", mail_from="fbl@isp.example")
    assert fbl.ack is not None and not fbl.ack.sent
    assert "feedback-loop" in fbl.ack.reason
    assert mail_sink.wait(0) == []


def test_replies_to_one_domain_are_limited_whatever_the_local_part(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    runtime.settings.intake.ack_per_domain_per_hour = 3
    door = wire_all(runtime)
    outcomes = [
        door.receive(_spoofed(i, sender=f"user{i}@example.org"), channel="smtp", mail_from=f"user{i}@example.org").ack
        for i in range(5)
    ]
    assert [o.sent for o in outcomes if o] == [True, True, True, False, False]
    assert "addresses at example.org" in outcomes[-1].reason  # type: ignore[union-attr]
    assert len(mail_sink.wait(3)) == 3


def test_no_ack_to_automatic_senders(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    door = wire_all(runtime)
    auto = complaint(headers={"Auto-Submitted": "auto-replied"})
    r1 = door.receive(auto, channel="smtp", mail_from="reporter@example.net")
    bulk = complaint(message_id="<c2@example.net>", headers={"Precedence": "bulk"})
    r2 = door.receive(bulk, channel="smtp", mail_from="reporter@example.net")
    bounce = complaint(message_id="<c3@example.net>")
    r3 = door.receive(bounce, channel="smtp", mail_from="")
    ours = complaint(message_id="<c4@example.net>", sender="abuse@provider.example")
    r4 = door.receive(ours, channel="smtp", mail_from="abuse@provider.example")
    for r in (r1, r2, r3, r4):
        assert r.ack is not None
        assert not r.ack.sent
        assert "automatic sender" in r.ack.reason
    # the reason is kept with the raw input, so a later "not ours" reply is also suppressed
    with runtime.sessions() as s:
        assert "Auto-Submitted" in s.get(RawInputRow, r1.raw_id).meta["auto_generated"]
    mail_sink.wait(1, timeout=0.5)
    assert mail_sink.messages == []


def test_acks_are_rate_limited_per_reporter(runtime: Runtime, mail_sink: Sink, clock: ManualClock) -> None:
    point_smtp_at(runtime, mail_sink)
    runtime.settings.intake.ack_per_reporter_per_hour = 2
    door = wire_all(runtime)
    outcomes = [
        door.receive(complaint(message_id=f"<r{i}@example.net>"), channel="smtp", mail_from="reporter@example.net").ack
        for i in range(3)
    ]
    assert [o.sent for o in outcomes if o] == [True, True, False]
    assert outcomes[2] is not None
    assert "rate limit" in outcomes[2].reason
    clock.advance(timedelta(hours=1, seconds=1))
    again = door.receive(complaint(message_id="<r9@example.net>"), channel="smtp", mail_from="reporter@example.net")
    assert again.ack is not None
    assert again.ack.sent
    assert len(mail_sink.wait(3)) == 3


def test_failed_send_does_not_fail_intake(runtime: Runtime) -> None:
    from tests.support.components import free_port

    runtime.settings.smtp.port = free_port()  # nothing listens there
    door = wire_all(runtime)
    receipt = door.receive(complaint(), channel="smtp", mail_from="reporter@example.net")
    assert receipt.ack is not None
    assert not receipt.ack.sent
    assert "send failed" in receipt.ack.reason
    with runtime.sessions() as s:
        assert s.get(RawInputRow, receipt.raw_id) is not None


def test_resent_report_is_a_duplicate_with_the_same_reference(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    door = wire_all(runtime)
    first = door.receive(complaint(), channel="smtp", mail_from="reporter@example.net")
    same_bytes = door.receive(complaint(), channel="smtp", mail_from="reporter@example.net")
    relayed = door.receive(
        b"Received: from mx2.example.net by mx.provider.example\nDelivered-To: abuse@provider.example\n" + complaint(),
        channel="imap",
        mail_from="reporter@example.net",
    )
    other_content = door.receive(
        complaint(subject="Fwd: Spam from 192.0.2.20"), channel="smtp", mail_from="reporter@example.net"
    )
    other_sender = door.receive(complaint(sender="other@example.com"), channel="smtp", mail_from="other@example.com")
    assert not first.duplicate
    assert same_bytes.duplicate
    assert same_bytes.raw_id == first.raw_id
    assert relayed.duplicate  # another way in, the same message: the header fields added in transit do not count
    assert (relayed.raw_id, relayed.reference) == (first.raw_id, first.reference)
    # the same Message-ID with another Subject is the sender's new report, linked to the first
    assert not other_content.duplicate
    assert other_content.reference != first.reference
    assert other_content.related_to == first.raw_id
    assert not other_sender.duplicate
    assert other_sender.related_to is None  # a Message-ID is its sender's own
    with runtime.sessions() as s:
        assert s.get(RawInputRow, other_content.raw_id).related_to == first.raw_id
        assert s.scalar(select(func.count()).select_from(RawInputRow)) == 3
    runtime.drain()
    stats = reporter_stats(runtime, "reporter@example.net")
    assert stats is not None
    assert stats["reports"] == 2  # the re-sent copies are not reports; the other content is


def test_reporter_counts_and_accuracy(runtime: Runtime) -> None:
    door = wire_all(runtime)
    door.receive(xarf_bytes(), channel="http", reporter="cert@example.net", report_ref="xarf:a")
    door.receive(
        xarf_bytes(report_id="6d6f3c2a-9a4e-4f5e-8a1b-0c2d3e4f5a6b", ip="192.0.2.11"),
        channel="http",
        reporter="cert@example.net",
        report_ref="xarf:b",
    )
    runtime.drain()
    record_case_outcome(runtime, "CERT <cert@example.net>", confirmed=True)
    record_case_outcome(runtime, "cert@example.net", confirmed=True)
    record_case_outcome(runtime, "cert@example.net", confirmed=False)
    stats = reporter_stats(runtime, "cert@example.net")
    assert stats is not None
    assert stats["reports"] == 2
    assert stats["events"] == 2
    assert stats["confirmed_cases"] == 2
    assert stats["dismissed_cases"] == 1
    assert stats["accuracy"] == pytest.approx(2 / 3)
    with runtime.sessions() as s:
        fresh = ReporterRow(address="x@example.net", confirmed_cases=0, dismissed_cases=0)
        assert accuracy(fresh) is None
        assert s.get(ReporterRow, "cert@example.net") is not None
    # a replay of one of its reports parses it again, and adds nothing: its events are not new
    with runtime.sessions() as s:
        raw_id = s.scalar(select(RawInputRow.id).where(RawInputRow.reporter == "cert@example.net").limit(1))
    assert replay_raw(runtime, [raw_id]) == 1
    assert reporter_stats(runtime, "cert@example.net")["events"] == 2  # type: ignore[index]
    assert reporter_stats(runtime, "cert@example.net")["reports"] == 2  # type: ignore[index]


def test_not_ours_reply_off_by_default(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    runtime.settings.intake.send_acks = False
    door = wire_all(runtime)
    receipt = door.receive(xarf_bytes(), channel="http", reporter="cert@example.net", report_ref="xarf:a")
    runtime.drain()
    with runtime.sessions() as s:
        assert s.scalars(select(EventRow.disposition).where(EventRow.raw_id == receipt.raw_id)).all() == ["not-ours"]
    mail_sink.wait(1, timeout=0.5)
    assert mail_sink.messages == []


def test_not_ours_reply_is_templated_and_sent_once(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    runtime.settings.intake.send_acks = False
    runtime.settings.intake.reply_not_ours = True
    runtime.settings.intake.known_reporters = ["cert@example.net"]
    door = wire_all(runtime)
    receipt = door.receive(xarf_bytes(), channel="http", reporter="cert@example.net", report_ref="xarf:a")
    runtime.drain()
    (reply,) = mail_sink.wait(1)
    assert mail_sink.messages[0][1] == ["cert@example.net"]
    assert f"[{receipt.reference}] Not our address" == reply["Subject"]
    body = reply.get_payload()
    assert "192.0.2.10" in body
    assert "2026-03-01T09:00:00Z" in body
    assert reply["Auto-Submitted"] == "auto-replied"
    # a redelivery of the same bus message does not mail twice
    desk = ReporterDesk(runtime)
    again = desk.reply_not_ours(receipt.raw_id)
    assert not again.sent
    assert again.reason == "already replied"
    assert len(mail_sink.messages) == 1


def test_not_ours_reply_to_an_unverified_sender_lists_nothing(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    runtime.settings.intake.send_acks = False
    runtime.settings.intake.reply_not_ours = True
    door = wire_all(runtime)
    door.receive(xarf_bytes(), channel="http", reporter="cert@example.net", report_ref="xarf:a")
    runtime.drain()
    (reply,) = mail_sink.wait(1)
    body = reply.get_payload(decode=True).decode()
    assert "192.0.2.10" not in body
    assert "1 of the addresses it names is not ours" in body


def test_not_ours_reply_never_for_file_imports(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    runtime.settings.intake.reply_not_ours = True
    door = wire_all(runtime)
    receipt = door.receive(xarf_bytes(), channel="file", reporter="cert@example.net")
    runtime.drain()
    outcome = ReporterDesk(runtime).reply_not_ours(receipt.raw_id)
    assert not outcome.sent
    assert "channel file" in outcome.reason
    assert mail_sink.messages == []
