"""Notices as real e-mail: content, threading, digest batching, urgency, SMTP down, the crash window."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from abusedesk.actions.runner import ActionRunner, NoticeDispatcher
from abusedesk.actions.smtp import EmailNotifyAction
from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.service import CaseService
from abusedesk.clock import ManualClock
from abusedesk.evidence import audit
from abusedesk.evidence.blobs import EvidenceStore
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseRow, NoticeRow
from abusedesk.store.tables.evidence import EvidenceRow
from tests.actions.support import seed_inventory, smtp_server
from tests.cases.support import finding
from tests.conftest import T0
from tests.support.certs import self_signed_cert
from tests.support.components import free_port
from tests.support.identities import People


def _mailer(port: int) -> EmailNotifyAction:
    return EmailNotifyAction(EmailNotifyAction.Params(host="127.0.0.1", port=port, timeout=5))


def _notices(rt: Runtime) -> list[NoticeRow]:
    with rt.sessions() as s:
        return list(s.scalars(select(NoticeRow).order_by(NoticeRow.due_at, NoticeRow.id)))


def _case(rt: Runtime) -> CaseRow:
    with rt.sessions() as s:
        [case] = s.scalars(select(CaseRow))
        return case


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_request_to_cease_goes_out_by_smtp_with_everything_the_customer_needs(
    runtime: Runtime, clock: ManualClock
) -> None:
    seed_inventory(runtime)
    policy = runtime.policy
    CaseEngine(runtime).ingest([finding(policy, 0)])
    case = _case(runtime)
    with smtp_server() as smtp:
        [filed] = ActionRunner(runtime).run_pending()
        assert filed.ok, filed.detail
        dispatcher = NoticeDispatcher(runtime, _mailer(smtp.port))
        assert dispatcher.send_due() == []  # medium severity: waits for the digest (1h), not longer
        clock.advance(timedelta(hours=1))
        [sent] = dispatcher.send_due()
        assert sent.ok, sent.detail
        [msg] = smtp.messages
        [env] = smtp.envelopes
    [notice] = _notices(runtime)
    assert notice.status == "sent"
    assert notice.sent_at == T0 + timedelta(hours=1)
    assert env.rcpt_tos == ["noc@a.example.net"]
    assert env.mail_from == runtime.settings.notify_from
    assert msg["Message-ID"] == notice.message_id
    assert msg["Reply-To"] == f"abuse+{case.ref}@provider.example"
    assert case.ref in msg["Subject"]
    assert "cease by 2026-03-02T10:00:00Z" in msg["Subject"]
    body = " ".join(_text(msg).split())  # the text is wrapped at 76 columns
    clause = policy.clause("1.8")
    assert "Policy clause 1.8" in body
    assert " ".join(clause.summary.split()) in body
    assert "scan from ip:192.0.2.10 at minute 0" in body  # the evidence summary
    assert "REQUEST TO CEASE: under section 4" in body
    assert "no later than 2026-03-02T10:00:00Z" in body
    assert f"abuse+{case.ref}@provider.example" in body
    assert policy.version in body
    # the exact bytes sent are kept as evidence of the case
    with runtime.sessions() as s:
        ev = s.scalars(select(EvidenceRow).where(EvidenceRow.origin == f"notice:{notice.id}")).one()
        assert ev.media_type == "message/rfc822"
        assert audit.verify(s).ok
        assert "notice.sent" in s.scalars(select(audit.AuditRow.action)).all()
    assert b"Message-ID: " + notice.message_id.encode() in EvidenceStore(runtime.settings.evidence_dir).get(ev.sha256)


def test_later_notices_thread_to_the_first(runtime: Runtime, clock: ManualClock, people: People) -> None:
    seed_inventory(runtime)
    CaseEngine(runtime).ingest([finding(runtime.policy, 0)])
    case = _case(runtime)
    with smtp_server() as smtp:
        runner, dispatcher = ActionRunner(runtime), NoticeDispatcher(runtime, _mailer(smtp.port))
        runner.run_pending()
        clock.advance(timedelta(hours=1))
        dispatcher.send_due()
        CaseService(runtime).propose(case.ref, "renotify", by=people["alice"], reason="still scanning")
        [filed] = runner.run_pending()
        assert filed.ok, filed.detail
        clock.advance(timedelta(hours=1))
        [sent] = dispatcher.send_due()
        assert sent.ok, sent.detail
        first, second = smtp.messages
    assert first["In-Reply-To"] is None
    assert second["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in second["References"].split()
    assert second["Message-ID"] != first["Message-ID"]
    assert "reminder" in second["Subject"].lower()


def test_500_findings_make_one_digest(runtime: Runtime, clock: ManualClock) -> None:
    seed_inventory(runtime)
    policy = runtime.policy
    findings = [
        finding(policy, minute % 50, key=f"ip:192.0.2.{1 + i // 5}", customer="cust-a", service="svc-a1")
        for i, minute in enumerate(range(500))
    ]
    CaseEngine(runtime).ingest(findings)
    with runtime.sessions() as s:
        refs = sorted(s.scalars(select(CaseRow.ref)).all())
        assert sum(s.scalars(select(CaseRow.finding_count)).all()) == 500
    assert len(refs) == 100
    with smtp_server() as smtp:
        results = ActionRunner(runtime).run_pending()
        assert len(results) == 100
        assert all(r.ok for r in results)
        assert len(_notices(runtime)) == 1
        dispatcher = NoticeDispatcher(runtime, _mailer(smtp.port))
        assert dispatcher.send_due() == []
        clock.advance(timedelta(hours=1))
        assert len(dispatcher.send_due()) == 1
        assert dispatcher.send_due() == []
        [msg] = smtp.messages
    assert msg["Subject"].startswith("[abuse digest] 100 cases")
    body = _text(msg)
    for ref in refs:
        assert f"==== Case {ref}:" in body
    [notice] = _notices(runtime)
    assert notice.kind == "digest"
    assert len(notice.case_ids) == 100


def test_critical_case_is_not_held_back_by_the_digest(runtime: Runtime, clock: ManualClock) -> None:
    seed_inventory(runtime)
    policy = runtime.policy
    engine, runner = CaseEngine(runtime), ActionRunner(runtime)
    engine.ingest([finding(policy, 0, key="ip:192.0.2.20")])  # medium: may wait up to the digest interval
    runner.run_pending()
    [queued] = _notices(runtime)
    assert queued.due_at == T0 + timedelta(hours=1)
    clock.advance(timedelta(minutes=5))
    engine.ingest([finding(policy, 5, key="ip:192.0.2.21", severity="critical")])
    runner.run_pending()
    [notice] = _notices(runtime)  # the same digest, pulled forward to now
    assert notice.due_at == T0 + timedelta(minutes=5)
    with smtp_server() as smtp:
        [sent] = NoticeDispatcher(runtime, _mailer(smtp.port)).send_due()
        assert sent.ok, sent.detail
        [msg] = smtp.messages
    assert "2 cases" in msg["Subject"]
    assert "includes a request to cease" in msg["Subject"]


def test_smtp_down_fails_then_retries_with_backoff_and_sends_once(runtime: Runtime, clock: ManualClock) -> None:
    seed_inventory(runtime)
    CaseEngine(runtime).ingest([finding(runtime.policy, 0, severity="critical")])
    ActionRunner(runtime).run_pending()
    port = free_port()  # nothing listens here yet
    dispatcher = NoticeDispatcher(runtime, _mailer(port))
    [failed] = dispatcher.send_due()
    assert not failed.ok
    assert failed.retryable
    assert "Connection refused" in failed.detail or "ConnectionRefused" in failed.detail
    [notice] = _notices(runtime)
    message_id = notice.message_id
    assert notice.status == "failed"
    assert notice.attempts == 1
    assert notice.error == failed.detail
    assert notice.due_at == T0 + timedelta(minutes=2)  # backoff
    assert dispatcher.send_due() == []  # not before its time
    clock.advance(timedelta(minutes=2))
    [again] = dispatcher.send_due()  # still down: backoff doubles
    assert not again.ok
    [notice] = _notices(runtime)
    assert notice.due_at == clock.now() + timedelta(minutes=4)
    with smtp_server(port=port) as smtp:  # the server comes back on the same port
        clock.advance(timedelta(minutes=4))
        [ok] = dispatcher.send_due()
        assert ok.ok, ok.detail
        clock.advance(timedelta(days=1))
        assert dispatcher.send_due() == []  # sent is final: never again
        [msg] = smtp.messages
    assert msg["Message-ID"] == message_id  # decided before the first attempt, kept across retries
    [notice] = _notices(runtime)
    assert (notice.status, notice.attempts, notice.error) == ("sent", 3, None)
    with runtime.sessions() as s:
        actions = s.scalars(select(audit.AuditRow.action).where(audit.AuditRow.subject_type == "notice")).all()
    assert actions == ["notice.composed", "notice.failed", "notice.failed", "notice.sent"]


def test_crash_between_smtp_accept_and_commit_resends_the_same_message(runtime: Runtime, clock: ManualClock) -> None:
    """The documented at-least-once edge: same bytes, same Message-ID, never lost."""
    seed_inventory(runtime)
    CaseEngine(runtime).ingest([finding(runtime.policy, 0, severity="critical")])
    ActionRunner(runtime).run_pending()
    with smtp_server() as smtp:
        mailer = _mailer(smtp.port)
        dispatcher = NoticeDispatcher(runtime, mailer)
        [(notice, data)] = dispatcher.claim(clock.now())  # committed as "sending"
        from abusedesk.actions.base import ActionRequest

        delivered = mailer.apply(
            ActionRequest(
                notice.id,
                notice.id,
                "notice",
                notice.case_ids[0],
                payload={"to": notice.contact, "from": runtime.settings.notify_from, "message": data},
            )
        )
        assert delivered.ok  # ... and here the process dies before recording "sent"
        assert dispatcher.send_due() == []  # within the lease nobody touches it
        clock.advance(timedelta(minutes=11))
        [resent] = dispatcher.send_due()
        assert resent.ok
        first, second = smtp.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert first.as_bytes() == second.as_bytes()
    [row] = _notices(runtime)
    assert row.status == "sent"


def test_customer_without_contact_fails_the_action_and_says_why(runtime: Runtime) -> None:
    seed_inventory(runtime, {"cust-a": None})
    CaseEngine(runtime).ingest([finding(runtime.policy, 0)])
    [result] = ActionRunner(runtime).run_pending()
    assert not result.ok
    assert not result.retryable
    assert "contact_email" in result.detail
    with runtime.sessions() as s:
        [action] = s.scalars(select(ActionRow))
    assert (action.status, action.next_attempt_at) == ("failed", None)
    assert action.error == result.detail
    assert _notices(runtime) == []


def test_recipient_refused_is_permanent_and_kept(runtime: Runtime, clock: ManualClock) -> None:
    seed_inventory(runtime)
    CaseEngine(runtime).ingest([finding(runtime.policy, 0, severity="critical")])
    ActionRunner(runtime).run_pending()
    with smtp_server(refuse=("noc@a.example.net",)) as smtp:
        dispatcher = NoticeDispatcher(runtime, _mailer(smtp.port))
        [result] = dispatcher.send_due()
        clock.advance(timedelta(days=30))
        assert dispatcher.send_due() == []  # a 5xx is not retried by itself
        assert smtp.messages == []
    assert not result.ok
    assert not result.retryable
    assert "550" in result.detail
    [notice] = _notices(runtime)
    assert notice.status == "failed"
    assert notice.error == result.detail
    dispatcher.retry_now(notice.id)  # an analyst fixed the address: the same message goes out
    with smtp_server() as smtp:
        [again] = NoticeDispatcher(runtime, _mailer(smtp.port)).send_due()
        assert again.ok, again.detail
        [msg] = smtp.messages
    assert msg["Message-ID"] == notice.message_id


def test_starttls_is_used_when_configured(runtime: Runtime, tmp_path: Path) -> None:
    seed_inventory(runtime)
    CaseEngine(runtime).ingest([finding(runtime.policy, 0, severity="critical")])
    ActionRunner(runtime).run_pending()
    cert, key = self_signed_cert(tmp_path)
    with smtp_server(tls=(cert, key)) as smtp:
        plain = NoticeDispatcher(runtime, _mailer(smtp.port))
        [refused] = plain.send_due()  # the server requires STARTTLS: a plain session is refused
        assert not refused.ok
        tls = EmailNotifyAction(
            EmailNotifyAction.Params(host="127.0.0.1", port=smtp.port, starttls=True, cafile=str(cert), timeout=5)
        )
        [notice] = _notices(runtime)
        plain.retry_now(notice.id)
        [sent] = NoticeDispatcher(runtime, tls).send_due()
        assert sent.ok, sent.detail
        assert len(smtp.messages) == 1


def test_smtp_ca_file_and_password_come_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """smtp.cafile verifies the relay's certificate for notices and acknowledgements alike (issue 9)."""
    from abusedesk.actions.base import ActionRequest
    from abusedesk.config import load_settings
    from abusedesk.domain.errors import ActionError
    from abusedesk.intake.reporters import SmtpMailer

    cert, key = self_signed_cert(tmp_path)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "abuse@example.com", "noc@example.net", "notice"
    message.set_content("hello\n")
    request = ActionRequest(
        action_id="act_1",
        case_id="case_1",
        kind="notify",
        idempotency_key="k1",
        payload={"to": "noc@example.net", "from": "abuse@example.com", "message": message.as_bytes()},
    )
    with smtp_server(tls=(cert, key)) as smtp:
        monkeypatch.setenv("ABUSEDESK_SMTP__PORT", str(smtp.port))
        monkeypatch.setenv("ABUSEDESK_SMTP__STARTTLS", "true")
        monkeypatch.setenv("ABUSEDESK_SMTP__PASSWORD", "s3cret")
        unverified = load_settings(data_dir=tmp_path)
        assert "s3cret" not in repr(unverified) and unverified.smtp.password is not None
        # without the CA file the self-signed relay is not trusted: nothing is sent in the clear or unverified
        assert not EmailNotifyAction.from_settings(unverified.smtp).apply(request).ok
        with pytest.raises(ActionError, match="CERTIFICATE_VERIFY_FAILED"):
            SmtpMailer(unverified).send(message)
        monkeypatch.setenv("ABUSEDESK_SMTP__CAFILE", str(cert))
        verified = load_settings(data_dir=tmp_path)
        assert verified.smtp.cafile == cert
        action = EmailNotifyAction.from_settings(verified.smtp)
        assert action.params.cafile == str(cert) and action.params.password == "s3cret"
        result = action.apply(request)
        assert result.ok, result.detail
        SmtpMailer(verified).send(message)
        assert len(smtp.messages) == 2
