"""SpamCop reports (``[SpamCop (192.0.2.1) id:6301094139]``): spam sent from, or advertising a site on, our space.

The reported address is in the subject ``[SpamCop (IP) id:N]`` and in the body line ``Email from IP / date``;
spamvertised sites are reported as ``[SpamCop (http://...) id:N]`` with ``Spamvertised web site: URL`` lines.
Every other address in the body (the quoted spam's ``Received`` chain, the victim's relays) is evidence, not the
subject: the naive "all IPs in the body" approach reports the victim's own relays.

One Event per reported item: the source IP (kind ``spam``), or each spamvertised URL (kind ``spam``, with the
URL; the address SpamCop resolved it to when given). ``id`` is the external report id.

False positives: SpamCop users sometimes report legitimate newsletters; the report is evidence of a complaint,
not proof of spam.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any, ClassVar

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report
from abusedesk.parsers.freetext import split_url

_SUBJECT = re.compile(r"\[SpamCop \((?P<item>[^)\s]+)\) id:(?P<id>\d+)\]", re.IGNORECASE)
_EMAIL_FROM = re.compile(r"^\s*Email from (?P<ip>[0-9A-Fa-f:.]+) / (?P<date>.+?)\s*$", re.MULTILINE)
_SPAMVERTISED = re.compile(r"^\s*Spamvertised web site:\s*(?P<url>\S+)", re.MULTILINE | re.IGNORECASE)
_RESOLVES = re.compile(r"^\s*(?P<url>\S+) is (?P<ip>[0-9A-Fa-f:.]{3,45})\b", re.MULTILINE)
_VERSION = re.compile(r"\[ SpamCop V([\w.]+) \]")
_OFFENDING = re.compile(r"^\[ Offending message \]\s*$", re.MULTILINE)


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


class SpamcopParser(Parser):
    """SpamCop spam reports: the sending IP from the subject and ``Email from`` line; spamvertised URLs."""

    name: ClassVar[str] = "spamcop"
    priority: ClassVar[int] = 30

    def recognises(self, report: Report) -> bool:
        msg = report.message
        if msg is None:
            return False
        if _SUBJECT.search(mime.header(msg, "Subject") or ""):
            return True
        sender = mime.sender_address(msg) or ""
        return sender.endswith("@reports.spamcop.net") or bool(_VERSION.search(report.text[:8192]))

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        msg = report.message
        if msg is None:
            raise ParseError("input is not an e-mail message; SpamCop reports come as mail", parser=self.name)
        subject = mime.header(msg, "Subject") or ""
        text = mime.strip_inline_pgp(mime.body_text(mime.signed_content(msg)))
        head = _OFFENDING.split(text, maxsplit=1)[0]  # the report part, before the quoted spam
        m_subject = _SUBJECT.search(subject)
        report_id = m_subject.group("id") if m_subject else None
        if report_id is None:
            sender = mime.sender_address(msg) or ""
            report_id = sender.split("@")[0] if sender.endswith("@reports.spamcop.net") else None
        m_from = _EMAIL_FROM.search(head)
        when = mime.parse_mail_date(m_from.group("date")) if m_from else None
        if when is None:
            when = mime.parse_mail_date(mime.header(msg, "Date"))
        if when is None:
            raise ParseError("SpamCop report has no readable 'Email from IP / date' line nor Date", parser=self.name)

        extra: dict[str, Any] = {"spamcop_subject": subject[:300]}
        m_version = _VERSION.search(head)
        if m_version:
            extra["spamcop_version"] = m_version.group(1)
        offending = _OFFENDING.split(text, maxsplit=1)
        if len(offending) == 2:
            quoted = mime.parse_message(offending[1].lstrip("\n").encode("utf-8", "replace"))
            hops = mime.received_hops(quoted)
            if hops:
                extra["received_chain"] = [h.raw[:500] for h in hops[:25]]
            if mime.header(quoted, "Message-ID"):
                extra["original_message_id"] = mime.header(quoted, "Message-ID")
        reporter = mime.sender_address(msg)

        subject_item = m_subject.group("item") if m_subject else None
        source_ip = _ip(m_from.group("ip")) if m_from else None
        subject_ip = _ip(subject_item) if subject_item else None
        if subject_ip and source_ip and subject_ip != source_ip:
            yield ParseIssue(
                f"subject names {subject_ip} but the 'Email from' line names {source_ip}; using the latter"
            )
        source_ip = source_ip or subject_ip

        produced = 0
        if source_ip:
            produced += 1
            yield Event.create(
                kind="spam",
                time=when,
                feed=self.name,
                reporter=reporter,
                report_id=report_id,
                source_ip=source_ip,
                confidence=0.85,
                description=f"SpamCop report {report_id}: spam sent from {source_ip}",
                extra=dict(extra),
            )
        urls = [m.group("url") for m in _SPAMVERTISED.finditer(head)]
        if subject_item and subject_ip is None and "://" in subject_item:
            urls.insert(0, subject_item)
        resolved = {m.group("url").rstrip(":"): _ip(m.group("ip")) for m in _RESOLVES.finditer(head)}
        seen: set[str] = set()
        for raw_url in urls:
            hit = split_url(raw_url)
            if hit is None or hit.url in seen:
                continue
            seen.add(hit.url)
            produced += 1
            yield Event.create(
                kind="spam",
                time=when,
                feed=self.name,
                reporter=reporter,
                report_id=report_id,
                source_url=hit.url,
                source_fqdn=hit.host,
                source_ip=hit.ip or resolved.get(raw_url) or resolved.get(hit.url),
                source_port=hit.port,
                confidence=0.75,
                description=f"SpamCop report {report_id}: site advertised in spam",
                extra={**extra, "spamvertised": True},
            )
        if not produced:
            raise ParseError(
                "SpamCop report names no source IP (subject '[SpamCop (IP) id:N]' or 'Email from' line) and no "
                "spamvertised site; the format may have changed",
                parser=self.name,
            )
