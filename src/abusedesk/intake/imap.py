"""An IMAP poller for an abuse mailbox kept on a mail server (imaplib, stdlib).

The poller remembers where it is, per mailbox, in the database (``imap_cursors``): the mailbox's UIDVALIDITY and
the highest UID it has taken in. Each poll selects the mailbox, asks for the UIDs after that one (``UID SEARCH
UID n:*``, not ``UNSEEN``: a complaint a person already opened, ``\\Seen``, is taken in all the same), fetches
each message with ``BODY.PEEK[]``, passes it through the channel door, and only after ``IntakeService.accept``
returned marks it ``\\Seen`` (or moves it to ``processed_folder``) and moves the cursor past it. A restart goes on
from the cursor; nothing is taken twice. A crash between accept and the cursor fetches the message again on the
next poll; the raw store recognises the same bytes, so nothing is stored twice and nothing is lost.

When the server announces another UIDVALIDITY (the mailbox was re-created, or the server's index rebuilt), the old
UIDs mean nothing: the poller reads the whole mailbox again from UID 1. Messages it already has are recognised by
their bytes (the raw store's content hash) and their reporters get no second acknowledgement.

A mailbox with a format hint (setting ``intake.parser_hints.mailboxes``) names its parser in each message's meta.

A message over the size limit is flagged ``\\Flagged`` and ``\\Seen`` and left in place for a person, with the
reason in the log; the cursor moves past it. A message the server returns nothing for holds the cursor below it,
so the next poll asks again.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from abusedesk.domain.errors import InputRejected, SourceUnavailable
from abusedesk.domain.ids import sha256_hex
from abusedesk.intake.channels import MailDoor, Receipt
from abusedesk.intake.hints import ParserHints
from abusedesk.store.tables.intake import ImapCursorRow, RawInputRow

log = logging.getLogger(__name__)

_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass(frozen=True, slots=True)
class ImapCursor:
    """The poller's place in one mailbox: UIDs up to ``last_uid`` under ``uidvalidity`` were dealt with."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True, slots=True)
class ImapAccount:
    host: str
    port: int
    user: str
    password: str
    mailbox: str = "INBOX"
    tls: bool = False
    starttls: bool = False
    processed_folder: str | None = None
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None

    @property
    def cursor_key(self) -> str:
        """The mailbox's name in ``imap_cursors``: the same mailbox through another login is another cursor."""
        return f"{self.user}@{self.host}:{self.port}/{self.mailbox}"


@dataclass(slots=True)
class ImapPollResult:
    receipts: list[Receipt] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (uid, reason)
    uidvalidity: str | None = None
    rescanned: bool = False  # the UIDVALIDITY changed since the last poll: the whole mailbox was read again
    last_uid: int = 0  # the cursor after this poll


class ImapPoller:
    """Polls one mailbox; ``poll_once`` for one pass, ``run`` to poll every ``interval`` seconds."""

    def __init__(self, door: MailDoor, account: ImapAccount) -> None:
        self.door = door
        self.account = account

    def _connect(self) -> imaplib.IMAP4:
        a = self.account
        # imaplib's own default context checks no certificate; the system's CAs (or the account's) do
        context = a.ssl_context if a.ssl_context is not None else ssl.create_default_context()
        try:
            conn: imaplib.IMAP4
            if a.tls:
                conn = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=context, timeout=a.timeout)
            else:
                conn = imaplib.IMAP4(a.host, a.port, timeout=a.timeout)
                if a.starttls:
                    conn.starttls(ssl_context=context)
            conn.login(a.user, a.password)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise SourceUnavailable(
                f"IMAP server {a.host}:{a.port} (user {a.user}) could not be reached or refused the login: {exc}"
            ) from exc
        return conn

    def poll_once(self) -> ImapPollResult:
        a = self.account
        result = ImapPollResult()
        conn = self._connect()
        try:
            typ, data = conn.select(_quote(a.mailbox))
            if typ != "OK":
                raise SourceUnavailable(f"IMAP mailbox {a.mailbox!r} on {a.host}:{a.port} cannot be selected: {data}")
            uidvalidity = _uidvalidity(conn, a)
            result.uidvalidity = str(uidvalidity)
            cursor = self.load_cursor()
            last = 0
            if cursor is not None and cursor.uidvalidity == uidvalidity:
                last = cursor.last_uid
            elif cursor is not None:
                result.rescanned = True
                log.warning(
                    "IMAP mailbox %s: UIDVALIDITY changed from %s to %s since the last poll; reading the whole mailbox "
                    "again (messages already stored are recognised by their bytes)",
                    a.cursor_key,
                    cursor.uidvalidity,
                    uidvalidity,
                )
            # "n:*" also names the highest UID when it is below n (RFC 3501 ranges are unordered): filter
            typ, data = conn.uid("SEARCH", f"UID {last + 1}:*")
            if typ != "OK":
                raise SourceUnavailable(f"IMAP UID SEARCH failed on {a.mailbox!r}: {data}")
            uids = sorted(int(u) for u in (data[0] or b"").split() if u.isdigit() and int(u) > last)
            done = last  # the cursor only passes a UID once it and every UID below it were dealt with
            blocked = False
            for uid in uids:
                if self._take(conn, str(uid), uidvalidity, result):
                    if not blocked:
                        done = uid
                        self.save_cursor(ImapCursor(uidvalidity, done))
                else:
                    blocked = True
            if cursor is None or cursor.uidvalidity != uidvalidity or done != cursor.last_uid:
                self.save_cursor(ImapCursor(uidvalidity, done))
            result.last_uid = done
            if a.processed_folder and result.receipts:
                conn.expunge()
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                conn.logout()
        if result.receipts:
            self.door.rt.drain()
        return result

    def _take(self, conn: imaplib.IMAP4, uid: str, uidvalidity: int, result: ImapPollResult) -> bool:
        """Take one message in; False when it must be asked for again (the server returned nothing)."""
        a = self.account
        limit = self.door.rt.settings.intake.max_input_bytes
        size = self._size(conn, uid)
        if size is not None and size > limit:
            reason = (
                f"IMAP message UID {uid} in {a.mailbox} is {size} bytes, over the limit of {limit} bytes "
                "(setting intake.max_input_bytes); it was left on the server, flagged"
            )
            log.warning("%s", reason)
            conn.uid("STORE", uid, "+FLAGS", r"(\Seen \Flagged)")
            result.rejected.append((uid, reason))
            return True
        typ, fetched = conn.uid("FETCH", uid, "(BODY.PEEK[])")
        body = _body(fetched)
        if typ != "OK" or body is None:
            log.warning("IMAP FETCH of UID %s in %s returned nothing; will try again", uid, a.mailbox)
            return False
        meta: dict[str, object] = {"mailbox": a.mailbox, "uid": uid, "uidvalidity": str(uidvalidity), "host": a.host}
        ParserHints.apply(meta, self.door.intake.hints.for_mailbox(a.mailbox))
        try:
            receipt = self.door.receive(
                body,
                channel="imap",
                meta=meta,
                # the same bytes again are our own second fetch (a re-scan, a crash before the cursor moved),
                # not a reporter sending again: no second acknowledgement
                ack=False if self._is_stored(body) else None,
            )
        except InputRejected as exc:
            conn.uid("STORE", uid, "+FLAGS", r"(\Seen \Flagged)")
            result.rejected.append((uid, exc.message))
            return True
        result.receipts.append(receipt)
        self.mark_processed(conn, uid)
        return True

    def load_cursor(self) -> ImapCursor | None:
        with self.door.rt.sessions() as s:
            row = s.get(ImapCursorRow, self.account.cursor_key)
            return ImapCursor(row.uidvalidity, row.last_uid) if row is not None else None

    def save_cursor(self, cursor: ImapCursor) -> None:
        now = self.door.rt.clock.now()
        with self.door.rt.sessions.begin() as s:
            row = s.get(ImapCursorRow, self.account.cursor_key)
            if row is None:
                s.add(
                    ImapCursorRow(
                        mailbox=self.account.cursor_key,
                        uidvalidity=cursor.uidvalidity,
                        last_uid=cursor.last_uid,
                        updated_at=now,
                    )
                )
            else:
                row.uidvalidity, row.last_uid, row.updated_at = cursor.uidvalidity, cursor.last_uid, now

    def _is_stored(self, body: bytes) -> bool:
        with self.door.rt.sessions() as s:
            return s.get(RawInputRow, sha256_hex(body)) is not None

    def mark_processed(self, conn: imaplib.IMAP4, uid: str) -> None:
        """Only called after accept returned: \\Seen, or copy to the processed folder and delete here."""
        folder = self.account.processed_folder
        if folder:
            typ, data = conn.uid("COPY", uid, _quote(folder))
            if typ != "OK":
                raise SourceUnavailable(f"IMAP COPY of UID {uid} to {folder!r} failed: {data}")
            conn.uid("STORE", uid, "+FLAGS", r"(\Seen \Deleted)")
        else:
            conn.uid("STORE", uid, "+FLAGS", r"(\Seen)")

    def _size(self, conn: imaplib.IMAP4, uid: str) -> int | None:
        _typ, data = conn.uid("FETCH", uid, "(RFC822.SIZE)")
        for item in data or []:
            line = item[0] if isinstance(item, tuple) else item
            if isinstance(line, bytes) and (m := _SIZE.search(line)):
                return int(m.group(1))
        return None

    def run(self, interval: float = 60.0, *, stop: Callable[[], bool] = lambda: False) -> None:
        while not stop():
            try:
                self.poll_once()
            except SourceUnavailable as exc:
                log.warning("%s; next try in %.0fs", exc.message, interval)
            time.sleep(interval)


def _uidvalidity(conn: imaplib.IMAP4, a: ImapAccount) -> int:
    """The UIDVALIDITY the server announced on SELECT; without it UIDs cannot be remembered across sessions."""
    data = conn.response("UIDVALIDITY")[1]
    value = data[0] if data else None
    text = value.decode("ascii", "replace").strip() if isinstance(value, bytes) else str(value or "")
    if not text.isdigit():
        raise SourceUnavailable(
            f"IMAP server {a.host}:{a.port} sent no UIDVALIDITY for {a.mailbox!r} (got {text!r}); without it the "
            "poller cannot tell which messages it already took in"
        )
    return int(text)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _body(fetched: list[object] | None) -> bytes | None:
    for item in fetched or []:
        if isinstance(item, tuple) and len(item) >= 2 and isinstance(item[1], bytes):
            return item[1]
    return None
