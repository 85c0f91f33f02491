"""RFC 5965 Abuse Reporting Format (ARF) feedback-loop reports.

Reads ``multipart/report; report-type=feedback-report`` mails from mailbox providers' feedback loops (AOL, Yahoo,
Comcast, Microsoft JMRP, SpamExperts, ...). One report is one Event: the reported sender (``Source-IP``, IPv4 or
IPv6) at the arrival time, classified from ``Feedback-Type``. Older senders still use ``Version: 0.1`` and the
retired ``Received-Date`` instead of ``Arrival-Date``; both are read. When a report carries no ``Source-IP``
(sparse Microsoft-style reports) the address is derived from the embedded message's first external ``Received``
hop and the event is marked ``ip_derived``.

False positives: feedback loops report what a *user* clicked as spam; forwarded newsletters and mailing lists
are often reported by mistake. ``not-spam`` reports yield a low-confidence ``other`` event for an analyst.
ARF envelopes whose ``Feedback-Type`` is ``xarf`` carry an XARF JSON report and are left to the XARF parser.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from datetime import datetime
from email.message import Message
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report

#: RFC 5965 §7.3 feedback types (plus RFC 6650 auth-failure) → event kind and confidence
FEEDBACK_KINDS: dict[str, tuple[str, float]] = {
    "abuse": ("spam", 0.9),
    "fraud": ("fraud", 0.8),
    "virus": ("malware", 0.8),
    "auth-failure": ("header-forgery", 0.7),
    "dkim": ("header-forgery", 0.7),
    "other": ("other", 0.4),
    "not-spam": ("other", 0.1),
    "opt-out": ("spam", 0.6),
    "abuse-report": ("spam", 0.9),
}
_IP_TOKEN = re.compile(r"[0-9A-Fa-f:.]{3,45}")
_MAX_HOPS = 25


def feedback_fields(msg: Message) -> Message | None:
    """The ``message/feedback-report`` part's fields as a header-only Message, or None when absent."""
    for part in mime.parts(msg):
        if part.get_content_type() != "message/feedback-report":
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        data = mime.part_bytes(part).lstrip()
        return mime.parse_message(data + b"\n\n")
    return None


def is_arf(msg: Message) -> bool:
    ctype = msg.get_content_type()
    report_type = msg.get_param("report-type")
    if ctype == "multipart/report" and isinstance(report_type, str) and report_type.lower() == "feedback-report":
        return True
    return any(p.get_content_type() == "message/feedback-report" for p in mime.parts(msg))


def find_arf(msg: Message, depth: int = 0) -> Message | None:
    """The ARF report in a mail: the mail itself (signed wrapper removed), or one forwarded as an attachment."""
    msg = mime.signed_content(msg)
    if is_arf(msg):
        return msg
    if depth >= 3:
        return None
    for part in mime.parts(msg):
        if part.get_content_type() in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found = find_arf(inner, depth + 1)
                if found is not None:
                    return found
    return None


def first_ip(text: str | None) -> str | None:
    """The first IP address in a field value such as ``192.0.2.1`` or ``[2001:db8::1] (host)``."""
    for token in _IP_TOKEN.findall(text or ""):
        try:
            return str(ipaddress.ip_address(token.strip(".:")))
        except ValueError:
            continue
    return None


class ArfParser(Parser):
    """RFC 5965 feedback-loop reports (ARF): one spam/fraud/virus complaint per mail, sender by Source-IP."""

    name: ClassVar[str] = "arf"
    priority: ClassVar[int] = 20

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        #: derive the sender from the embedded Received chain when Source-IP is missing
        derive_source_ip: bool = True

    def recognises(self, report: Report) -> bool:
        if report.message is None:
            return False
        msg = find_arf(report.message)
        if msg is None:
            return False
        fields = feedback_fields(msg)
        return fields is None or (mime.header(fields, "Feedback-Type") or "").strip().lower() != "xarf"

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        outer = report.message
        if outer is None:
            raise ParseError(
                "input is not an e-mail message; an ARF report is a multipart/report mail", parser=self.name
            )
        msg = find_arf(outer) or mime.signed_content(outer)
        fields = feedback_fields(msg)
        if fields is None:
            raise ParseError(
                "mail has no message/feedback-report part; it is not an ARF report or was truncated",
                parser=self.name,
            )
        feedback_type = (mime.header(fields, "Feedback-Type") or "").strip().lower()
        if not feedback_type:
            raise ParseError("ARF report has no Feedback-Type field (RFC 5965 §3.1 requires it)", parser=self.name)
        kind, confidence = FEEDBACK_KINDS.get(feedback_type, ("other", 0.3))
        original = mime.embedded_message(msg)
        issues: list[ParseIssue] = []

        source_ip = first_ip(mime.header(fields, "Source-IP"))
        derived = False
        extra: dict[str, Any] = {"feedback_type": feedback_type}
        if source_ip is None and mime.header(fields, "Source-IP"):
            issues.append(ParseIssue(f"Source-IP {mime.header(fields, 'Source-IP')!r} is not an IP address"))
        if source_ip is None and original is not None and self.params.derive_source_ip:  # type: ignore[attr-defined]
            hop = mime.first_external_hop(original)
            if hop is not None and hop.ip:
                source_ip, derived = hop.ip, True
                extra["derived_from_hop"] = hop.raw[:500]

        when = self._time(fields, original, outer, issues)
        if when is None:
            raise ParseError(
                "ARF report has no readable Arrival-Date, Received-Date or Date; cannot place the event in time",
                parser=self.name,
            )

        for name, key in (
            ("User-Agent", "user_agent"),
            ("Version", "arf_version"),
            ("Original-Mail-From", "original_mail_from"),
            ("Original-Envelope-Id", "original_envelope_id"),
            ("Reporting-MTA", "reporting_mta"),
            ("Incidents", "incidents"),
            ("Authentication-Results", "authentication_results"),
            ("Abuse-Type", "abuse_type"),
        ):
            value = mime.header(fields, name)
            if value:
                extra[key] = value
        for name, key in (
            ("Original-Rcpt-To", "original_rcpt_to"),
            ("Reported-Domain", "reported_domains"),
            ("Reported-URI", "reported_uris"),
            ("Redacted-Address", "redacted_addresses"),
        ):
            values = [re.sub(r"\s+", " ", str(v)).strip() for v in fields.get_all(name, failobj=[]) or []]
            if values:
                extra[key] = values
        if original is not None:
            for name, key in (("Message-ID", "original_message_id"), ("Subject", "original_subject")):
                value = mime.header(original, name)
                if value:
                    extra[key] = value[:500]
            hops = mime.received_hops(original)
            if hops:
                extra["received_chain"] = [h.raw[:500] for h in hops[:_MAX_HOPS]]
            extra["evidence_headers"] = True
        message_id = mime.header(outer, "Message-ID")
        if message_id:
            extra["message_id"] = message_id

        if source_ip is None:
            raise ParseError(
                "ARF report names no Source-IP and no external Received hop was found in the embedded message",
                parser=self.name,
            )
        reporter = mime.sender_address(msg) or mime.sender_address(outer)
        if msg is not outer and mime.sender_address(msg):
            extra["forwarded_by"] = mime.sender_address(outer)
        fqdn = (extra.get("reported_domains") or [None])[0]
        uri = (extra.get("reported_uris") or [None])[0]
        yield from issues
        yield Event.create(
            kind=kind,
            time=when,
            feed=self.name,
            reporter=reporter,
            source_ip=source_ip,
            ip_derived=derived,
            source_fqdn=fqdn,
            source_url=uri,
            confidence=confidence * (0.8 if derived else 1.0),
            description=f"ARF feedback report ({feedback_type}) from {reporter or 'unknown reporter'}",
            extra=extra,
        )

    @staticmethod
    def _time(fields: Message, original: Message | None, outer: Message, issues: list[ParseIssue]) -> datetime | None:
        for name in ("Arrival-Date", "Received-Date"):
            value = mime.header(fields, name)
            if value:
                when = mime.parse_mail_date(value)
                if when is not None:
                    return when
                issues.append(ParseIssue(f"{name} {value!r} is not a readable date"))
        for msg in (original, outer):
            if msg is not None:
                when = mime.parse_mail_date(mime.header(msg, "Date"))
                if when is not None:
                    return when
        return None
