"""Outside reporters: acknowledgements, loop protection, the "not ours" reply, and accuracy over time.

An acknowledgement carries the report's reference (``reference_of``: the first 16 hex digits of the raw id) and
is sent only after ``IntakeService.accept`` returned. It is never sent to an automatic sender: a message with
``Auto-Submitted`` other than ``no``, ``Precedence: bulk|junk|list``, a ``List-Id``, an empty or MAILER-DAEMON
return path, a delivery-status report, or one from our own addresses gets no reply, so two robots cannot mail
each other for ever; nor to a feedback-loop report (ARF) or a sender in ``intake.no_reply_domains`` (SpamCop).
Replies to one address are limited to ``intake.ack_per_reporter_per_hour``, to one domain to
``intake.ack_per_domain_per_hour``.

A reply quotes what the sender wrote (the subject, the addresses it reported) only when the sender is verified
(``intake.senders``: DKIM/SPF-aligned per our MTA's Authentication-Results, a known reporter, or an authenticated
API client); anyone else gets a plain receipt with our reference, so a forged ``From`` cannot make the desk mail a
chosen text to a victim (issue 10).

The ``reporters`` table keeps, per address, how many reports and events it sent and how many of the cases it
led to were confirmed or dismissed (``record_case_outcome``, called by the case engine); ``accuracy`` is the
share of decided cases that were confirmed.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage, Message
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Table, bindparam, case, select, update
from sqlalchemy.orm import Session

from abusedesk.bus.base import StageBatch
from abusedesk.config import Settings
from abusedesk.domain.errors import ActionError, ConfigError
from abusedesk.domain.timeutil import iso
from abusedesk.intake.senders import authenticated_by_results, domain_of, is_known_reporter
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import EventRow, RawInputRow, ReplyWindowRow, ReporterRow
from abusedesk.store.upsert import insert_ignore

log = logging.getLogger(__name__)
_REPORTERS: Table = ReporterRow.__table__  # type: ignore[assignment]
_WINDOWS: Table = ReplyWindowRow.__table__  # type: ignore[assignment]

TEMPLATES = Path(__file__).parent / "templates"
REFERENCE_LENGTH = 16
#: channels whose reporters may get an e-mail reply (a file import or a feed never does)
REPLY_CHANNELS = frozenset({"smtp", "lmtp", "imap", "http"})
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
DEFAULT_NO_REPLY_DOMAINS = ("spamcop.net",)
_DAEMONS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply")


def reference_of(raw_id: str) -> str:
    """The reference a reporter quotes: the raw id's first 16 hex digits (unique in practice, 64 bits)."""
    return raw_id[:REFERENCE_LENGTH]


def normalise_address(text: str | None) -> str | None:
    """The bare, lower-cased mail address in ``text`` (``"A <x@Y>"`` → ``x@y``), or None."""
    if not text:
        return None
    _, addr = parseaddr(str(text))
    addr = addr.strip().lower()
    return addr if "@" in addr else None


def auto_generated_reason(
    message: Message | None,
    mail_from: str | None,
    own_addresses: set[str],
    no_reply_domains: tuple[str, ...] | list[str] = DEFAULT_NO_REPLY_DOMAINS,
) -> str | None:
    """Why this mail must get no automatic reply (RFC 3834 and common practice), or None when a reply is fine.

    ``mail_from`` is the SMTP return path (``""`` for a bounce; None when the channel does not know it).
    """
    if mail_from is not None:
        rp = mail_from.strip().strip("<>").lower()
        if not rp:
            return "empty return path (a bounce or other automatic mail)"
        if rp.split("@", 1)[0] in _DAEMONS:
            return f"return path {rp} is a mail system address"
        if rp in own_addresses:
            return f"return path {rp} is our own address"
        if _in_domains(rp, no_reply_domains):
            return f"return path {rp} is in a no-reply domain (setting intake.no_reply_domains)"
    if message is None:
        return None
    auto = str(message.get("Auto-Submitted", "") or "").strip().lower()
    if auto and auto.split(";", 1)[0].strip() != "no":
        return f"Auto-Submitted: {auto}"
    precedence = str(message.get("Precedence", "") or "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    if message.get("List-Id") is not None:
        return "List-Id header (mailing list traffic)"
    suppress = str(message.get("X-Auto-Response-Suppress", "") or "").lower()
    if any(word in suppress for word in ("all", "autoreply", "oof")):
        return f"X-Auto-Response-Suppress: {suppress}"
    report_type = str(message.get_param("report-type", "") or "").lower()
    if message.get_content_type() == "multipart/report" and report_type == "delivery-status":
        return "delivery status notification (bounce)"
    if message.get_content_type() == "multipart/report" and report_type == "feedback-report":
        return "feedback-loop report (ARF, RFC 5965): a machine sent it and reads no reply"
    for name in ("From", "Reply-To", "Sender"):
        for _, addr in getaddresses([str(v) for v in message.get_all(name, [])]):
            addr = addr.lower()
            if addr in own_addresses:
                return f"{name} {addr} is our own address"
            if name == "From" and addr.split("@", 1)[0] in _DAEMONS:
                return f"From {addr} is a mail system address"
            if _in_domains(addr, no_reply_domains):
                return f"{name} {addr} is in a no-reply domain (setting intake.no_reply_domains)"
    return None


def _in_domains(address: str, domains: tuple[str, ...] | list[str]) -> bool:
    domain = domain_of(address)
    return domain is not None and any(domain == d or domain.endswith("." + d) for d in (x.lower() for x in domains))


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """Sends through the SMTP relay in ``settings.smtp`` with the notices' transport (``actions.smtp``); a failure
    raises ActionError (retryable)."""

    def __init__(self, settings: Settings) -> None:
        from abusedesk.actions.smtp import SmtpTransport

        self.transport = SmtpTransport.from_settings(settings.smtp)

    def send(self, message: EmailMessage) -> None:
        t = self.transport
        sender = normalise_address(str(message["From"])) or str(message["From"])
        to = [a for _, a in getaddresses([str(v) for v in message.get_all("To", [])]) if a]
        try:
            t.send(sender, to, message.as_bytes())
        except (OSError, smtplib.SMTPException, ConfigError) as exc:
            raise ActionError(
                f"mail to {message['To']} could not be sent through {t.where}: {exc}; "
                "check settings.smtp and that the relay is up"
            ) from exc


class ConsoleMailer:
    """Logs the mail instead of sending it (notify_backend = console)."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.sent.append(message)
        log.info("mail (console backend) to %s: %s\n%s", message["To"], message["Subject"], message.get_content())


class NullMailer:
    """Drops every mail (notify_backend = null)."""

    def send(self, message: EmailMessage) -> None:
        return None


def mailer_for(settings: Settings) -> Mailer:
    if settings.notify_backend == "smtp":
        return SmtpMailer(settings)
    if settings.notify_backend == "console":
        return ConsoleMailer()
    return NullMailer()


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """Whether a reply went out, and if not, why (loop protection, rate limit, no address, send failure)."""

    sent: bool
    reason: str
    to: str | None = None
    reference: str | None = None


class ReporterDesk:
    """Replies to reporters and keeps their counts; every channel that knows a reporter goes through it."""

    def __init__(self, rt: Runtime, mailer: Mailer | None = None) -> None:
        self.rt = rt
        self.mailer = mailer or mailer_for(rt.settings)
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,  # noqa: S701 - plain-text mail, never rendered as HTML
        )

    @property
    def own_addresses(self) -> set[str]:
        s = self.rt.settings
        return {a for a in (normalise_address(s.intake.ack_from), normalise_address(s.notify_from)) if a}

    def automatic_reason(self, message: Message | None, mail_from: str | None) -> str | None:
        """:func:`auto_generated_reason` with this desk's own addresses and no-reply domains."""
        nr = self.rt.settings.intake.no_reply_domains
        return auto_generated_reason(message, mail_from, self.own_addresses, nr)

    def verified_by_headers(self, message: Message | None) -> str | None:
        """Why the headers show the sender is who ``From`` says (our MTA's Authentication-Results), or None."""
        return authenticated_by_results(message, self.rt.settings.intake.authserv_ids)

    def verification(self, address: str, recorded: str | None) -> str | None:
        """Why ``address`` may be quoted to: ``recorded`` by the door, a known reporter, or a trusted row."""
        if recorded:
            return recorded
        if is_known_reporter(address, self.rt.settings.intake.known_reporters):
            return "known reporter (setting intake.known_reporters)"
        with self.rt.sessions() as s:
            row = s.get(ReporterRow, address)
            return "known reporter (trusted)" if row is not None and row.trusted else None

    # -- counts -----------------------------------------------------------------------------------------------

    def note_report(self, address: str | None) -> None:
        """Count one report from ``address`` now, in a transaction of its own (a channel outside the door)."""
        address = normalise_address(address)
        if address is None:
            return
        with self.rt.sessions.begin() as s:
            add_counts(s, {address: [1, 0]}, self.rt.clock.now())

    # -- replies ----------------------------------------------------------------------------------------------

    def acknowledge(
        self,
        *,
        raw_id: str,
        to: str | None,
        message: Message | None,
        mail_from: str | None,
        duplicate: bool = False,
        reserved: AckReservation | None = None,
        verified: str | None = None,
    ) -> ReplyOutcome:
        """Send the acknowledgement of one accepted report, unless loop protection or the rate limit says no
        (``reserved``: the door already counted it against the limit, in the transaction that stored the report;
        ``verified``: why the channel knows the sender is who it says, e.g. an authenticated API client)."""
        reference = reference_of(raw_id)
        address = normalise_address(to)
        if address is None:
            return ReplyOutcome(False, "no reporter address to reply to", reference=reference)
        reason = self.automatic_reason(message, mail_from)
        if reason is None and address in self.own_addresses:
            reason = f"reporter {address} is our own address"
        if reason:
            log.info("no acknowledgement for raw input %s to %s: %s", raw_id, address, reason)
            return ReplyOutcome(False, f"automatic sender: {reason}", to=address, reference=reference)
        verified = self.verification(address, verified or self.verified_by_headers(message))
        # what the sender wrote is quoted back only to a verified sender: a forged From gets a plain receipt
        subject = str(message.get("Subject", "") or "")[:200] if message is not None and verified else ""
        body = self.templates.get_template("ack.txt.j2").render(
            reference=reference,
            duplicate=duplicate,
            subject=subject,
            received_at=iso(self.rt.clock.now()),
            per_hour=self.rt.settings.intake.ack_per_reporter_per_hour,
            desk_address=self.rt.settings.intake.ack_from,
        )
        mail = self._mail(address, f"[{reference}] Report received" + (f": {subject}" if subject else ""), body)
        if verified and message is not None and message.get("Message-ID"):
            mail["In-Reply-To"] = str(message["Message-ID"])
            mail["References"] = str(message["Message-ID"])
        return self._send_limited(address, mail, reference, reserved, quoted=bool(verified))

    def ack_address(self, to: str | None, message: Message | None, mail_from: str | None) -> str | None:
        """The address an acknowledgement would go to, or None when loop protection says it must not."""
        address = normalise_address(to)
        if address is None or address in self.own_addresses:
            return None
        return None if self.automatic_reason(message, mail_from) else address

    def reply_not_ours(self, raw_id: str) -> ReplyOutcome:
        """Tell the reporter of ``raw_id`` which reported subjects are not ours (once per raw input)."""
        reference = reference_of(raw_id)
        with self.rt.sessions() as s:
            raw = s.get(RawInputRow, raw_id)
            if raw is None:
                return ReplyOutcome(False, "raw input not recorded", reference=reference)
            rows = list(
                s.execute(
                    select(EventRow.source_ip, EventRow.source_url, EventRow.time)
                    .where(EventRow.raw_id == raw_id, EventRow.disposition == "not-ours")
                    .order_by(EventRow.time)
                )
            )
            meta = dict(raw.meta or {})
            channel = raw.channel
            address = normalise_address(raw.reporter)
        if not rows:
            return ReplyOutcome(False, "no event of this report is not ours", reference=reference)
        if meta.get("not_ours_reply"):
            return ReplyOutcome(False, "already replied", to=address, reference=reference)
        if channel not in REPLY_CHANNELS:
            return ReplyOutcome(False, f"channel {channel} gets no replies", reference=reference)
        if address is None:
            return ReplyOutcome(False, "no reporter address to reply to", reference=reference)
        if meta.get("auto_generated"):
            return ReplyOutcome(False, f"automatic sender: {meta['auto_generated']}", to=address, reference=reference)
        if address in self.own_addresses:
            return ReplyOutcome(False, f"reporter {address} is our own address", to=address, reference=reference)
        subjects = sorted(
            {(ip or url or "?", iso(t)) for ip, url, t in rows},
        )
        verified = self.verification(address, meta.get("sender_verified"))
        body = self.templates.get_template("not_ours.txt.j2").render(
            reference=reference,
            # the reported addresses are the sender's words: listed only to a verified sender
            subjects=[{"subject": sub, "time": t} for sub, t in subjects[:50]] if verified else [],
            count=len(subjects),
            desk_address=self.rt.settings.intake.ack_from,
        )
        mail = self._mail(address, f"[{reference}] Not our address", body)
        if verified and meta.get("message_id"):
            mail["In-Reply-To"] = str(meta["message_id"])
        outcome = self._send_limited(address, mail, reference, quoted=bool(verified))
        if outcome.sent:
            with self.rt.sessions.begin() as s:
                row = s.get(RawInputRow, raw_id)
                assert row is not None
                row.meta = {**dict(row.meta or {}), "not_ours_reply": iso(self.rt.clock.now())}
        return outcome

    def reply_not_ours_for(self, event_ids: list[str]) -> None:
        """A "not ours" reply per raw input of these events (when switched on; once per raw input)."""
        if not self.rt.settings.intake.reply_not_ours or not event_ids:
            return
        with self.rt.sessions() as s:
            raw_ids = sorted(
                {r for r in s.scalars(select(EventRow.raw_id).where(EventRow.id.in_(event_ids))) if r is not None}
            )
        for raw_id in raw_ids:
            self.reply_not_ours(raw_id)

    def _mail(self, to: str, subject: str, body: str) -> EmailMessage:
        s = self.rt.settings
        mail = EmailMessage()
        mail["From"] = s.intake.ack_from
        mail["To"] = to
        mail["Subject"] = subject.replace("\r", " ").replace("\n", " ")
        mail["Date"] = formatdate(self.rt.clock.now().timestamp(), usegmt=True)
        domain = (normalise_address(s.intake.ack_from) or "abusedesk.invalid").split("@", 1)[1]
        mail["Message-ID"] = make_msgid(domain=domain)
        mail["Auto-Submitted"] = "auto-replied"  # RFC 3834: the reporter's robot must not answer us
        mail["Precedence"] = "bulk"
        mail.set_content(body)
        return mail

    def _send_limited(
        self,
        address: str,
        mail: EmailMessage,
        reference: str,
        reserved: AckReservation | None = None,
        *,
        quoted: bool = False,
    ) -> ReplyOutcome:
        """Send ``mail`` within the destination's hourly limits: counted here in a transaction of its own, or
        already by the door in the transaction that stored the report (``reserved``: group commit)."""
        if reserved is None:
            cfg = self.rt.settings.intake
            with self.rt.sessions.begin() as s:
                reserved = reserve_ack(
                    s, address, self.rt.clock.now(), cfg.ack_per_reporter_per_hour, cfg.ack_per_domain_per_hour
                )
        if reserved.refused:
            return ReplyOutcome(False, reserved.refused, to=address, reference=reference)
        try:
            self.mailer.send(mail)
        except ActionError as exc:
            log.warning("reply %s to %s not sent: %s", reference, address, exc.message)
            return ReplyOutcome(False, f"send failed: {exc.message}", to=address, reference=reference)
        return ReplyOutcome(
            True, "sent" if quoted else "sent (plain receipt: sender not verified)", to=address, reference=reference
        )


@dataclass(frozen=True, slots=True)
class AckReservation:
    """A reply counted against its reporter's hourly limit (``refused`` None), or the reason it may not go."""

    refused: str | None = None


def reserve_ack(s: Session, address: str, now: datetime, limit: int, domain_limit: int | None = None) -> AckReservation:
    """Count one reply to ``address`` inside ``s``'s transaction, unless its or its domain's hourly limit is
    reached (the domain's, ``intake.ack_per_domain_per_hour``, stops a forged From that rotates local parts)."""
    domain = domain_of(address)
    window: ReplyWindowRow | None = None
    if domain_limit is not None and domain is not None:
        insert_ignore(s, _WINDOWS, [{"destination": domain, "window_start": now, "sent": 0}])
        window = s.get(ReplyWindowRow, domain, with_for_update=True)
        assert window is not None
        if now - window.window_start >= timedelta(hours=1):
            window.window_start, window.sent = now, 0
        if window.sent >= domain_limit:
            return AckReservation(
                f"rate limit: {domain_limit} replies an hour to addresses at {domain} already sent "
                "(setting intake.ack_per_domain_per_hour)"
            )
    insert_ignore(s, _REPORTERS, [{"address": address, "first_seen": now, "last_seen": now}])
    row = s.get(ReporterRow, address, with_for_update=True)
    assert row is not None
    if row.acks_window_start is None or now - row.acks_window_start >= timedelta(hours=1):
        row.acks_window_start = now
        row.acks_in_window = 0
    if row.acks_in_window >= limit:
        return AckReservation(
            f"rate limit: {limit} replies an hour to {address} already sent (setting intake.ack_per_reporter_per_hour)"
        )
    row.acks_in_window += 1
    if window is not None:
        window.sent += 1
    return AckReservation()


def add_counts(s: Session, counts: dict[str, list[int]], now: datetime) -> None:
    """Move reporters' running counts on inside ``s``'s transaction: ``{address: [reports, events]}``.

    Counters, not recounts: the cost of a report does not grow with the reporter's history. The door adds a
    report when it stores a new input; the parse stage adds the events it stored for the first time.
    """
    rows = [{"address": a, "first_seen": now, "last_seen": now} for a in sorted(counts)]
    insert_ignore(s, _REPORTERS, rows)
    t = _REPORTERS.c  # Core, not the ORM: an executemany UPDATE by a bound address, counters moved in place
    s.execute(
        update(_REPORTERS)
        .where(t.address == bindparam("addr"))
        .values(
            reports=t.reports + bindparam("n_reports"),
            events=t.events + bindparam("n_events"),
            last_seen=case((t.last_seen < bindparam("now"), bindparam("now")), else_=t.last_seen),
        ),
        [{"addr": a, "n_reports": c[0], "n_events": c[1], "now": now} for a, c in sorted(counts.items())],
    )


class RepliesStage:
    """The replies stage (``events.attributed``): "not ours" replies to the reporters of these events."""

    def __init__(self, rt: Runtime) -> None:
        self.desk = ReporterDesk(rt)

    def handle(self, batch: StageBatch) -> None:
        event_ids = [str(e["id"]) for m in batch.messages for e in m.get("events", []) if e.get("id")]
        # mail goes out after the batch committed; a reply is marked on its raw input, so it is sent once
        batch.after_commit(lambda: self.desk.reply_not_ours_for(event_ids))


def record_case_outcome(rt: Runtime, reporter: str, confirmed: bool) -> None:
    """Count one decided case for ``reporter``: confirmed (the complaint was right) or dismissed.

    The case engine calls this when a case that came from this reporter's report is resolved. The caller makes it
    once per case and outcome (it is a counter, not idempotent).
    """
    address = normalise_address(reporter) or reporter.strip().lower()
    now = rt.clock.now()
    with rt.sessions.begin() as s:
        insert_ignore(s, _REPORTERS, [{"address": address, "first_seen": now, "last_seen": now}])
        row = s.get(ReporterRow, address, with_for_update=True)
        assert row is not None
        if confirmed:
            row.confirmed_cases += 1
        else:
            row.dismissed_cases += 1


def accuracy(row: ReporterRow) -> float | None:
    """Confirmed share of decided cases, or None before any case was decided."""
    decided = row.confirmed_cases + row.dismissed_cases
    return row.confirmed_cases / decided if decided else None


def reporter_stats(rt: Runtime, address: str) -> dict[str, Any] | None:
    """One reporter's row as a dict with its accuracy, or None when unknown."""
    with rt.sessions() as s:
        row = s.get(ReporterRow, normalise_address(address) or address)
        if row is None:
            return None
        return {
            "address": row.address,
            "first_seen": iso(row.first_seen),
            "last_seen": iso(row.last_seen),
            "reports": row.reports,
            "events": row.events,
            "confirmed_cases": row.confirmed_cases,
            "dismissed_cases": row.dismissed_cases,
            "accuracy": accuracy(row),
            "trusted": row.trusted,
        }
