"""The IMAP poller against a real Dovecot on loopback: mark only after accept; a crash in between loses nothing."""

from __future__ import annotations

import imaplib
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from abusedesk.cli.intake import wire_all
from abusedesk.domain.errors import SourceUnavailable
from abusedesk.intake.imap import ImapAccount, ImapPoller
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import RawInputRow
from tests.intake.dovecot import Dovecot
from tests.intake.samples import complaint

pytestmark = pytest.mark.integration


@pytest.fixture
def imap(dovecot: Dovecot) -> Iterator[imaplib.IMAP4]:
    conn = imaplib.IMAP4(dovecot.host, dovecot.port)
    conn.login(dovecot.user, dovecot.password)
    yield conn
    conn.logout()


def _append(conn: imaplib.IMAP4, data: bytes, flags: str | None = None) -> None:
    typ, resp = conn.append("INBOX", flags, None, data)
    assert typ == "OK", resp


def _flags(conn: imaplib.IMAP4, mailbox: str = "INBOX") -> list[bytes]:
    conn.select(mailbox)
    _typ, data = conn.fetch("1:*", "(FLAGS)")
    return [d for d in data if d]


def _account(d: Dovecot, **kw: object) -> ImapAccount:
    return ImapAccount(host=d.host, port=d.port, user=d.user, password=d.password, **kw)  # type: ignore[arg-type]


def _count(rt: Runtime) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(RawInputRow)) or 0)


def test_unseen_mail_is_taken_then_marked_seen(runtime: Runtime, dovecot: Dovecot, imap: imaplib.IMAP4) -> None:
    runtime.settings.intake.send_acks = False
    _append(imap, complaint(message_id="<i1@example.net>"))
    _append(imap, complaint(message_id="<i2@example.net>", subject="second"))
    _append(imap, complaint(message_id="<i3@example.net>"), flags=r"(\Seen)")  # already read by a person
    poller = ImapPoller(wire_all(runtime), _account(dovecot))
    result = poller.poll_once()
    assert len(result.receipts) == 2
    assert result.uidvalidity
    assert all(not r.duplicate for r in result.receipts)
    assert all(b"\\Seen" in f for f in _flags(imap))
    with runtime.sessions() as s:
        rows = list(s.scalars(select(RawInputRow)))
    assert {r.channel for r in rows} == {"imap"}
    assert {r.meta["uid"] for r in rows} == {"1", "2"}
    assert all(r.status != "stored" for r in rows)  # the poll drained the pipeline
    assert poller.poll_once().receipts == []


class CrashingPoller(ImapPoller):
    """Dies between accept and flagging, like a process killed at the worst moment."""

    def mark_processed(self, conn: imaplib.IMAP4, uid: str) -> None:
        raise RuntimeError("killed after accept, before \\Seen")


def test_crash_between_accept_and_flag_refetches_without_duplicates(
    runtime: Runtime, dovecot: Dovecot, imap: imaplib.IMAP4
) -> None:
    runtime.settings.intake.send_acks = False
    _append(imap, complaint())
    door = wire_all(runtime)
    with pytest.raises(RuntimeError, match="killed after accept"):
        CrashingPoller(door, _account(dovecot)).poll_once()
    assert _count(runtime) == 1  # stored before the crash
    assert all(b"\\Seen" not in f for f in _flags(imap))  # still unseen on the server
    result = ImapPoller(door, _account(dovecot)).poll_once()
    assert len(result.receipts) == 1
    assert result.receipts[0].duplicate  # the raw store knew the bytes
    assert _count(runtime) == 1
    assert all(b"\\Seen" in f for f in _flags(imap))


def test_processed_folder(runtime: Runtime, dovecot: Dovecot, imap: imaplib.IMAP4) -> None:
    runtime.settings.intake.send_acks = False
    _append(imap, complaint())
    ImapPoller(wire_all(runtime), _account(dovecot, processed_folder="Processed")).poll_once()
    _typ, data = imap.select("INBOX")
    assert data == [b"0"]
    _typ, data = imap.select("Processed")
    assert data == [b"1"]


def test_oversized_mail_is_flagged_and_left(runtime: Runtime, dovecot: Dovecot, imap: imaplib.IMAP4) -> None:
    runtime.settings.intake.max_input_bytes = 500
    _append(imap, complaint(body="x" * 2000 + "\n"))
    result = ImapPoller(wire_all(runtime), _account(dovecot)).poll_once()
    assert result.receipts == []
    ((_uid, reason),) = result.rejected
    assert "over the limit of 500 bytes" in reason
    assert _count(runtime) == 0
    (flags,) = _flags(imap)
    assert b"\\Flagged" in flags


def test_ack_goes_out_for_imap_mail(runtime: Runtime, dovecot: Dovecot, imap: imaplib.IMAP4, mail_sink) -> None:  # type: ignore[no-untyped-def]
    from tests.intake.mailsink import point_smtp_at

    point_smtp_at(runtime, mail_sink)
    _append(imap, complaint())
    (receipt,) = ImapPoller(wire_all(runtime), _account(dovecot)).poll_once().receipts
    assert receipt.ack is not None
    assert receipt.ack.sent
    (ack,) = mail_sink.wait(1)
    assert receipt.reference in ack["Subject"]


def test_bad_login_is_source_unavailable(runtime: Runtime, dovecot: Dovecot) -> None:
    account = ImapAccount(host=dovecot.host, port=dovecot.port, user=dovecot.user, password="wrong")
    with pytest.raises(SourceUnavailable, match="refused the login"):
        ImapPoller(wire_all(runtime), account).poll_once()
