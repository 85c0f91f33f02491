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
from email import errors
from email.header import Header
from email.message import Message
from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers import fastmime, mime
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
# dotted-quad IPv4 as ipaddress writes it (no leading zeros, each octet <= 255)
_CANONICAL_V4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
_MAX_HOPS = 25
# the parts mime.embedded_message takes for the reported message, and those the fast path reads itself
_ATTACHED_MESSAGE = ("message/rfc822", "message/global")
_ATTACHED_HEADERS = ("text/rfc822-headers", "text/rfc822-header")
_FAST_MESSAGE_PARTS = ("message/feedback-report", *_ATTACHED_MESSAGE)
#: feedback-report fields (lower-case) read into ``extra``: the first value, and every value
_SINGLE_FIELDS = (
    ("user-agent", "user_agent"),
    ("version", "arf_version"),
    ("original-mail-from", "original_mail_from"),
    ("original-envelope-id", "original_envelope_id"),
    ("reporting-mta", "reporting_mta"),
    ("incidents", "incidents"),
    ("authentication-results", "authentication_results"),
    ("abuse-type", "abuse_type"),
)
_LIST_FIELDS = (
    ("original-rcpt-to", "original_rcpt_to"),
    ("reported-domain", "reported_domains"),
    ("reported-uri", "reported_uris"),
    ("redacted-address", "redacted_addresses"),
)


#: transfer encodings that leave a part's text as it is (RFC 2046 §5.2.4 allows only these for message/*)
_IDENTITY_ENCODINGS = ("", "7bit", "8bit", "binary")


def transfer_encoding(value: object) -> str:
    """A Content-Transfer-Encoding value as compared here: blanks and case dropped ('' when absent)."""
    return "" if value is None else str(value).strip().lower()


def _text_as_read(inner: Message) -> str:
    """The text the standard library read as a message (compat32: raw values, line breaks kept) put back together.

    Quoted-printable text has lines of the shape "name: value", which were read as fields up to the first line
    that was not; a blank line between them and the rest is there only if the text had one (else the feed parser
    notes its absence as a defect).
    """
    head = "".join(f"{name}: {value}\n" for name, value in inner.items())
    separated = head and not any(isinstance(d, errors.MissingHeaderBodySeparatorDefect) for d in inner.defects)
    body = inner.get_payload()
    return head + ("\n" if separated else "") + (body if isinstance(body, str) else "")


def feedback_fields(msg: Message) -> Message | None:
    """The ``message/feedback-report`` part's fields as a header-only Message, or None when absent.

    RFC 2046 allows no transfer encoding on a message/* part, but some reporters base64 or quoted-printable
    encode the feedback fields anyway; the standard library then reads the encoded text as the part's message.
    That text is decoded and read as the fields.
    """
    for part in mime.parts(msg):
        if part.get_content_type() != "message/feedback-report":
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            encoding = transfer_encoding(part.get("Content-Transfer-Encoding"))
            if encoding in _IDENTITY_ENCODINGS:
                return payload[0]
            shim = Message()  # get_payload(decode=True) of the standard library, on the text as it arrived
            shim["Content-Transfer-Encoding"] = encoding
            shim.set_payload(_text_as_read(payload[0]))
            return mime.parse_message(mime.part_bytes(shim).lstrip() + b"\n\n")
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
    token: str
    for token in _IP_TOKEN.findall(text or ""):
        token = token.strip(".:")
        if _CANONICAL_V4.fullmatch(token):
            return token  # what str(ipaddress.ip_address(token)) gives, without building the object
        try:
            return str(ipaddress.ip_address(token))
        except ValueError:
            continue
    return None


class ArfView(NamedTuple):
    """The pieces of a feedback report the parser reads: all of them are header fields.

    ``outer`` is the mail as received, ``msg`` the ARF report in it (``outer`` itself unless the report was
    forwarded as an attachment), ``fields`` the ``message/feedback-report`` fields (lower-case name → values, as
    ``get_all`` returns them) and ``original`` the reported message's headers (None when the report carries none).
    Parsed messages (:func:`stdlib_view`) or header blocks read by :func:`fast_view`.
    """

    outer: mime.Headers
    msg: mime.Headers
    fields: dict[str, list[str | Header]]
    original: mime.Headers | None


def field_values(msg: Message) -> dict[str, list[str | Header]]:
    """A message's fields as lower-case name → values in order (what ``get_all`` returns for each name)."""
    out: dict[str, list[str | Header]] = {}
    for key, value in msg.items():
        out.setdefault(key.lower(), []).append(value)
    return out


def fast_view(data: bytes) -> ArfView | None:
    """The common shape of a feedback report read without the standard library's MIME parser; None otherwise.

    The common shape: a flat top-level multipart (not signed, not a digest) with a ``message/feedback-report`` part
    and no other ``message/*`` part than ``message/rfc822`` or ``message/global`` before the parts the parser reads.
    What it gives is what :func:`stdlib_view` finds in the same mail (``tests/parsers/test_arf_fastpath.py`` holds
    the two to the same events); anything else — a forwarded or signed report, a nested multipart, another
    ``message/*`` part, a feedback part with a Content-Type field of its own or a transfer encoding, whatever
    ``fastmime`` declines — gives None, and the caller takes :func:`stdlib_view`.
    """
    if not mime.looks_like_mail(data):
        return None
    top = fastmime.read_multipart(data)
    if top is None or top.content_type in ("multipart/signed", "multipart/digest"):
        return None  # signed: mime.signed_content unwraps it; digest: parts default to message/rfc822
    feedback = attached = None
    # mime.parts walks the parts in order; feedback_fields and embedded_message take the first of their kind, so
    # parts after both do not matter
    for part in top.parts():
        if part is None:
            return None
        ctype = part.content_type
        if ctype.startswith(("multipart/", "message/")):
            if ctype not in _FAST_MESSAGE_PARTS:
                return None  # a walk would descend into it
            if ctype == "message/feedback-report":
                if feedback is not None:
                    # a second feedback part before the evidence: the standard library parses its fields as a
                    # message and walks into it (a Content-Type there can hide a message/rfc822 deeper down)
                    return None
                feedback = part
        if attached is None and (ctype in _ATTACHED_MESSAGE or ctype in _ATTACHED_HEADERS):
            attached = part
        if feedback is not None and attached is not None:
            break
    if feedback is None:
        return None  # a forwarded report (find_arf looks inside attachments) or no report at all
    if transfer_encoding(feedback.headers.get("content-transfer-encoding")) not in _IDENTITY_ENCODINGS:
        return None  # encoded fields: feedback_fields decodes them
    block = feedback.message_headers(many=True)
    if block is None:
        return None
    fields = block.mapping()
    if "content-type" in fields:
        return None  # the standard library would read the fields block as a typed part of its own
    original: mime.Headers | None = None
    if attached is not None:
        if attached.content_type in _ATTACHED_MESSAGE:
            original = attached.message_headers()
            if original is None:
                return None
        else:
            original = _header_part(attached)
    return ArfView(top.headers, top.headers, fields, original)


def report_fast_view(report: Report) -> ArfView | None:
    """:func:`fast_view` of a report, read once per report and kept on it (``Report.view``): the intake asks
    ``recognises`` and then ``parse`` of the same report, and the parser instance is shared by every report."""
    return fast_view(report.data)


def _header_part(part: fastmime.Part) -> mime.Headers:
    """A ``text/rfc822-headers`` part read as mime.embedded_message reads it (transfer encoding undone)."""
    shim = Message()  # get_payload(decode=True) of the standard library, on the part's own fields and payload
    for name, value in part.headers.raw_items():
        shim.set_raw(name, value)
    shim.set_payload(part.payload())
    data = mime.part_bytes(shim).lstrip() + b"\n\n"
    block = fastmime.read_headers(data)
    return block if block is not None else mime.parse_message(data)


def stdlib_view(report: Report) -> ArfView:
    """The report's pieces from the standard library's parse of the mail; raises ParseError when there are none."""
    outer = report.message
    if outer is None:
        raise ParseError("input is not an e-mail message; an ARF report is a multipart/report mail", parser="arf")
    msg = find_arf(outer) or mime.signed_content(outer)
    fields = feedback_fields(msg)
    if fields is None:
        raise ParseError(
            "mail has no message/feedback-report part; it is not an ARF report or was truncated", parser="arf"
        )
    return ArfView(outer, msg, field_values(fields), mime.embedded_message(msg))


def _first(fields: dict[str, list[str | Header]], name: str) -> str | None:
    """``mime.header`` for a fields mapping: the first value, encoded words decoded, folding undone."""
    values = fields.get(name)
    return mime.decode_header_value(values[0]) if values else None


class ArfParser(Parser):
    """RFC 5965 feedback-loop reports (ARF): one spam/fraud/virus complaint per mail, sender by Source-IP."""

    name: ClassVar[str] = "arf"
    priority: ClassVar[int] = 20

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        #: derive the sender from the embedded Received chain when Source-IP is missing
        derive_source_ip: bool = True

    def recognises(self, report: Report) -> bool:
        view = report.view(report_fast_view)
        if view is None:
            if report.message is None:
                return False
            msg = find_arf(report.message)
            if msg is None:
                return False
            found = feedback_fields(msg)
            if found is None:
                return True
            fields = field_values(found)
        else:
            fields = view.fields
        return (_first(fields, "feedback-type") or "").strip().lower() != "xarf"

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        # the fast path reads the common shape of a report straight from the bytes (~4x quicker than through the
        # standard library, issue 4); anything else, and every report it cannot read for certain, takes the
        # standard library's path. Both give the same events (tests/parsers/test_arf_fastpath.py).
        yield from self.events(report.view(report_fast_view) or stdlib_view(report))

    def events(self, view: ArfView) -> Iterator[Event | ParseIssue]:
        """The event (and issues) of one report, from its pieces however they were read."""
        outer, msg, fields, original = view
        feedback_type = (_first(fields, "feedback-type") or "").strip().lower()
        if not feedback_type:
            raise ParseError("ARF report has no Feedback-Type field (RFC 5965 §3.1 requires it)", parser=self.name)
        kind, confidence = FEEDBACK_KINDS.get(feedback_type, ("other", 0.3))
        issues: list[ParseIssue] = []

        stated = _first(fields, "source-ip")
        source_ip = first_ip(stated)
        derived = False
        extra: dict[str, Any] = {"feedback_type": feedback_type}
        if source_ip is None and stated:
            issues.append(ParseIssue(f"Source-IP {stated!r} is not an IP address"))
        if source_ip is None and original is not None and self.params.derive_source_ip:  # type: ignore[attr-defined]
            hop = mime.first_external_hop(original)
            if hop is not None and hop.ip:
                source_ip, derived = hop.ip, True
                extra["derived_from_hop"] = hop.raw[:500]

        when = None
        for name, label in (("arrival-date", "Arrival-Date"), ("received-date", "Received-Date")):
            value = _first(fields, name)
            if value:
                when = mime.parse_mail_date(value)
                if when is not None:
                    break
                issues.append(ParseIssue(f"{label} {value!r} is not a readable date"))
        if when is None:
            for headers in (original, outer):
                if headers is not None:
                    when = mime.parse_mail_date(mime.header(headers, "Date"))
                    if when is not None:
                        break
            else:
                raise ParseError(
                    "ARF report has no readable Arrival-Date, Received-Date or Date; cannot place the event in time",
                    parser=self.name,
                )

        for name, key in _SINGLE_FIELDS:
            values = fields.get(name)
            if values:
                value = mime.decode_header_value(values[0])
                if value:
                    extra[key] = value
        for name, key in _LIST_FIELDS:
            values = fields.get(name)
            if values:
                # " ".join(s.split()) is re.sub(r"\s+", " ", s).strip(): both split on str.isspace() white space
                extra[key] = [" ".join(str(v).split()) for v in values]
        if original is not None:
            for name, key in (("Message-ID", "original_message_id"), ("Subject", "original_subject")):
                value = mime.header(original, name)
                if value:
                    extra[key] = value[:500]
            chain = mime.received_lines(original)
            if chain:
                extra["received_chain"] = [line[:500] for line in chain[:_MAX_HOPS]]
            extra["evidence_headers"] = True
        message_id = mime.header(outer, "Message-ID")
        if message_id:
            extra["message_id"] = message_id

        if source_ip is None:
            raise ParseError(
                "ARF report names no Source-IP and no external Received hop was found in the embedded message",
                parser=self.name,
            )
        reporter = mime.sender_address(msg)
        if msg is not outer:
            if reporter:
                extra["forwarded_by"] = mime.sender_address(outer)
            else:
                reporter = mime.sender_address(outer)
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
