"""URL takedown reports in vendor text formats: Google Safe Browsing, Netcraft plain text, Lexsi, Clean-MX.

* Google Safe Browsing network-administrator reports: ``<url_info url="..." ip="..."/>`` items in ``<list>``
  blocks (type 0: malware distribution; type 1: compromised/hacked hosting, often a control-panel URL on a
  non-standard port, sometimes an unbracketed IPv6 literal with the port glued on).
* Netcraft plain-text takedown mails (no XARF attachment): ``Issue N: <attack> at <target>``; the defanged
  URLs (``hxxp://example[.]com/ [192.0.2.1]``) or the ``Date / Source IP / Target IP`` table.
* Lexsi CERT phishing notices: ``Site concerne : URL`` and ``Adresse IP : IP``.
* Clean-MX virus-site notices: the ``|date |id |virusname |ip |domain |Url|`` table.

One Event per reported URL (or per source IP for Netcraft's attack tables, with first/last time and count).
URLs keep their port and IPv6 literals are bracketed. False positives: a URL can live on a shared host or CDN;
the IP the reporter resolved is kept, but attribution should check it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from html import unescape
from typing import Any, ClassVar

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report
from abusedesk.parsers.freetext import _valid_ip, classify, find_times, find_urls, refang, split_url

_GSB_ITEM = re.compile(r"<url_info\s+([^>]*?)/?>", re.IGNORECASE)
_GSB_LIST = re.compile(r"<list\s+type=\"(\d+)\"\s*>(.*?)</list>", re.IGNORECASE | re.DOTALL)
_GSB_ATTR = re.compile(r"(\w+)=\"([^\"]*)\"")
_GSB_ROOT = re.compile(r"<notification_message\b([^>]*)>", re.IGNORECASE)
GSB_LIST_KINDS = {"0": ("malware", 0.8), "1": ("compromised-host", 0.7)}

_NETCRAFT_ISSUE = re.compile(r"Issue(?: Number| Nummer)?[:\s]+(\d{4,})", re.IGNORECASE)
_NETCRAFT_ROW = re.compile(
    r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\s+([0-9A-Fa-f:.]{3,45})(?:\s+(\S+))?\s*$", re.MULTILINE
)
_DEFANGED_WITH_IP = re.compile(r"(h[xt]{2}ps?://\S+)\s+\[([0-9A-Fa-f:.]{3,45})\]", re.IGNORECASE)

_LEXSI_SITE = re.compile(r"Site concern[eé]\s*:\s*(\S+)", re.IGNORECASE)
_LEXSI_IP = re.compile(r"Adresse IP\s*:\s*([0-9A-Fa-f:.]{3,45})", re.IGNORECASE)

_CLEANMX_ROW = re.compile(
    r"^\|\s*(\d{4}-\d{2}-\d{2} [^|]*?)\s*\|\s*(\d+)\s*\|([^|]*)\|([^|]*)\|([^|]*)\|\s*(\S+)", re.MULTILINE
)


def _text(msg: Message) -> str:
    inner = mime.signed_content(msg)
    return mime.strip_inline_pgp(mime.body_text(inner))


def _raw_text(msg: Message) -> str:
    """Body text with markup kept (Google's report is XML in a text/plain part, sometimes in text/html)."""
    out = []
    for part in mime.walk(mime.signed_content(msg)):
        if part.get_content_maintype() == "text":
            out.append(mime.part_text(part))
    return "\n".join(out)


def _format(msg: Message, raw: str) -> str | None:
    sender = mime.sender_address(msg) or ""
    subject = mime.header(msg, "Subject") or ""
    if _GSB_ROOT.search(raw) and _GSB_ITEM.search(raw):
        return "google_safe_browsing"
    if sender.endswith("netcraft.com") or "incident.netcraft.com" in raw:
        return "netcraft"
    if sender.endswith("lexsi.com") or (_LEXSI_SITE.search(raw) and _LEXSI_IP.search(raw)):
        return "lexsi"
    if subject.startswith("[clean-mx-") or ("|virusname" in raw and _CLEANMX_ROW.search(raw)):
        return "cleanmx"
    return None


class UrlReportParser(Parser):
    """Phishing/malware URL reports from Google Safe Browsing, Netcraft (plain text), Lexsi and Clean-MX."""

    name: ClassVar[str] = "urlreport"
    priority: ClassVar[int] = 40

    def recognises(self, report: Report) -> bool:
        msg = report.message
        return msg is not None and _format(msg, _raw_text(msg)) is not None

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        msg = report.message
        if msg is None:
            raise ParseError("input is not an e-mail message; URL reports come as mail", parser=self.name)
        raw = _raw_text(msg)
        fmt = _format(msg, raw)
        if fmt is None:
            raise ParseError("mail is not a Google, Netcraft, Lexsi or Clean-MX URL report", parser=self.name)
        mail_date = mime.parse_mail_date(mime.header(msg, "Date")) or report.raw.received_at
        base: dict[str, Any] = {"report_format": fmt}
        if mime.header(msg, "Message-ID"):
            base["message_id"] = mime.header(msg, "Message-ID")
        reporter = mime.sender_address(msg)
        handler = {
            "google_safe_browsing": self._google,
            "netcraft": self._netcraft,
            "lexsi": self._lexsi,
            "cleanmx": self._cleanmx,
        }[fmt]
        produced = 0
        for item in handler(msg, raw, mail_date, reporter, base):
            produced += isinstance(item, Event)
            yield item
        if not produced:
            raise ParseError(f"{fmt} report names no URL or address; the format may have changed", parser=self.name)

    def _url_event(
        self,
        *,
        kind: str,
        url: str,
        ip: str | None,
        when: datetime,
        reporter: str | None,
        report_id: str | None,
        confidence: float,
        extra: dict[str, Any],
    ) -> Iterator[Event | ParseIssue]:
        hit = split_url(url)
        if hit is None:
            yield ParseIssue(f"URL {url[:200]!r} cannot be read")
            return
        given_ip = _valid_ip(ip) if ip else None
        if ip and given_ip is None:
            yield ParseIssue(f"address {ip!r} given for {hit.url} is not an IP address")
        yield Event.create(
            kind=kind,
            time=when,
            feed=self.name,
            reporter=reporter,
            report_id=report_id,
            source_url=hit.url,
            source_fqdn=hit.host,
            source_ip=hit.ip or given_ip,
            source_port=hit.port,
            confidence=confidence,
            description=f"{kind} URL reported by {reporter or 'unknown'}",
            extra=extra,
        )

    def _google(
        self, msg: Message, raw: str, when: datetime, reporter: str | None, base: dict[str, Any]
    ) -> Iterator[Event | ParseIssue]:
        root = dict(_GSB_ATTR.findall(_GSB_ROOT.search(raw).group(1)))  # type: ignore[union-attr]
        extra = {**base, **{f"gsb_{k}": v for k, v in root.items()}}
        lists = _GSB_LIST.findall(raw) or [("", raw)]
        for list_type, block in lists:
            kind, confidence = GSB_LIST_KINDS.get(list_type, ("malware", 0.5))
            for m in _GSB_ITEM.finditer(block):
                attrs = {k: unescape(v) for k, v in _GSB_ATTR.findall(m.group(1))}
                if "url" not in attrs:
                    yield ParseIssue("url_info without a url attribute")
                    continue
                yield from self._url_event(
                    kind=kind,
                    url=attrs["url"],
                    ip=attrs.get("ip"),
                    when=when,
                    reporter=reporter,
                    report_id=None,
                    confidence=confidence,
                    extra={**extra, "gsb_list_type": list_type},
                )

    def _netcraft(
        self, msg: Message, raw: str, when: datetime, reporter: str | None, base: dict[str, Any]
    ) -> Iterator[Event | ParseIssue]:
        text = _text(msg)
        subject = mime.header(msg, "Subject") or ""
        m_issue = _NETCRAFT_ISSUE.search(subject) or _NETCRAFT_ISSUE.search(text)
        issue = m_issue.group(1) if m_issue else None
        kind, confidence, hits = classify(subject + "\n" + text[:4000])
        extra = {**base, "netcraft_issue": issue, "classification_keywords": hits}
        incident = re.search(r"https://incident\.netcraft\.com/\w+/?", text)
        if incident:
            extra["incident_url"] = incident.group(0)
        rows: dict[str, list[tuple[datetime, str | None]]] = {}
        for m in _NETCRAFT_ROW.finditer(text):
            ip = _valid_ip(m.group(2))
            if ip is None:
                continue
            t = datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC)  # Netcraft tables are in UTC
            rows.setdefault(ip, []).append((t, m.group(3)))
        for ip, seen in rows.items():
            times = sorted(t for t, _ in seen)
            yield Event.create(
                kind=kind,
                time=times[0],
                feed=self.name,
                reporter=reporter,
                report_id=issue,
                source_ip=ip,
                confidence=confidence,
                description=subject[:300] or None,
                extra={
                    **extra,
                    "first_seen": times[0].isoformat(),
                    "last_seen": times[-1].isoformat(),
                    "count": len(times),
                    "targets": sorted({t for _, t in seen if t}),
                },
            )
        if rows:
            return
        urls = [(m.group(1), m.group(2)) for m in _DEFANGED_WITH_IP.finditer(text)]
        if not urls:
            urls = [(u.url, None) for u in find_urls(refang(text)) if u.host is None or "netcraft" not in u.host]
        done: set[str] = set()
        for url, ip in urls:
            if url in done:
                continue
            done.add(url)
            yield from self._url_event(
                kind=kind,
                url=url,
                ip=ip,
                when=when,
                reporter=reporter,
                report_id=issue,
                confidence=confidence,
                extra=extra,
            )

    def _lexsi(
        self, msg: Message, raw: str, when: datetime, reporter: str | None, base: dict[str, Any]
    ) -> Iterator[Event | ParseIssue]:
        text = _text(msg)
        subject = mime.header(msg, "Subject") or ""
        sites = [m.group(1) for m in _LEXSI_SITE.finditer(text)]
        if not sites:
            sites = [u.url for u in find_urls(subject)]
        ips = [m.group(1) for m in _LEXSI_IP.finditer(text)]
        kind = "phishing" if re.search(r"phish|fraud", subject + text, re.IGNORECASE) else classify(text)[0]
        for i, site in enumerate(sites):
            yield from self._url_event(
                kind=kind,
                url=site,
                ip=ips[i] if i < len(ips) else (ips[0] if ips else None),
                when=when,
                reporter=reporter,
                report_id=None,
                confidence=0.85,
                extra=dict(base),
            )

    def _cleanmx(
        self, msg: Message, raw: str, when: datetime, reporter: str | None, base: dict[str, Any]
    ) -> Iterator[Event | ParseIssue]:
        text = _text(msg)
        for m in _CLEANMX_ROW.finditer(text):
            date, row_id, virus, ip, domain, url = (g.strip() for g in m.groups())
            times = find_times(date)
            yield from self._url_event(
                kind="malware",
                url=url,
                ip=ip or None,
                when=times[0][0] if times else when,
                reporter=reporter,
                report_id=row_id,
                confidence=0.8,
                extra={**base, "virus_name": virus, "domain": domain},
            )
