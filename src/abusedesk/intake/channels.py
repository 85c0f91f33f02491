"""What every complaint channel does with one message: accept it through the one door, then count and ack.

``MailDoor.receive`` reads only the headers it needs (From, Message-ID, Subject and the loop-protection headers),
names the parser when an envelope recipient (``meta["rcpt_to"]``) has a format hint (``intake/hints.py``),
calls ``IntakeService.accept`` (which stores the bytes durably before returning), records the reporter, and only
then sends the acknowledgement. A copy of a message already taken in (the same sender, the same content once the
header fields added in transit are set aside) is a duplicate: nothing new is stored and the answer names the
first. The same Message-ID from the same sender with other content is a new report, linked to the first
(``report_ref`` → ``related_to``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from abusedesk.domain.errors import AbuseDeskError
from abusedesk.domain.ids import sha256_hex
from abusedesk.intake.reporters import (
    REPLY_CHANNELS,
    ReplyOutcome,
    ReporterDesk,
    normalise_address,
    reference_of,
)
from abusedesk.intake.service import Accepted, AcceptRequest, IntakeService
from abusedesk.parsers import mime
from abusedesk.runtime import Runtime

log = logging.getLogger(__name__)

_REF_MAX = 200


@dataclass(frozen=True, slots=True)
class Receipt:
    """One accepted message: what ``accept`` returned, the reference to quote, and the acknowledgement."""

    accepted: Accepted
    reference: str
    ack: ReplyOutcome | None = None

    @property
    def raw_id(self) -> str:
        return self.accepted.raw.id

    @property
    def duplicate(self) -> bool:
        return self.accepted.duplicate

    @property
    def related_to(self) -> str | None:
        """The raw id of the earlier input with this one's Message-ID or report id (and other content)."""
        return self.accepted.related_to

    @property
    def original_id(self) -> str:
        """The raw id the reporter should see: the first input when this one is a duplicate."""
        return self.accepted.duplicate_of or self.accepted.raw.id


def read_headers(data: bytes) -> Message | None:
    """The header block of ``data`` when it looks like mail (the body is not decoded), else None."""
    if not mime.looks_like_mail(data):
        return None
    try:
        return BytesHeaderParser(policy=policy.compat32).parsebytes(data)
    except Exception:  # the parsers will quarantine it; the channel only wants headers
        log.warning("headers of a %d-byte message could not be read", len(data))
        return None


def _header(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def mail_report_ref(reporter: str | None, message_id: str | None) -> str | None:
    """``mail:<sender>:<message-id>`` (hashed when long): what links a message to its sender's earlier ones."""
    if not reporter or not message_id:
        return None
    ref = f"mail:{reporter}:{message_id.strip().strip('<>')}"
    return ref if len(ref) <= _REF_MAX else "mail:" + sha256_hex(ref.encode())


class MailDoor:
    """The mail channels' (SMTP, LMTP, IMAP, maildir/mbox, HTTP raw mail) way through ``accept``."""

    def __init__(self, intake: IntakeService, desk: ReporterDesk | None = None, *, ack: bool | None = None) -> None:
        self.intake = intake
        self.rt = intake.rt
        self.desk = desk or ReporterDesk(self.rt)
        self.ack = self.rt.settings.intake.send_acks if ack is None else ack

    def receive(
        self,
        data: bytes,
        *,
        channel: str,
        meta: dict[str, Any] | None = None,
        mail_from: str | None = None,
        report_ref: str | None = None,
        reporter: str | None = None,
        ack: bool | None = None,
        canonical: bytes | None = None,
        refuse_ref_reuse: str | None = None,
    ) -> Receipt:
        """Accept one message (raises InputRejected when too large), record its reporter, then acknowledge it.

        ``ack=False`` skips the mail acknowledgement (a machine report whose HTTP answer carries the reference).
        ``canonical`` and ``refuse_ref_reuse`` are passed to ``IntakeService.accept``.
        """
        prepared = self.prepare(
            data,
            channel=channel,
            meta=meta,
            mail_from=mail_from,
            report_ref=report_ref,
            reporter=reporter,
            ack=ack,
            canonical=canonical,
            refuse_ref_reuse=refuse_ref_reuse,
        )
        return self.finish(prepared, self.intake.submit(prepared.request))

    def receive_many(self, items: list[tuple[bytes | Path, str, dict[str, Any]]]) -> list[Receipt | AbuseDeskError]:
        """Accept several messages ``(data, channel, meta)`` with one flush and one commit (a file import); each
        answer is its receipt or the error that refused it. ``data`` may be the path of a feed file too large to
        hold: it is streamed into the raw store."""
        prepared = [
            self.prepare(b"", channel=channel, meta=meta, path=data)
            if isinstance(data, Path)
            else self.prepare(data, channel=channel, meta=meta)
            for data, channel, meta in items
        ]
        results = self.intake.accept_many([p.request for p in prepared])
        return [
            r if isinstance(r, AbuseDeskError) else self.finish(p, r) for p, r in zip(prepared, results, strict=True)
        ]

    def prepare(
        self,
        data: bytes,
        *,
        channel: str,
        meta: dict[str, Any] | None = None,
        mail_from: str | None = None,
        report_ref: str | None = None,
        reporter: str | None = None,
        ack: bool | None = None,
        canonical: bytes | None = None,
        refuse_ref_reuse: str | None = None,
        path: Path | None = None,
    ) -> Prepared:
        """What the door reads of a message before accepting it: reporter, report ref, hints, loop protection."""
        headers = read_headers(data)
        meta = dict(meta or {})
        if mail_from is not None:
            meta.setdefault("mail_from", mail_from)
        rcpt_to = meta.get("rcpt_to")
        if isinstance(rcpt_to, list) and self.intake.hints:
            self.intake.hints.apply(meta, self.intake.hints.for_recipients(str(a) for a in rcpt_to))
        if headers is not None:
            reporter = reporter or normalise_address(_header(headers, "From"))
            message_id = _header(headers, "Message-ID")
            subject = _header(headers, "Subject")
            if message_id:
                meta.setdefault("message_id", message_id[:300])
            if subject:
                meta.setdefault("subject", subject[:300])
            report_ref = report_ref or mail_report_ref(reporter, message_id)
        reporter = reporter or normalise_address(mail_from)
        auto = self.desk.automatic_reason(headers, mail_from)
        if auto:
            meta["auto_generated"] = auto
        verified = self.desk.verified_by_headers(headers)
        if verified:  # kept with the input: a later reply (not ours) may quote the sender only when set
            meta.setdefault("sender_verified", verified)
        want_ack = bool((self.ack if ack is None else ack) and channel in REPLY_CHANNELS and reporter)
        ack_to = self.desk.ack_address(reporter, headers, mail_from) if want_ack else None
        request = AcceptRequest(data, channel, meta, report_ref, reporter, canonical, refuse_ref_reuse, path, ack_to)
        return Prepared(request, headers, mail_from, want_ack)

    def finish(self, prepared: Prepared, accepted: Accepted) -> Receipt:
        """After the input is stored (and its reporter counted, in the same transaction): the acknowledgement."""
        request = prepared.request
        receipt = Receipt(accepted, reference_of(accepted.duplicate_of or accepted.raw.id))
        if prepared.ack:
            outcome = self.desk.acknowledge(
                raw_id=receipt.original_id,
                to=request.reporter,
                message=prepared.headers,
                mail_from=prepared.mail_from,
                duplicate=accepted.duplicate,
                reserved=accepted.ack,  # counted when the report was stored (a duplicate counts it now)
                verified=request.meta.get("sender_verified"),
            )
            receipt = Receipt(accepted, receipt.reference, outcome)
        return receipt


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message read by the door and ready for ``accept``."""

    request: AcceptRequest
    headers: Message | None
    mail_from: str | None
    ack: bool  # the door acknowledges this message (channel, reporter and the ack setting allow it)


def wire_channels(rt: Runtime) -> MailDoor:
    """The door of a process that runs channels (``abusedesk intake ...``, ``abusedesk serve``).

    The stages themselves come from the stage table (``abusedesk.stages``); with the in-process bus they run in
    this process (``rt.drain()``), with NATS in ``abusedesk worker`` processes.
    """
    intake = IntakeService(rt)
    return MailDoor(intake, ReporterDesk(rt))
