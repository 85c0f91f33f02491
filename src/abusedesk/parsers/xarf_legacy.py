"""X-ARF 0.1/0.2: abuse mails whose attachment ``report.txt`` is a YAML document (blocklist.de, clean-mx,
Netcraft 2015, WebIron, cyscon C-SIRT).

Each YAML report in the mail is one Event: ``Source`` by ``Source-Type`` (ip-address/ipv4/ipv6 or uri), ``Date``,
``Category`` × ``Report-Type`` → kind, ``Port``, ``Service``, ``Report-ID``. A second attachment (``logfile.log``)
is evidence and is kept in ``extra``. YAML is read with a safe loader that turns unknown tags such as WebIron's
``!!python/unicode`` into plain values (``yaml.load`` is never used); a report that is not valid YAML at all is
read line by line as ``Key: value``.

False positives: blocklist.de relays fail2ban reports from its users; a shared NAT or Tor exit shows up as the
attacker. Masked sources (``122.XXX.XXX.XXX``) fall back to the report's ``Download-Link``/``Domain``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import yaml

from abusedesk.domain.errors import ParseError
from abusedesk.domain.numbers import port_number
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report

_MAX_REPORT_BYTES = 256 * 1024
_EVIDENCE_CHARS = 4000

#: (category, report type) → kind; "*" matches any category
XARF_LEGACY_KINDS: dict[tuple[str, str], str] = {
    ("*", "login-attack"): "brute-force",
    ("*", "bruteforce"): "brute-force",
    ("*", "regbot"): "spam",
    ("*", "spam"): "spam",
    ("*", "web-attack"): "sql-injection",
    ("*", "malware-attack"): "malware",
    ("*", "malware"): "malware",
    ("*", "phishing"): "phishing",
    ("*", "port-scan"): "scan",
    ("*", "portscan"): "scan",
    ("*", "ddos"): "dos",
    ("*", "dos"): "dos",
    ("*", "harvesting"): "crawling",
    ("*", "badbot"): "crawling",
    ("*", "open-proxy"): "open-proxy",
    ("*", "open-relay"): "open-relay",
    ("*", "botnet"): "botnet",
    ("*", "c&c"): "botnet",
    ("*", "defacement"): "intrusion",
    ("*", "copyright"): "copyright",
    ("fraud", "*"): "fraud",
}
#: kinds where the reported source hosts something (its Port is the source's); otherwise Port is the victim's
_HOSTING_KINDS = frozenset({"phishing", "malware", "fraud", "botnet", "copyright"})


class _TolerantLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader that reads any unknown tag (``!!python/unicode`` ...) as the plain value it wraps.

    On libyaml's C parser where PyYAML has it (a report's YAML read ~10x faster than by the pure-Python scanner:
    the X-ARF sniffer was a third of a complaint mail's parse time, issue 9)."""


def _construct_unknown(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return None


_TolerantLoader.add_multi_constructor("!", _construct_unknown)
_TolerantLoader.add_multi_constructor("tag:yaml.org,2002:", _construct_unknown)
# timestamps stay strings: we parse dates ourselves, with zones
_TolerantLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)\s*:\s*(.*)$")


def load_report(text: str) -> dict[str, str]:
    """An X-ARF YAML report as ``{lower-case-key: value}``; falls back to ``Key: value`` lines for broken YAML."""
    data: Any = None
    try:
        docs = [d for d in yaml.load_all(text, Loader=_TolerantLoader) if d is not None]
        data = docs[0] if docs else None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError):  # deep nesting, odd scalars: read as lines
        data = None
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if value is None or isinstance(value, dict | list):
                continue
            out[str(key).strip().lower().replace("_", "-")] = str(value).strip()
        return out
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m and m.group(2).strip():
            out[m.group(1).lower().replace("_", "-")] = m.group(2).strip().strip("'\"")
    return out


def is_xarf_report(fields: dict[str, str]) -> bool:
    has_type = "report-type" in fields or "category" in fields or "signature" in fields
    has_source = "source" in fields or "ip" in fields or "uri" in fields
    return has_type and has_source


def _report_parts(msg: Any) -> Iterator[tuple[str, str]]:
    """(file name, text) of every part that looks like an X-ARF YAML report."""
    for part in mime.walk(msg):
        name = part.get_filename() or ""
        ctype = part.get_content_type()
        if ctype.startswith("multipart/") or ctype in ("text/html", "message/rfc822"):
            continue
        data = mime.part_bytes(part)[:_MAX_REPORT_BYTES]
        if not name and not data.lstrip().startswith(b"---"):
            continue
        text = mime.decode_bytes(data, part.get_content_charset())
        if "report" in name.lower() or text.lstrip().startswith("---"):
            yield name, text


def _xarf_reports(report: Report) -> list[tuple[str, dict[str, str]]]:
    """(file name, fields) of each X-ARF report in a mail: read once for sniffing and parsing (``Report.view``)."""
    if report.message is None:
        return []
    loaded = [(name, load_report(text)) for name, text in _report_parts(mime.signed_content(report.message))]
    return [(name, fields) for name, fields in loaded if is_xarf_report(fields)]


class XarfLegacyParser(Parser):
    """X-ARF 0.1/0.2 YAML reports (``report.txt``), one Event per report attachment."""

    name: ClassVar[str] = "xarf_legacy"
    priority: ClassVar[int] = 15

    def recognises(self, report: Report) -> bool:
        if not report.is_mail:
            return False  # only mail holds these reports: decided without reading the whole input (issue 9 item 3)
        return bool(report.view(_xarf_reports))

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        if report.message is None:
            raise ParseError("input is not an e-mail message; X-ARF reports come as mail", parser=self.name)
        outer = report.message
        msg = mime.signed_content(outer)
        evidence = self._evidence(msg)
        reports = report.view(_xarf_reports)
        if not reports:
            raise ParseError(
                "mail has no X-ARF report attachment (YAML with Report-Type/Category and Source); truncated?",
                parser=self.name,
            )
        mail_date = mime.parse_mail_date(mime.header(outer, "Date"))
        sender = mime.sender_address(outer)
        produced = 0
        for name, fields in reports:
            for item in self._event(name, fields, mail_date, sender, evidence, outer):
                produced += isinstance(item, Event)
                yield item
        if not produced:
            raise ParseError("no X-ARF report in this mail names a usable source", parser=self.name)

    @staticmethod
    def _evidence(msg: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in mime.walk(msg):
            name = part.get_filename() or ""
            if name and ("log" in name.lower() or name.lower().endswith(".log")):
                out[name] = mime.part_text(part)[:_EVIDENCE_CHARS]
        return out

    def _event(
        self,
        name: str,
        f: dict[str, str],
        mail_date: datetime | None,
        sender: str | None,
        evidence: dict[str, str],
        outer: Any,
    ) -> Iterator[Event | ParseIssue]:
        where = name or "report"
        category = f.get("category", "").lower()
        rtype = f.get("report-type", "").lower()
        kind = XARF_LEGACY_KINDS.get(("*", rtype)) or XARF_LEGACY_KINDS.get((category, "*"))
        if kind is None and "signature" in f:  # cyscon C-SIRT reports: kind from the signature / file name
            hint = (f["signature"] + " " + name).upper()
            kind = "malware" if "MALWARE" in hint else "phishing" if "PHISH" in hint else "intrusion"
        confidence = 0.9 if kind else 0.4
        kind = kind or "other"

        source = f.get("source") or f.get("ip") or ""
        stype = f.get("source-type", "").lower()
        source_ip = source_url = None
        if source and (stype in ("ip-address", "ipv4", "ipv6", "ip") or (not stype and _is_ip(source))):
            if _is_ip(source):
                source_ip = str(ipaddress.ip_address(source))
            else:
                yield ParseIssue(f"{where}: Source {source!r} is not an IP address (masked?)")
        elif (source and stype in ("uri", "url")) or source.startswith(("http://", "https://")):
            source_url = source
        elif source:
            yield ParseIssue(f"{where}: Source-Type {stype!r} is not known; Source {source!r} kept in extra")
        if f.get("ip") and _is_ip(f["ip"]):
            source_ip = source_ip or str(ipaddress.ip_address(f["ip"]))
        # Download-Link is the reported host's file; Targeted-URL (WebIron) is the victim's page, kept in extra
        source_url = source_url or f.get("uri") or f.get("download-link") or None
        fqdn = f.get("domain") or (urlsplit(source_url).hostname if source_url else None)
        if not (source_ip or source_url or fqdn):
            yield ParseIssue(f"{where}: no usable source (Source {source!r})")
            return

        when = mime.parse_mail_date(f.get("date") or f.get("first-seen"))
        if when is None:
            if f.get("date"):
                yield ParseIssue(f"{where}: Date {f['date']!r} is not readable; using the mail's Date")
            when = mail_date
        if when is None:
            yield ParseIssue(f"{where}: no readable Date in the report or the mail")
            return

        port = _port(f.get("port") or f.get("download-port"))
        extra: dict[str, Any] = {
            "xarf_version": f.get("version") or "0.1",
            "xarf_category": category or None,
            "xarf_report_type": rtype or None,
            "report_file": name or None,
        }
        for key in (
            "service",
            "schema-url",
            "user-agent",
            "signature",
            "tlp",
            "targeted-range",
            "targeted-url",
            "feedback-url",
        ):
            if f.get(key):
                extra[key.replace("-", "_")] = f[key]
        if source and not (source_ip or source == source_url):
            extra["source_as_reported"] = source
        if evidence:
            extra["evidence"] = evidence
        message_id = mime.header(outer, "Message-ID")
        if message_id:
            extra["message_id"] = message_id
        reporter = f.get("reported-from") or sender
        yield Event.create(
            kind=kind,
            time=when,
            feed=self.name,
            reporter=reporter,
            report_id=f.get("report-id"),
            source_ip=source_ip,
            source_url=source_url,
            source_fqdn=fqdn,
            source_port=port if kind in _HOSTING_KINDS else None,
            destination_port=None if kind in _HOSTING_KINDS else port,
            confidence=confidence,
            description=f"X-ARF {category or '?'}/{rtype or '?'} report from {reporter or 'unknown reporter'}",
            extra={k: v for k, v in extra.items() if v is not None},
        )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


def _port(text: str | None) -> int | None:
    return port_number(text.strip() if text else None)
