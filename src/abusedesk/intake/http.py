"""The HTTP channel's service: a submitted report (XARF v4 JSON, raw mail, or a web form) through the one door.

- XARF v4 JSON (``application/json`` with ``xarf_version`` and ``report_id``) is stored as sent. A re-POST of
  the same document (even re-serialised: its content key is the canonical JSON) from the same reporter is a
  duplicate and gets the same reference; the same ``report_id`` from the same reporter with other content is
  refused with 409 Conflict naming the earlier reference; another reporter's equal ``report_id`` is its own
  report.
- A raw mail (``message/rfc822``) goes through the mail door, as if it came by SMTP.
- A web form (JSON without ``xarf_version``, ``multipart/form-data`` or ``application/x-www-form-urlencoded``,
  fields ``reporter_email``, ``subject`` (IP or URL), ``description``, ``time``, optional ``kind``) is written
  down as a XARF v4 report, so the XARF parser reads it like any other.

``report_status`` tells a submitter what became of a reference: stored, parsed or quarantined (with the reason),
the number of events, the case references once cases exist, and the earlier report it is related to.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from abusedesk.domain.errors import Conflict, NotFound, ParseError
from abusedesk.domain.ids import canonical_json, sha256_hex
from abusedesk.domain.kinds import is_kind, kind_from_xarf, xarf_for_kind
from abusedesk.domain.timeutil import iso, parse_time
from abusedesk.intake.channels import MailDoor, Receipt
from abusedesk.intake.reporters import REFERENCE_LENGTH, normalise_address, reference_of
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import CaseRow, FindingRow
from abusedesk.store.tables.intake import EventRow, RawInputRow

WEBFORM_FIELDS = ("reporter_email", "subject", "description", "time", "kind", "reporter_name", "protocol")
_DESCRIPTION_MAX = 20_000


@dataclass(frozen=True, slots=True)
class Submission:
    receipt: Receipt
    kind: str  # xarf | mail | webform


class HttpIntake:
    """Turns one HTTP request body into an accepted raw input."""

    def __init__(self, door: MailDoor) -> None:
        self.door = door
        self.rt = door.rt

    def submit(self, body: bytes, content_type: str, *, peer: str | None = None) -> Submission:
        ctype = content_type.split(";", 1)[0].strip().lower()
        meta: dict[str, Any] = {"content_type": ctype}
        if peer:
            meta["peer"] = peer
        if ctype == "message/rfc822":
            return Submission(self.door.receive(body, channel="http", meta=meta), "mail")
        if ctype in ("application/json", "application/xarf+json") or ctype.endswith("+json"):
            try:
                doc = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ParseError(f"request body is not valid JSON: {exc}", source="POST /api/v1/reports") from None
            if not isinstance(doc, dict):
                raise ParseError("request body must be a JSON object", source="POST /api/v1/reports")
            if "xarf_version" in doc:
                return Submission(self._xarf(body, doc, meta), "xarf")
            return Submission(self._webform(doc, meta), "webform")
        if ctype == "multipart/form-data":
            return Submission(self._webform(_multipart(body, content_type), meta), "webform")
        if ctype == "application/x-www-form-urlencoded":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise ParseError("form body is not UTF-8", source="POST /api/v1/reports") from None
            form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
            return Submission(self._webform(form, meta), "webform")
        raise ParseError(
            f"content type {ctype!r} is not accepted; send application/json (XARF v4 or the web form), "
            "message/rfc822, multipart/form-data or application/x-www-form-urlencoded",
            source="POST /api/v1/reports",
        )

    def _xarf(self, body: bytes, doc: dict[str, Any], meta: dict[str, Any]) -> Receipt:
        report_id = doc.get("report_id")
        if not isinstance(report_id, str) or not report_id.strip():
            raise ParseError("XARF report has no report_id (a string is required)", source="POST /api/v1/reports")
        reporter_obj = doc.get("reporter") if isinstance(doc.get("reporter"), dict) else {}
        reporter = normalise_address(str((reporter_obj or {}).get("contact") or "")) or None
        meta["xarf_report_id"] = report_id[:200]
        return self.door.receive(
            body,
            channel="http",
            meta={**meta, "filename": "report.json"},
            report_ref=xarf_report_ref(reporter, report_id),
            reporter=reporter,
            ack=False,  # a machine report: the HTTP answer is its acknowledgement, no mail on top
            # the document, not its spelling, is the content: a re-serialised copy is the same report
            canonical=json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(),
            refuse_ref_reuse=f"XARF report_id {report_id.strip()[:200]!r}",
        )

    def _webform(self, form: dict[str, Any], meta: dict[str, Any]) -> Receipt:
        unknown = sorted(set(form) - set(WEBFORM_FIELDS))
        if unknown:
            raise ParseError(
                f"unknown form field(s) {', '.join(unknown)}; the fields are {', '.join(WEBFORM_FIELDS)}",
                source="POST /api/v1/reports",
            )
        errors: list[str] = []
        email = normalise_address(str(form.get("reporter_email") or ""))
        if email is None:
            errors.append("field 'reporter_email': a mail address is required")
        subject = str(form.get("subject") or "").strip()
        subject_fields: dict[str, Any] = {}
        try:
            subject_fields["source_identifier"] = str(ipaddress.ip_address(subject))
        except ValueError:
            parts = urlsplit(subject)
            if parts.scheme in ("http", "https") and parts.hostname:
                subject_fields = {"source_identifier": parts.hostname, "url": subject}
            else:
                errors.append("field 'subject': an IP address or an http(s) URL is required")
        description = str(form.get("description") or "").strip()
        if not description:
            errors.append("field 'description': say what happened")
        elif len(description) > _DESCRIPTION_MAX:
            errors.append(f"field 'description': at most {_DESCRIPTION_MAX} characters")
        when: datetime | None = None
        if form.get("time"):
            try:
                when = parse_time(str(form["time"]), assume_utc=True)
            except (ValueError, ParseError):
                errors.append("field 'time': an ISO 8601 time is required, e.g. 2026-03-01T09:30:00Z")
        else:
            when = self.rt.clock.now()
        kind = str(form.get("kind") or "other").strip()
        if not is_kind(kind):
            errors.append(f"field 'kind': {kind!r} is not a kind (see `abusedesk kinds`)")
        if errors:
            exc = ParseError("; ".join(errors), source="web form")
            raise exc
        assert email is not None
        assert when is not None
        category, type_ = xarf_for_kind(kind)
        fields = {"email": email, "subject": subject, "description": description, "time": iso(when), "kind": kind}
        report_id = str(uuid.UUID(sha256_hex(canonical_json(fields))[:32]))
        domain = email.split("@", 1)[1]
        doc = {
            "xarf_version": "4.0.0",
            "report_id": report_id,
            "timestamp": iso(when),
            "reporter": {"org": str(form.get("reporter_name") or domain)[:200], "contact": email, "domain": domain},
            "sender": {"org": str(form.get("reporter_name") or domain)[:200], "contact": email, "domain": domain},
            "category": category,
            "type": type_,
            "evidence_source": "user_report",
            "description": description,
            **subject_fields,
        }
        if form.get("protocol"):
            doc["protocol"] = str(form["protocol"]).strip().lower()[:20]
        if kind_from_xarf(category, type_) != kind:
            doc["abusedesk_kind"] = kind  # the nearest XARF pair loses our kind; keep it, as the XARF export does
        body = json.dumps(doc, indent=2, ensure_ascii=False).encode()
        _check_xarf(body, received_at=self.rt.clock.now())
        return self.door.receive(
            body,
            channel="http",
            meta={**meta, "webform": True, "filename": "webform.json"},
            report_ref=xarf_report_ref(email, report_id),
            reporter=email,
        )


def xarf_report_ref(reporter: str | None, report_id: str) -> str:
    """``xarf:<reporter>:<report_id>`` (hashed when long): a report id is the reporter's own, not global."""
    ref = f"xarf:{reporter or ''}:{report_id.strip()}"
    return ref if len(ref) <= 200 else "xarf:" + sha256_hex(ref.encode())


def _check_xarf(body: bytes, *, received_at: datetime) -> None:
    """Refuse a web form the XARF parser would quarantine (e.g. a scan without ``protocol``), with its reason.

    ``received_at`` is the runtime clock's time, as for every input the door records (a dry parse is no
    exception: a parser may read the receipt time, and tests and the demo drive the clock).
    """
    from abusedesk.domain.records import RawInput
    from abusedesk.parsers.base import Report
    from abusedesk.parsers.xarf import XarfParser

    raw = RawInput(id=sha256_hex(body), size=len(body), channel="http", received_at=received_at)
    try:
        for _ in XarfParser().parse(Report(raw, body)):
            pass
    except ParseError as exc:
        raise ParseError(f"web form: {exc.message}", source="web form") from None


def _multipart(body: bytes, content_type: str) -> dict[str, str]:
    msg = BytesParser(policy=policy.default).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    )
    if not msg.is_multipart():
        raise ParseError("multipart/form-data body has no parts (boundary missing?)", source="POST /api/v1/reports")
    form: dict[str, str] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True)
        form[str(name)] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return form


def find_raw(rt: Runtime, reference: str) -> RawInputRow:
    """The raw input a reference (16+ hex digits, or the whole raw id) names."""
    ref = reference.strip().lower()
    if len(ref) < 12 or len(ref) > 64 or any(c not in "0123456789abcdef" for c in ref):
        raise NotFound(f"{reference!r} is not a report reference (at least 12 hex digits)")
    with rt.sessions() as s:
        rows = list(s.scalars(select(RawInputRow).where(RawInputRow.id.startswith(ref)).limit(2)))
    if not rows:
        raise NotFound(f"no report has the reference {reference}")
    if len(rows) > 1:
        raise Conflict(f"reference {reference} names more than one report; give more digits")
    return rows[0]


def report_status(rt: Runtime, reference: str) -> dict[str, Any]:
    """What a submitter may know about their report (a duplicate's reference is the first report's own)."""
    row = find_raw(rt, reference)
    with rt.sessions() as s:
        cases = sorted(_cases_of_events(s, row.id))
    out: dict[str, Any] = {
        "reference": reference_of(row.id),
        "status": row.status,
        "received_at": iso(row.received_at),
        "channel": row.channel,
        "events": row.event_count,
        "cases": cases,
    }
    if row.status == "quarantined":
        out["reason"] = row.error
    if row.related_to:
        out["related_to"] = reference_of(row.related_to)
    return out


__all__ = ["REFERENCE_LENGTH", "HttpIntake", "Submission", "find_raw", "report_status", "xarf_report_ref"]


def _cases_of_events(s: Session, raw_id: str) -> set[str]:
    """The refs of the cases holding a finding made from one of the raw input's events.

    Narrowed through indexes before any JSON is read: the events' customers and services give the candidate cases,
    and a finding made from an event has the event's time in its window, so only those cases' findings whose
    windows reach the events' times (index ``case_id, window_end``) are checked for the event ids they carry.
    """
    events = s.execute(
        select(EventRow.id, EventRow.customer_id, EventRow.service_id, EventRow.time).where(EventRow.raw_id == raw_id)
    ).all()
    attributed = [e for e in events if e.service_id is not None]
    if not attributed:
        return set()
    event_ids = {e.id for e in attributed}
    candidates: dict[str, str] = {
        cid: ref
        for cid, ref in s.execute(
            select(CaseRow.id, CaseRow.ref).where(
                CaseRow.customer_id.in_({e.customer_id for e in attributed}),
                CaseRow.service_id.in_({e.service_id for e in attributed}),
            )
        )
    }
    refs: set[str] = set()
    ids = list(candidates)
    for i in range(0, len(ids), 500):
        rows = s.execute(
            select(FindingRow.case_id, FindingRow.data).where(
                FindingRow.case_id.in_(ids[i : i + 500]),
                FindingRow.window_end >= min(e.time for e in attributed),
                FindingRow.window_start <= max(e.time for e in attributed),
            )
        )
        for case_id, data in rows:
            if event_ids.intersection((data or {}).get("event_ids") or ()):
                refs.add(candidates[case_id])
    return refs
