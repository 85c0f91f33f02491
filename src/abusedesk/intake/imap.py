"""An IMAP poller for an abuse mailbox kept on a mail server (imaplib, stdlib).

Each poll selects the mailbox, searches ``UNSEEN``, fetches each message with ``BODY.PEEK[]`` (which does not set
``\\Seen``), passes it through the channel door, and only after ``IntakeService.accept`` returned marks it
``\\Seen`` (or moves it to ``processed_folder``). A crash between the two fetches the message again on the next
poll; the raw store recognises the same bytes, so nothing is taken twice and nothing is lost. A message over the
size limit is flagged ``\\Flagged`` and ``\\Seen`` and left in place for a person, with the reason in the log.
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
from abusedesk.intake.channels import MailDoor, Receipt

log = logging.getLogger(__name__)

_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


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


@dataclass(slots=True)
class ImapPollResult:
    receipts: list[Receipt] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (uid, reason)
    uidvalidity: str | None = None


class ImapPoller:
    """Polls one mailbox; ``poll_once`` for one pass, ``run`` to poll every ``interval`` seconds."""

    def __init__(self, door: MailDoor, account: ImapAccount) -> None:
        self.door = door
        self.account = account

    def _connect(self) -> imaplib.IMAP4:
        a = self.account
        try:
            conn: imaplib.IMAP4
            if a.tls:
                conn = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=a.ssl_context, timeout=a.timeout)
            else:
                conn = imaplib.IMAP4(a.host, a.port, timeout=a.timeout)
                if a.starttls:
                    conn.starttls(ssl_context=a.ssl_context)
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
            uv = conn.response("UIDVALIDITY")[1]
            result.uidvalidity = uv[0].decode() if uv and uv[0] else None
            typ, data = conn.uid("SEARCH", "UNSEEN")
            if typ != "OK":
                raise SourceUnavailable(f"IMAP SEARCH UNSEEN failed on {a.mailbox!r}: {data}")
            uids = [u.decode() for u in (data[0] or b"").split()]
            limit = self.door.rt.settings.intake.max_input_bytes
            for uid in uids:
                size = self._size(conn, uid)
                if size is not None and size > limit:
                    reason = (
                        f"IMAP message UID {uid} in {a.mailbox} is {size} bytes, over the limit of {limit} bytes "
                        "(setting intake.max_input_bytes); it was left on the server, flagged"
                    )
                    log.warning("%s", reason)
                    conn.uid("STORE", uid, "+FLAGS", r"(\Seen \Flagged)")
                    result.rejected.append((uid, reason))
                    continue
                typ, fetched = conn.uid("FETCH", uid, "(BODY.PEEK[])")
                body = _body(fetched)
                if typ != "OK" or body is None:
                    log.warning("IMAP FETCH of UID %s in %s returned nothing; will try again", uid, a.mailbox)
                    continue
                try:
                    receipt = self.door.receive(
                        body,
                        channel="imap",
                        meta={"mailbox": a.mailbox, "uid": uid, "uidvalidity": result.uidvalidity, "host": a.host},
                    )
                except InputRejected as exc:
                    conn.uid("STORE", uid, "+FLAGS", r"(\Seen \Flagged)")
                    result.rejected.append((uid, exc.message))
                    continue
                result.receipts.append(receipt)
                self.mark_processed(conn, uid)
            if a.processed_folder and result.receipts:
                conn.expunge()
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                conn.logout()
        if result.receipts:
            self.door.rt.drain()
        return result

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


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _body(fetched: list[object] | None) -> bytes | None:
    for item in fetched or []:
        if isinstance(item, tuple) and len(item) >= 2 and isinstance(item[1], bytes):
            return item[1]
    return None
