"""The IMAP poller against a real Dovecot on loopback: mark only after accept; a crash in between loses nothing;
the poller remembers its place per mailbox (UIDVALIDITY and last UID) in the database (issue 4)."""

from __future__ import annotations

import imaplib
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from abusedesk.cli.intake import wire_all
from abusedesk.clock import ManualClock
from abusedesk.domain.errors import SourceUnavailable
from abusedesk.intake.imap import ImapAccount, ImapCursor, ImapPoller, ImapPollResult
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import ImapCursorRow, RawInputRow
from tests.intake.dovecot import Dovecot
from tests.intake.mailsink import Sink, point_smtp_at
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


def _uidvalidity(conn: imaplib.IMAP4, mailbox: str) -> int:
    typ, data = conn.status(mailbox, "(UIDVALIDITY)")
    assert typ == "OK", data
    return int(data[0].split(b"UIDVALIDITY ")[1].rstrip(b")"))


def test_every_message_is_taken_once_also_those_a_person_read(
    runtime: Runtime, dovecot: Dovecot, imap: imaplib.IMAP4
) -> None:
    runtime.settings.intake.send_acks = False
    _append(imap, complaint(message_id="<i1@example.net>"))
    _append(imap, complaint(message_id="<i2@example.net>", subject="second"))
    _append(imap, complaint(message_id="<i3@example.net>"), flags=r"(\Seen)")  # already read by a person
    poller = ImapPoller(wire_all(runtime), _account(dovecot))
    result = poller.poll_once()
    assert len(result.receipts) == 3
    assert result.uidvalidity == str(_uidvalidity(imap, "INBOX"))
    assert (result.last_uid, result.rescanned) == (3, False)
    assert all(not r.duplicate for r in result.receipts)
    assert all(b"\\Seen" in f for f in _flags(imap))
    with runtime.sessions() as s:
        rows = list(s.scalars(select(RawInputRow)))
        cursor = s.get(ImapCursorRow, f"{dovecot.user}@{dovecot.host}:{dovecot.port}/INBOX")
    assert {r.channel for r in rows} == {"imap"}
    assert {r.meta["uid"] for r in rows} == {"1", "2", "3"}
    assert all(r.status != "stored" for r in rows)  # the poll drained the pipeline
    assert cursor is not None and (cursor.uidvalidity, cursor.last_uid) == (_uidvalidity(imap, "INBOX"), 3)
    assert poller.poll_once().receipts == []


def test_a_restart_goes_on_from_the_stored_cursor(
    runtime: Runtime, dovecot: Dovecot, imap: imaplib.IMAP4, clock: ManualClock
) -> None:
    runtime.settings.intake.send_acks = False
    _append(imap, complaint(message_id="<r1@example.net>"))
    _append(imap, complaint(message_id="<r2@example.net>", subject="second"))
    assert len(ImapPoller(wire_all(runtime), _account(dovecot)).poll_once().receipts) == 2
    # a person marks both unread again while abusedesk is down; a new mail arrives
    imap.select("INBOX")
    imap.store("1:*", "-FLAGS", r"(\Seen)")
    _append(imap, complaint(message_id="<r3@example.net>", subject="third"))
    # a new process: another Runtime on the same database, a new door and poller, nothing kept in memory
    restarted = Runtime(runtime.settings, clock=clock, engine=runtime.engine)
    result = ImapPoller(wire_all(restarted), _account(dovecot)).poll_once()
    assert [(r.duplicate, r.accepted.raw.meta["uid"]) for r in result.receipts] == [(False, "3")]
    assert _count(runtime) == 3
    assert result.last_uid == 3
    unread = [f for f in _flags(imap) if b"\\Seen" not in f]
    assert len(unread) == 2  # what the person marked unread stays so: the poller did not fetch them again


def test_uidvalidity_change_reads_the_mailbox_again_without_duplicates_or_second_acks(
    runtime: Runtime, dovecot: Dovecot, imap: imaplib.IMAP4, mail_sink: Sink
) -> None:
    point_smtp_at(runtime, mail_sink)
    first = [complaint(sender=f"r{i}@example.net", message_id=f"<v{i}@example.net>") for i in (1, 2)]
    assert imap.create("Abuse")[0] == "OK"
    for data in first:
        typ, resp = imap.append("Abuse", None, None, data)
        assert typ == "OK", resp
    poller = ImapPoller(wire_all(runtime), _account(dovecot, mailbox="Abuse"))
    before = poller.poll_once()
    assert len(before.receipts) == 2 and before.last_uid == 2
    assert len(mail_sink.wait(2)) == 2  # each reporter acknowledged once
    # the mailbox is re-created (a restore, a migration): same messages, new UIDVALIDITY, UIDs from 1 again
    assert imap.delete("Abuse")[0] == "OK"
    assert imap.create("Abuse")[0] == "OK"
    for data in [*first, complaint(sender="r3@example.net", message_id="<v3@example.net>")]:
        typ, resp = imap.append("Abuse", None, None, data)
        assert typ == "OK", resp
    assert str(_uidvalidity(imap, "Abuse")) != before.uidvalidity
    after = poller.poll_once()
    assert after.rescanned is True
    assert after.uidvalidity == str(_uidvalidity(imap, "Abuse"))
    assert [r.duplicate for r in after.receipts] == [True, True, False]  # known by their bytes
    assert _count(runtime) == 3
    assert after.last_uid == 3
    acks = mail_sink.wait(3)  # sent before poll_once returned; the sink has all of them
    assert [str(m["To"]) for m in acks] == ["r1@example.net", "r2@example.net", "r3@example.net"]  # no second ack
    assert poller.poll_once().receipts == []  # and the new cursor holds


class FlakyFetchPoller(ImapPoller):
    """The server returns nothing for UID 2 once (a message being expunged, a server hiccup)."""

    failed: bool = False

    def _take(self, conn: imaplib.IMAP4, uid: str, uidvalidity: int, result: ImapPollResult) -> bool:
        if uid == "2" and not self.failed:
            self.failed = True
            return False
        return super()._take(conn, uid, uidvalidity, result)


def test_a_message_the_server_did_not_return_holds_the_cursor(
    runtime: Runtime, dovecot: Dovecot, imap: imaplib.IMAP4
) -> None:
    runtime.settings.intake.send_acks = False
    for i in (1, 2, 3):
        _append(imap, complaint(message_id=f"<f{i}@example.net>", subject=f"n{i}"))
    poller = FlakyFetchPoller(wire_all(runtime), _account(dovecot))
    first = poller.poll_once()
    assert [r.accepted.raw.meta["uid"] for r in first.receipts] == ["1", "3"]
    assert first.last_uid == 1  # not past UID 2
    assert poller.load_cursor() == ImapCursor(_uidvalidity(imap, "INBOX"), 1)
    second = poller.poll_once()
    assert [(r.accepted.raw.meta["uid"], r.duplicate) for r in second.receipts] == [("2", False), ("3", True)]
    assert second.last_uid == 3 and _count(runtime) == 3


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
    poller = ImapPoller(door, _account(dovecot))
    assert poller.load_cursor() is None  # no cursor was written past the message
    result = poller.poll_once()
    assert len(result.receipts) == 1
    assert result.receipts[0].duplicate  # the raw store knew the bytes
    assert _count(runtime) == 1
    assert all(b"\\Seen" in f for f in _flags(imap))
    assert result.last_uid == 1


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


def test_ack_goes_out_for_imap_mail(runtime: Runtime, dovecot: Dovecot, imap: imaplib.IMAP4, mail_sink: Sink) -> None:
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
