"""Project Honey Pot monitor reports: per-category lists of IPs seen by its honeypots.

Sections ``IPs Engaged In Harvesting / Email Spamming / Dictionary Attacks / Comment Spamming On Your Network``
and ``Other Potentially Suspicious IPs``; each IP may carry a letter (H, S, D, C, R) and, in the paid report,
one or more ``- Mon, 21 Sep 2015 11:00AM PDT`` timestamps (spam ones also ``Subject:`` and ``From:``).

One Event per (IP, category): the first timestamp is the event time (the mail's Date for the free report,
which has none), all timestamps and spam subjects go to ``extra``. Kinds: harvesting → ``crawling``, email
spamming / dictionary attacks / comment spamming → ``spam``, suspicious → ``threat-intel`` (low confidence).

False positives: honeypot hits from shared NAT and proxies; the monitor report covers a date range, so the free
report's time is only the report's date.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report
from abusedesk.parsers.freetext import _valid_ip, find_times

#: section heading words → (category letter, kind, confidence)
SECTIONS: dict[str, tuple[str, str, float]] = {
    "harvesting": ("H", "crawling", 0.7),
    "email spamming": ("S", "spam", 0.8),
    "dictionary attacks": ("D", "spam", 0.7),
    "comment spamming": ("C", "spam", 0.7),
    "other potentially suspicious": ("R", "threat-intel", 0.4),
}
_HEADING = re.compile(
    r"^(?:IPs Engaged In (?P<what>Harvesting|Email Spamming|Dictionary Attacks|Comment Spamming) On Your Network|"
    r"(?P<other>Other Potentially Suspicious) IPs On Your Network):\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_IP_LINE = re.compile(r"^\s*([0-9A-Fa-f:.]{3,45})(?:\s+\(([A-Z]+)\))?\s*$")
_DETAIL = re.compile(r"^\s+-\s+(Subject|From):\s*(.*)$")
_STAMP = re.compile(r"^\s+-\s+(.+)$")
_RANGE = re.compile(r"Report Date Range:\s*(\S+)\s*-\s*(\S+)")


class HoneypotParser(Parser):
    """Project Honey Pot monitor reports: harvesting, spam, dictionary and comment-spam IPs with times."""

    name: ClassVar[str] = "projecthoneypot"
    priority: ClassVar[int] = 35

    def recognises(self, report: Report) -> bool:
        msg = report.message
        if msg is None:
            return False
        subject = mime.header(msg, "Subject") or ""
        return "Project Honey Pot" in subject and bool(_HEADING.search(mime.body_text(msg)))

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        msg = report.message
        if msg is None:
            raise ParseError("input is not an e-mail message; Project Honey Pot reports come as mail", parser=self.name)
        text = mime.body_text(mime.signed_content(msg))
        headings = list(_HEADING.finditer(text))
        if not headings:
            raise ParseError(
                "no 'IPs Engaged In ...' section found; the report format may have changed", parser=self.name
            )
        mail_date = mime.parse_mail_date(mime.header(msg, "Date")) or report.raw.received_at
        reporter = mime.sender_address(msg)
        base: dict[str, Any] = {}
        m_range = _RANGE.search(text)
        if m_range:
            base["report_range"] = f"{m_range.group(1)} - {m_range.group(2)}"
        for i, heading in enumerate(headings):
            end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
            block = text[heading.end() : end].split("\n---", 1)[0]
            key = (heading.group("what") or heading.group("other") or "").lower()
            letter, kind, confidence = SECTIONS[key]
            yield from self._section(block, letter, kind, confidence, mail_date, reporter, base, key)

    def _section(
        self,
        block: str,
        letter: str,
        kind: str,
        confidence: float,
        mail_date: Any,
        reporter: str | None,
        base: dict[str, Any],
        key: str,
    ) -> Iterator[Event | ParseIssue]:
        items: list[dict[str, Any]] = []
        for line in block.splitlines():
            if not line.strip() or line.strip().lower() == "none":
                continue
            m_ip = _IP_LINE.match(line)
            if m_ip:
                ip = _valid_ip(m_ip.group(1))
                if ip is None:
                    yield ParseIssue(f"{key}: {m_ip.group(1)!r} is not an IP address")
                    continue
                items.append({"ip": ip, "letter": m_ip.group(2) or letter, "times": [], "subjects": [], "from": []})
                continue
            if not items:
                continue
            m_detail = _DETAIL.match(line)
            if m_detail:
                items[-1]["subjects" if m_detail.group(1) == "Subject" else "from"].append(m_detail.group(2)[:300])
                continue
            m_stamp = _STAMP.match(line)
            if m_stamp:
                found = find_times(m_stamp.group(1))
                if found:
                    items[-1]["times"].append(found[0][0])
                else:
                    yield ParseIssue(f"{key}: time {m_stamp.group(1)!r} for {items[-1]['ip']} is not readable")
        for item in items:
            times = sorted(item["times"])
            extra = {
                **base,
                "honeypot_category": item["letter"],
                "honeypot_section": key,
                "time_source": "report" if times else "mail Date",
            }
            if times:
                extra["seen"] = [t.isoformat() for t in times]
            if item["subjects"]:
                extra["spam_subjects"] = item["subjects"]
            if item["from"]:
                extra["spam_from"] = item["from"]
            yield Event.create(
                kind=kind,
                time=times[0] if times else mail_date,
                feed=self.name,
                reporter=reporter,
                source_ip=item["ip"],
                confidence=confidence,
                description=f"Project Honey Pot: {key} from {item['ip']}",
                extra=extra,
            )
