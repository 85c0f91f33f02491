"""The technical facts of a report that a customer needs to find and fix the problem (issue 11, item 3).

A notice that says "brute-force reported by cert@… for 203.0.113.10" cannot be acted on: the customer needs the
target, the port and protocol, how many attempts, when, and a sample of what was seen. :func:`event_facts` takes
those from an Event's fields and from what its parser kept in ``extra`` (XARF fields, Shadowserver columns, ARF and
SpamCop headers), as plain JSON values. The finding keeps them in its evidence; the notice renders them
(``actions/advice.py``).

The reporter's identity is kept here too (``reporter``), but a notice shows it only when the reporter agreed
(``notices.disclose_reporters``): the finding's summary never names it.

What an outsider wrote is reduced to facts: addresses, ports, counts and times are parsed values, and sample
lines (mail headers, ``Received`` hops, log lines) are cut to :data:`MAX_LINE` printable characters, at most
:data:`MAX_SAMPLES` of them. A reporter's free-text description is not carried to the customer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from abusedesk.domain.records import Event
from abusedesk.domain.timeutil import iso

MAX_SAMPLES = 5
MAX_LINE = 300

# XARF v4 and other reports' count fields, and what they count
_COUNT_FIELDS = (
    ("attempt_count", "attempts"),
    ("attempts", "attempts"),
    ("login_attempts", "attempts"),
    ("count", "events"),
    ("connection_count", "connections"),
    ("message_count", "messages"),
    ("incidents", "reports"),
)


def clean_line(value: Any, limit: int = MAX_LINE) -> str:
    """One line of printable text: control characters and runs of white space become one space; cut at ``limit``."""
    text = str(value)
    if not text.isprintable():  # the common case, all printable, is one C call instead of a loop per character
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _as_port(value: Any) -> int | None:
    n = _as_count(value)
    return n if n is not None and 0 < n < 65536 else None


def _as_time(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return iso(t if t.tzinfo else t.replace(tzinfo=UTC))


def _samples(extra: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(headers, log lines) from what the parsers keep."""
    headers: list[str] = []
    for key, name in (
        ("original_mail_from", "From"),
        ("original_subject", "Subject"),
        ("original_message_id", "Message-ID"),
    ):
        if extra.get(key):
            headers.append(f"{name}: {clean_line(extra[key], MAX_LINE - len(name) - 2)}")
    for hop in list(extra.get("received_chain") or [])[:3]:
        headers.append("Received: " + clean_line(hop, MAX_LINE - 10))
    lines: list[str] = []
    evidence = extra.get("evidence")
    if isinstance(evidence, str):
        lines.extend(evidence.splitlines())
    elif isinstance(evidence, list):
        lines.extend(str(e) for e in evidence if isinstance(e, str))
    for item in extra.get("xarf_evidence") or []:
        if isinstance(item, dict) and isinstance(item.get("payload"), str) and item.get("content_type") == "text/plain":
            lines.extend(item["payload"].splitlines())
    for subject in list(extra.get("spam_subjects") or [])[:3]:
        headers.append("Subject: " + clean_line(subject, MAX_LINE - 9))
    return headers[:MAX_SAMPLES], [clean_line(x) for x in lines if x.strip()][:MAX_SAMPLES]


def event_facts(event: Event) -> dict[str, Any]:
    """What a customer needs of ``event``: target, ports, protocol, service, counts, time range, samples.

    Keys (each only when known): ``source``, ``source_port``, ``target``, ``target_port``, ``transport``,
    ``service``, ``count``, ``count_unit``, ``first_seen``, ``last_seen``, ``url``, ``hostname``, ``report_type``,
    ``headers``, ``lines``, ``reporter``, ``report_id``, ``work`` (copyright), ``missing`` (DMCA elements).
    """
    extra = event.extra or {}
    fields: dict[str, Any] = dict(extra.get("xarf_fields") or {})
    out: dict[str, Any] = {}
    source = event.source_ip or event.source_url or event.source_fqdn or event.source_account
    if source:
        out["source"] = source
    if event.source_port is not None:
        out["source_port"] = event.source_port
    target = event.destination_ip or fields.get("destination_ip")
    if target:
        out["target"] = clean_line(target, 64)
    port = event.destination_port if event.destination_port is not None else _as_port(fields.get("destination_port"))
    if port is not None:
        out["target_port"] = port
    transport = event.transport or fields.get("protocol") or extra.get("protocol")
    if transport:
        out["transport"] = clean_line(transport, 16).lower()
    service = event.application or fields.get("service") or extra.get("service") or extra.get("tag")
    if service:
        out["service"] = clean_line(service, 40)
    for key, unit in _COUNT_FIELDS:
        n = _as_count(fields.get(key, extra.get(key)))
        if n is not None:
            out["count"], out["count_unit"] = n, unit
            break
    first = _as_time(fields.get("first_seen") or extra.get("first_seen"))
    last = _as_time(fields.get("last_seen") or extra.get("last_seen"))
    if first or last:
        out["first_seen"] = first or last
        out["last_seen"] = last or first
    if event.source_url:
        out["url"] = clean_line(event.source_url, 500)
    hostname = event.source_fqdn or extra.get("hostname")
    if hostname and hostname != source:
        out["hostname"] = clean_line(hostname, 255)
    if extra.get("report_type"):
        out["report_type"] = clean_line(extra["report_type"], 60)
    headers, lines = _samples(extra)
    if headers:
        out["headers"] = headers
    if lines:
        out["lines"] = lines
    works = extra.get("works") or extra.get("work")
    if works:
        if isinstance(works, list):
            names = [str(w.get("title") or w.get("file_name") or "") if isinstance(w, dict) else str(w) for w in works]
            files = [str(w["file_name"]) for w in works if isinstance(w, dict) and w.get("file_name")]
            out["work"] = clean_line("; ".join(n for n in names if n), 200)
            if files:
                out["files"] = [clean_line(f, 200) for f in files[:MAX_SAMPLES]]
        else:
            out["work"] = clean_line(works, 200)
    if extra.get("dmca_missing"):
        out["missing"] = [clean_line(m, 40) for m in extra["dmca_missing"]]
    if event.reporter:
        out["reporter"] = event.reporter
    if event.report_id:
        out["report_id"] = clean_line(event.report_id, 120)
    return out


def _plural(n: int, unit: str) -> str:
    return f"{n:,} {unit if n != 1 else unit.rstrip('s')}"


def summarise(kind: str, facts: dict[str, Any]) -> str:
    """A one-line summary of a finding from its facts, without the reporter's identity."""
    what = kind.replace("-", " ")
    source = facts.get("source", "-")
    text = f"{what} {'at' if facts.get('url') else 'from'} {source}"
    if kind in ("open-service", "open-resolver", "open-proxy", "open-relay"):
        svc = facts.get("service") or facts.get("report_type")
        port = facts.get("source_port")
        text = f"{what} at {source}"
        if svc or port:
            text += (
                " ("
                + " ".join(x for x in (svc, f"port {port}/{facts.get('transport', 'tcp')}" if port else None) if x)
                + ")"
            )
    elif facts.get("target") or facts.get("target_port"):
        text += " against " + (facts.get("target") or "")
        if facts.get("target_port"):
            sep = " " if facts.get("target") else ""
            text += f"{sep}port {facts['target_port']}" + (f"/{facts['transport']}" if facts.get("transport") else "")
        if facts.get("service"):
            text += f" ({facts['service']})"
    if facts.get("count") is not None:
        text += f", {_plural(int(facts['count']), facts.get('count_unit', 'events'))}"
    return text
