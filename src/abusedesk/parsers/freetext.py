"""Free-text complaints: a person or a small provider writes "your server 192.0.2.7 attacked us".

The last resort for mail (and plain text) no specific parser recognises. It pulls IP addresses (IPv4, IPv6),
URLs (also defanged ``hxxp://example[.]com``, IPv6 literals with or without brackets, non-standard ports),
ports and times with their zones (``+0200``, ``CEST``, ``PDT``, ``UTC``), and classifies the complaint to an event
kind by weighted keywords. One Event per distinct reported subject (URL, or IP not already inside a URL).

Confidence reflects how sure the classification is; below 0.5 the event is marked ``extra["triage"] = True`` for
an analyst and, when no keyword fits at all, its kind is ``other``. A mail with no address, URL or domain at all
raises ParseError (quarantine is where an analyst reads it).

False positives: quoted headers and signatures name the complainant's own relays and web sites; lines that look
like mail headers (``Received:``) and the complainant's own domain are skipped, but an analyst should check.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from abusedesk.domain.errors import ParseError
from abusedesk.domain.numbers import ascii_uint
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report

_MAX_TEXT = 512 * 1024
_MAX_SUBJECTS = 200

# --- extraction -------------------------------------------------------------------------------------------------

_IPV4 = re.compile(
    r"(?<![\d.])(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(?![\d.]*\d)"
)
_IPV6 = re.compile(r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:])")
_URL = re.compile(r"\b(?:h[xt]{2}ps?|ftp)\[?:\]?//[^\s<>\"'`{}|\\^]+", re.IGNORECASE)
_DEFANG = ((re.compile(r"\[\.\]|\(\.\)|\{\.\}"), "."), (re.compile(r"\[:\]"), ":"))
_TRAILING = ".,;:!?)]>'\""


def refang(text: str) -> str:
    """Undo common defanging: ``hxxp`` → ``http``, ``[.]`` → ``.``, ``[:]`` → ``:``."""
    for rx, repl in _DEFANG:
        text = rx.sub(repl, text)
    return re.sub(r"\bhxxp", "http", text, flags=re.IGNORECASE)


def _valid_ip(text: str) -> str | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if addr.is_unspecified or addr.is_multicast or addr.is_loopback:
        return None
    if addr.version == 4 and (str(addr).startswith("0.") or str(addr) == "255.255.255.255"):
        return None
    return str(addr)


def find_ips(text: str) -> list[str]:
    """Distinct usable IP addresses in order of appearance (no loopback, multicast, 0.0.0.0/8)."""
    found: list[tuple[int, str]] = []
    for rx in (_IPV4, _IPV6):
        for m in rx.finditer(text):
            ip = _valid_ip(m.group(0))
            if ip:
                found.append((m.start(), ip))
    out: list[str] = []
    for _, ip in sorted(found):
        if ip not in out:
            out.append(ip)
    return out


@dataclass(frozen=True, slots=True)
class UrlHit:
    url: str
    host: str | None
    ip: str | None
    port: int | None


def split_url(raw: str) -> UrlHit | None:
    """A URL normalised (IPv6 host bracketed), with its host, host IP and explicit port; None when unusable."""
    url = refang(raw).rstrip(_TRAILING)
    m = re.match(r"^([A-Za-z]+)://([^/?#]*)(.*)$", url)
    if not m:
        return None
    scheme, hostport, rest = m.group(1).lower(), m.group(2), m.group(3)
    if "@" in hostport:
        hostport = hostport.rsplit("@", 1)[1]
    host, port = hostport, None
    if hostport.startswith("["):
        end = hostport.find("]")
        host = hostport[1:end] if end > 0 else hostport[1:]
        tail = hostport[end + 1 :] if end > 0 else ""
        if tail.startswith(":"):
            port = ascii_uint(tail[1:])
    elif hostport.count(":") >= 2:  # an IPv6 literal written without brackets, maybe with a port at the end
        if _valid_ip(hostport):
            host = hostport
        else:
            head, _, last = hostport.rpartition(":")
            if ascii_uint(last) is not None and _valid_ip(head):
                host, port = head, ascii_uint(last)
            else:
                return None
    elif ":" in hostport:
        host, _, p = hostport.partition(":")
        port = ascii_uint(p)
    host = host.strip().lower().rstrip(".")
    if not host or (port is not None and not 0 < port <= 65535):
        return None
    ip = _valid_ip(host)
    if ip is None and not re.match(
        r"^(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\.)+[a-z][a-z0-9-]*$", host
    ):  # no empty labels
        return None
    shown = f"[{ip}]" if ip and ":" in ip else host
    netloc = f"{shown}:{port}" if port is not None else shown
    return UrlHit(f"{scheme}://{netloc}{rest}", None if ip else host, ip, port)


def find_urls(text: str) -> list[UrlHit]:
    """Distinct URLs in order (defanged forms refanged, IPv6 literals bracketed)."""
    out: list[UrlHit] = []
    seen: set[str] = set()
    for m in _URL.finditer(text):
        hit = split_url(m.group(0))
        if hit and hit.url not in seen:
            seen.add(hit.url)
            out.append(hit)
    return out


_PORT = re.compile(r"\b(?:port|dst port|dport|dpt|sport|src port)[\s:=#]*(\d{1,5})\b", re.IGNORECASE)


def find_ports(text: str) -> list[int]:
    out: list[int] = []
    for m in _PORT.finditer(text):
        port = int(m.group(1))
        if 0 < port <= 65535 and port not in out:
            out.append(port)
    return out


#: zone abbreviations that appear in complaints (ambiguous ones resolved the common way: CST = US Central)
TZ_ABBREVIATIONS: dict[str, int] = {
    "UTC": 0,
    "UT": 0,
    "GMT": 0,
    "Z": 0,
    "WET": 0,
    "WEST": 60,
    "BST": 60,
    "CET": 60,
    "CEST": 120,
    "MET": 60,
    "MEST": 120,
    "EET": 120,
    "EEST": 180,
    "MSK": 180,
    "IST": 330,
    "JST": 540,
    "KST": 540,
    "AEST": 600,
    "AEDT": 660,
    "EST": -300,
    "EDT": -240,
    "CST": -360,
    "CDT": -300,
    "MST": -420,
    "MDT": -360,
    "PST": -480,
    "PDT": -420,
}
_MONTHS = {
    m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
}
_ZONE = r"(?P<zone>[+-]\d{2}:?\d{2}|Z\b|[A-Z]{2,5}\b)"
_ISO_TIME = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?(?:\.\d+)?\s*"
    + _ZONE
    + "?"
)
_RFC_TIME = re.compile(
    r"(?P<d>\d{1,2}) (?P<mon>[A-Za-z]{3})[a-z]* (?P<y>\d{4}),? (?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?"
    r"\s*(?P<ampm>[AaPp][Mm])?\s*" + _ZONE + "?"
)
_US_TIME = re.compile(
    r"(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}),?\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?"
    r"\s*(?P<ampm>[AaPp][Mm])?\s*" + _ZONE + "?"
)


def _zone(text: str | None) -> timezone | None:
    if not text:
        return None
    if text[0] in "+-":
        digits = text[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + int(digits[2:4])
        return timezone(timedelta(minutes=minutes if text[0] == "+" else -minutes))
    if text.upper() in TZ_ABBREVIATIONS:
        return timezone(timedelta(minutes=TZ_ABBREVIATIONS[text.upper()]))
    return None


def find_times(text: str) -> list[tuple[datetime, bool]]:
    """Times in the text as (aware UTC time, had_zone); a time without zone is taken as UTC and flagged False."""
    out: list[tuple[int, datetime, bool]] = []
    for rx in (_ISO_TIME, _RFC_TIME, _US_TIME):
        for m in rx.finditer(text):
            g = m.groupdict()
            try:
                month = _MONTHS[g["mon"].lower()[:3]] if g.get("mon") else int(g["mo"])
                hour = int(g["h"])
                if g.get("ampm"):
                    hour = hour % 12 + (12 if g["ampm"].lower() == "pm" else 0)
                zone = _zone(g.get("zone"))
                when = datetime(
                    int(g["y"]), month, int(g["d"]), hour, int(g["mi"]), int(g.get("s") or 0), tzinfo=zone or UTC
                )
            except (KeyError, ValueError, OverflowError):
                continue
            if 1990 <= when.year <= 2100:
                out.append((m.start(), when.astimezone(UTC), zone is not None))
    out.sort(key=lambda t: t[0])
    return [(w, z) for _, w, z in out]


#: hosts that complaints link to for explanation, never as the reported subject
REFERENCE_DOMAINS = frozenset(
    {
        "spamhaus.org",
        "spamcop.net",
        "team-cymru.org",
        "team-cymru.com",
        "sans.org",
        "x-arf.org",
        "xarf.org",
        "projecthoneypot.org",
        "unspam.com",
        "wikipedia.org",
        "abuse.ch",
        "shadowserver.org",
        "w3.org",
        "ietf.org",
        "juniper.net",
        "cisco.com",
        "microsoft.com",
    }
)
_CIDR_AFTER = re.compile(r"^/\d{1,3}\b")


def registered_domain(host: str) -> str:
    """The registrable part of a host name, approximately (``a.b.example.co.uk`` → ``example.co.uk``)."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _is_reference(hit: UrlHit, sender_domain: str | None) -> bool:
    if hit.host is None:
        return False
    reg = registered_domain(hit.host)
    return reg in REFERENCE_DOMAINS or (sender_domain is not None and reg == sender_domain)


def _ips_outside_cidrs(text: str) -> list[str]:
    """IPs in the text, leaving out network prefixes written as ``192.0.2.0/24`` (targeted ranges, not subjects)."""
    keep: list[str] = []
    for ip in find_ips(text):
        idx = text.find(ip)
        if idx >= 0 and _CIDR_AFTER.match(text[idx + len(ip) :]):
            continue
        keep.append(ip)
    return keep


def pick_subjects(subject: str, body: str, sender: str | None) -> tuple[list[UrlHit], list[str]]:
    """The URLs and IPs a complaint reports: those in its subject line when it names any, else the body's.

    Links to the complainant's own site and to well-known reference sites are left out, and so are IPs that
    are already the host of a reported URL.
    """
    sender_domain = registered_domain(sender.split("@")[-1]) if sender and "@" in sender else None
    for text in (refang(subject), refang(f"{subject}\n{body}")):
        urls = [u for u in find_urls(text) if not _is_reference(u, sender_domain)]
        url_ips = {u.ip for u in urls if u.ip}
        ips = [ip for ip in _ips_outside_cidrs(text) if ip not in url_ips]
        if urls or ips:
            return urls, ips
    return [], []


# --- classification ---------------------------------------------------------------------------------------------

#: kind → (keyword pattern, weight); the best-scoring kind wins, its score sets the confidence
KEYWORDS: dict[str, tuple[tuple[str, float], ...]] = {
    "phishing": ((r"phish", 0.7), (r"credential|fake login|login page|imperson", 0.3), (r"fraudul", 0.2)),
    "malware": ((r"malware|virus|trojan|ransomware|malicious (?:file|download|content)", 0.6), (r"infect", 0.2)),
    # "spam" as a word (not "Spamhaus", "Anti-Spam" names of the complainant)
    "spam": (
        (r"\bspam(?:s|med|ming|mer|mers)?\b(?!-)|unsolicited|bulk e?-?mail|junk mail", 0.7),
        (r"newsletter|unsubscribe", 0.1),
    ),
    "scan": ((r"port ?scan|scann?ing|nmap|masscan", 0.7), (r"\bprobe|probing", 0.3)),
    "brute-force": (
        (r"brute[- ]?force|dictionary attack|failed login|login attempt|password guess", 0.7),
        (r"\bssh\b|\brdp\b", 0.2),
    ),
    "dos": ((r"\bd?dos\b|denial of service|flood|amplification|reflect", 0.7), (r"\battack", 0.1)),
    "open-resolver": ((r"open (?:dns )?resolver|recursive dns", 0.7),),
    "open-service": ((r"\bntp\b|monlist|memcached|chargen|ssdp|exploitable .* server", 0.4),),
    "open-proxy": ((r"open proxy", 0.7),),
    "open-relay": ((r"open relay", 0.7),),
    "botnet": ((r"botnet|command and control|\bc&c\b|\bc2\b", 0.7), (r"\bbot\b", 0.2)),
    "copyright": ((r"copyright|dmca|infring|pirat|illegal stream", 0.7),),
    "trademark": ((r"trademark|counterfeit", 0.7),),
    "intrusion": ((r"hack|compromis|defac|intrusion|unauthori[sz]ed access|web ?shell", 0.6),),
    "sql-injection": ((r"sql injection|sqli\b|xss|web attack|wp-login|xmlrpc", 0.6),),
    "csam": ((r"child (?:sexual )?abuse|csam", 0.9),),
    "fraud": ((r"\bfraud|\bscam|fake shop", 0.6),),
    "blocklisted": ((r"block ?list|black ?list|\bsbl\b|listed on", 0.8),),
    "crawling": ((r"crawl|scrap|harvest|robots\.txt", 0.5),),
}
_COMPILED = {k: tuple((re.compile(p, re.IGNORECASE), w) for p, w in v) for k, v in KEYWORDS.items()}


#: external reference numbers complainants put in subjects and bodies (first match wins)
REPORT_ID_PATTERNS = (
    re.compile(r"\b(SBL\d{3,})\b"),
    re.compile(r"\[(?:CSIRT|SIRT)#(\w+)\]"),
    re.compile(r"\bReport[- ]ID:\s*([\w.@+-]*\d[\w.@+-]*)", re.IGNORECASE),
    re.compile(r"\bRef(?:erence)? ?ID:? ?\[?([\w.-]*\d[\w.-]*)\]?", re.IGNORECASE),
    re.compile(r"\b(?:Ticket|Case|Incident|Issue)(?: ID| No\.?| Number)?\s*[#:]\s*([\w-]*\d[\w-]*)", re.IGNORECASE),
)


def find_report_id(text: str) -> str | None:
    for rx in REPORT_ID_PATTERNS:
        m = rx.search(text)
        if m:
            return m.group(1)
    return None


def classify(text: str) -> tuple[str, float, list[str]]:
    """(kind, confidence 0..1, matched keywords); ``other`` with a low confidence when nothing fits."""
    best, best_score, best_hits = "other", 0.0, []
    for kind, rules in _COMPILED.items():
        score, hits = 0.0, []
        for rx, weight in rules:
            found = rx.findall(text)
            if found:
                score += weight + min(len(found) - 1, 3) * 0.05
                hits.append(str(found[0]).lower())
        if score > best_score:
            best, best_score, best_hits = kind, score, hits
    if best_score == 0:
        return "other", 0.2, []
    return best, round(min(0.85, 0.25 + best_score * 0.6), 2), best_hits


# --- parser -----------------------------------------------------------------------------------------------------

_HEADERISH = re.compile(
    r"^(?:>\s*)*(?:Received|X-[\w-]+|Return-Path|Message-I[dD]|DKIM-Signature|Authentication-Results)\s*:"
)


_MAIL_HEADERS = ("From", "To", "Subject", "Date", "Received", "Message-ID", "MIME-Version", "Return-Path")


def _body(report: Report) -> tuple[str, Message | None]:
    msg = report.message
    # "http://a" lines look like header lines; a "mail" without any mail header is plain text
    if msg is not None and not any(mime.header(msg, h) is not None for h in _MAIL_HEADERS):
        msg = None
    if msg is None:
        return mime.strip_inline_pgp(report.text[:_MAX_TEXT]), None
    inner = mime.signed_content(msg)
    return mime.strip_inline_pgp(mime.body_text(inner)[:_MAX_TEXT]), msg


def _clean(text: str) -> str:
    """Drop quoted header lines (they name the complainant's relays, not the subject)."""
    lines, skipping = [], False
    for line in text.splitlines():
        if _HEADERISH.match(line):
            skipping = True
            continue
        if skipping and line[:1] in (" ", "\t"):
            continue
        skipping = False
        lines.append(line)
    return "\n".join(lines)


class FreetextParser(Parser):
    """Free-text complaints (any mail or text no other parser takes): subjects, times, a guessed kind."""

    name: ClassVar[str] = "freetext"
    priority: ClassVar[int] = 90

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        #: below this confidence an event is marked for analyst triage
        triage_below: float = 0.5

    def recognises(self, report: Report) -> bool:
        if report.message is not None:
            return True
        head = report.head
        if not head or b"\x00" in head:
            return False
        printable = sum(32 <= b < 127 or b in (9, 10, 13) or b >= 0xC2 for b in head)
        return printable / len(head) > 0.9

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        text, msg = _body(report)
        subject = (mime.header(msg, "Subject") or "") if msg is not None else ""
        whole = _clean(f"{subject}\n{text}")
        sender = mime.sender_address(msg) if msg is not None else None

        urls, ips = pick_subjects(subject, _clean(text), sender)
        if not urls and not ips:
            raise ParseError(
                "free-text complaint names no IP address or URL; an analyst has to read it", parser=self.name
            )
        kind, confidence, hits = classify(whole)
        triage = confidence < self.params.triage_below  # type: ignore[attr-defined]
        if triage and not hits:
            kind = "other"
        times = find_times(text)
        when, time_source = None, "text"
        zoned = [t for t, has_zone in times if has_zone]
        if zoned:
            when = zoned[0]
        elif times:
            when, time_source = times[0][0], "text (no zone, taken as UTC)"
        if when is None and msg is not None:
            when, time_source = mime.parse_mail_date(mime.header(msg, "Date")), "mail Date"
        if when is None:
            when, time_source = report.raw.received_at, "received"
        ports = find_ports(whole)
        extra: dict[str, Any] = {
            "classification_keywords": hits,
            "time_source": time_source,
        }
        if triage:
            extra["triage"] = True
        if ports:
            extra["ports"] = ports
        if subject:
            extra["subject"] = subject[:300]
        if msg is not None and mime.header(msg, "Message-ID"):
            extra["message_id"] = mime.header(msg, "Message-ID")
        items: list[dict[str, Any]] = [
            {"source_url": u.url, "source_fqdn": u.host, "source_ip": u.ip, "source_port": u.port} for u in urls
        ]
        items += [{"source_ip": ip, "source_port": ports[0] if len(ports) == 1 else None} for ip in ips]
        if len(items) > _MAX_SUBJECTS:
            yield ParseIssue(f"complaint names {len(items)} subjects; only the first {_MAX_SUBJECTS} are kept")
            items = items[:_MAX_SUBJECTS]
        report_id = find_report_id(f"{subject}\n{text[:20000]}")
        for item in items:
            yield Event.create(
                kind=kind,
                time=when,
                feed=self.name,
                reporter=sender,
                report_id=report_id,
                confidence=confidence,
                description=(subject or text.strip()[:200]) or None,
                extra=dict(extra),
                **item,
            )
