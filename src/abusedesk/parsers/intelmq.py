"""IntelMQ events as JSON, so a CERT's IntelMQ can feed abusedesk (output bot: file or REST, JSON lines or a list).

IntelMQ's event format uses dotted field names (``source.ip``, ``classification.type``); with
``hierarchical_output`` they are nested objects instead. Both are read. The kind comes from
``classification.type`` through ``TYPE_TO_KIND`` (IntelMQ's RSIT-based types plus the older names), refined by
``classification.identifier`` for open services, falling back to ``classification.taxonomy``; anything else is
``other`` for triage.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.domain.timeutil import parse_time
from abusedesk.parsers import textstream
from abusedesk.parsers.base import Parser, Report

#: IntelMQ classification.type -> abusedesk kind (our table; covers the RSIT types IntelMQ 3 uses and 2.x names)
TYPE_TO_KIND: dict[str, str] = {
    # abusive-content
    "spam": "spam",
    "harmful-speech": "hateful-content",
    "violence": "illegal-content",
    # malicious-code
    "infected-system": "infected-host",
    "c2-server": "botnet",
    "malware-distribution": "malware",
    "malware-configuration": "malware",
    # information-gathering
    "scanner": "scan",
    "sniffing": "reconnaissance",
    "social-engineering": "fraud",
    # intrusion-attempts
    "ids-alert": "intrusion",
    "brute-force": "brute-force",
    "exploit": "intrusion",
    # intrusions
    "privileged-account-compromise": "compromised-host",
    "unprivileged-account-compromise": "compromised-host",
    "application-compromise": "compromised-host",
    "system-compromise": "compromised-host",
    "burglary": "other",
    # availability
    "dos": "dos",
    "ddos": "dos",
    "outage": "other",
    "sabotage": "service-interference",
    # information-content-security
    "unauthorised-information-access": "intrusion",
    "unauthorised-information-modification": "intrusion",
    "data-loss": "exposed-data",
    "data-leak": "exposed-data",
    # fraud
    "unauthorized-use-of-resources": "other",
    "copyright": "copyright",
    "masquerade": "spoofed-source",
    "phishing": "phishing",
    # vulnerable
    "weak-crypto": "vulnerable-service",
    "ddos-amplifier": "open-service",
    "potentially-unwanted-accessible": "open-service",
    "information-disclosure": "exposed-data",
    "vulnerable-system": "vulnerable-service",
    "misconfiguration": "misconfiguration",
    # other
    "blacklist": "blocklisted",
    "blocklist": "blocklisted",
    "dga-domain": "botnet",
    "tor": "other",
    "undetermined": "other",
    "unknown": "other",
    "other": "other",
    "test": "other",
    # IntelMQ 2.x names still found in archives
    "backdoor": "compromised-host",
    "botnet drone": "infected-host",
    "compromised": "compromised-host",
    "defacement": "compromised-host",
    "dropzone": "malware",
    "ransomware": "malware",
    "malware": "malware",
    "malware configuration": "malware",
    "proxy": "open-proxy",
    "leak": "exposed-data",
    "vulnerable service": "vulnerable-service",
    "vulnerable client": "vulnerable-service",
}

#: taxonomy -> kind when the type is missing or unknown to us
TAXONOMY_TO_KIND: dict[str, str] = {
    "malicious-code": "malware",
    "information-gathering": "scan",
    "intrusion-attempts": "intrusion",
    "intrusions": "compromised-host",
    "availability": "dos",
    "information-content-security": "exposed-data",
    "fraud": "fraud",
    "vulnerable": "vulnerable-service",
}

#: words in classification.identifier that name an open service more precisely
_IDENTIFIER_KINDS: tuple[tuple[str, str], ...] = (
    ("resolver", "open-resolver"),
    ("openresolver", "open-resolver"),
    ("proxy", "open-proxy"),
    ("socks", "open-proxy"),
    ("relay", "open-relay"),
)
_OPEN_KINDS = frozenset({"open-service", "vulnerable-service"})

_FIELDS = {
    "source.ip": "source_ip",
    "source.port": "source_port",
    "source.url": "source_url",
    "source.fqdn": "source_fqdn",
    "source.account": "source_account",
    "destination.ip": "destination_ip",
    "destination.port": "destination_port",
    "protocol.transport": "transport",
    "protocol.application": "application",
    "event_description.text": "description",
}
_MAX_EXTRA_VALUE = 2000


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested IntelMQ output (``{"source": {"ip": ...}}``) to dotted keys; dotted input passes unchanged."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not name.startswith("extra"):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def kind_for(fields: dict[str, Any]) -> tuple[str, bool]:
    """(kind, known): the kind for an IntelMQ event, and whether the table knew its classification."""
    ctype = str(fields.get("classification.type") or "").strip().lower()
    taxonomy = str(fields.get("classification.taxonomy") or "").strip().lower()
    identifier = str(fields.get("classification.identifier") or "").strip().lower()
    kind = TYPE_TO_KIND.get(ctype)
    known = kind is not None and kind != "other"
    if kind is None:
        kind = TAXONOMY_TO_KIND.get(taxonomy, "other")
        known = kind != "other"
    if kind in _OPEN_KINDS and identifier:
        for word, refined in _IDENTIFIER_KINDS:
            if word in identifier:
                return refined, True
    return kind, known


def _is_intelmq(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    if obj.get("__type") == "Event":
        return True
    keys = set(obj)
    if any(k.startswith("classification.") for k in keys):
        return True
    cls = obj.get("classification")
    return isinstance(cls, dict) and ("type" in cls or "taxonomy" in cls)


def _first_json(text: str) -> Any:
    s = text.lstrip()
    if s.startswith("["):
        # look at the first element only: find it without decoding the whole list
        try:
            obj, _ = json.JSONDecoder().raw_decode(s[1:].lstrip())
        except (ValueError, RecursionError):
            return None
        return obj
    line = s.split("\n", 1)[0]
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


class IntelmqParser(Parser):
    """IntelMQ events (JSON lines or a JSON list, flat or hierarchical), e.g. from a national CERT's IntelMQ.

    Flags whatever the CERT classified, mapped through our classification table (docs/reference/formats-feeds.md).
    For: CERTs and ISACs running IntelMQ. False positives: as good as the CERT's feeds; ``feed.accuracy`` becomes
    the confidence, unknown classifications go to triage as ``other``.
    """

    name = "intelmq"
    priority = 40

    def recognises(self, report: Report) -> bool:
        # not report.message: JSON lines look like header lines to mime.looks_like_mail
        head = report.head.lstrip()
        if head[:1] not in (b"{", b"["):
            return False
        prefix = report.peek(65536)
        if b"classification" not in prefix and b'"__type"' not in prefix:
            return False
        with report.text_stream() as text:
            return _is_intelmq(_first_json(text.read(1_000_000)))

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        # report.text.lstrip("\ufeff").strip().splitlines(), streamed (issue 9 item 3)
        lines = textstream.stripped_lines(textstream.strip_bom(report.lines()))
        first = next(lines, None)
        if first is None:
            raise ParseError("the input is empty", source=report.filename, parser=self.name)
        records: Iterator[tuple[int, Any]]
        if first.startswith("["):
            # a JSON list is read whole (bounded by intake.max_input_bytes); JSON lines are streamed
            try:
                data = json.loads(report.text.lstrip("\ufeff").strip())
            except (ValueError, RecursionError) as exc:
                raise ParseError(
                    f"the JSON list cannot be read (truncated or malformed): {exc}",
                    source=report.filename,
                    parser=self.name,
                ) from None
            if not isinstance(data, list):
                raise ParseError("the input is not a JSON list of events", source=report.filename, parser=self.name)
            records = enumerate(data, start=1)
            unit = "element"
        else:
            records = _json_lines(itertools.chain([first], lines))
            unit = "line"
        count = unreadable = good = 0
        for n, obj in records:
            report.budget.tick(report.filename)
            count += 1
            if isinstance(obj, ParseIssue):
                unreadable += 1
                yield obj
                continue
            item = self._event(obj, n, unit)
            if isinstance(item, Event):
                good += 1
            yield item
        if count and not good and unreadable == count:
            raise ParseError(
                "no line of the input is JSON; not an IntelMQ event file", source=report.filename, parser=self.name
            )

    def _event(self, obj: Any, n: int, unit: str) -> Event | ParseIssue:
        if not isinstance(obj, dict):
            return ParseIssue(f"{unit} {n} is not a JSON object", line=n if unit == "line" else None)
        try:
            fields = flatten(obj)
        except RecursionError:
            return ParseIssue(f"{unit} {n} is nested too deeply to be an IntelMQ event", line=_line(n, unit))
        if not _is_intelmq(obj):
            return ParseIssue(f"{unit} {n} has no classification; not an IntelMQ event", line=_line(n, unit))
        stamp = fields.get("time.source") or fields.get("time.observation")
        if not stamp:
            return ParseIssue(f"{unit} {n} has neither time.source nor time.observation", line=_line(n, unit))
        try:
            when = parse_time(str(stamp), assume_utc=True)
        except (ValueError, OverflowError):
            return ParseIssue(f"{unit} {n}: time {stamp!r} is not ISO 8601", line=_line(n, unit))
        kind, known = kind_for(fields)
        values: dict[str, Any] = {
            attr: fields[name] for name, attr in _FIELDS.items() if fields.get(name) not in (None, "")
        }
        accuracy = fields.get("feed.accuracy")
        try:
            confidence = max(0.0, min(1.0, float(accuracy) / 100.0)) if accuracy is not None else 0.7
        except (TypeError, ValueError):
            confidence = 0.7
        extra: dict[str, Any] = {}
        for key, value in fields.items():
            if key in _FIELDS or key in ("__type", "raw", "time.source", "time.observation"):
                continue
            if isinstance(value, str) and len(value) > _MAX_EXTRA_VALUE:
                value = value[:_MAX_EXTRA_VALUE]
            extra[key] = value
        if "raw" in fields:
            extra["raw_present"] = True
        if not known:
            extra["triage"] = True
        extra["identity"] = hashlib.blake2b(
            json.dumps(obj, sort_keys=True, default=str).encode(), digest_size=10
        ).hexdigest()
        try:
            return Event.create(
                kind=kind,
                time=when,
                feed="intelmq",
                reporter=str(fields.get("feed.provider") or fields.get("feed.name") or "") or None,
                confidence=confidence,
                extra=extra,
                **values,
            )
        except (ValueError, TypeError) as exc:
            return ParseIssue(f"{unit} {n} cannot be used: {exc}", line=_line(n, unit))


def _json_lines(lines: Iterator[str]) -> Iterator[tuple[int, Any]]:
    """Each line with content, numbered from 1, as its JSON value or a ParseIssue when it is not JSON."""
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield n, ParseIssue(f"line is not JSON: {exc}", line=n)


def _line(n: int, unit: str) -> int | None:
    return n if unit == "line" else None
