"""Accepting raw input, and the parse stage that turns it into Events or quarantines it.

``IntakeService.accept`` is the one door every channel uses: it refuses what is too large, stores the bytes
durably (fsync'd, content-addressed), records the raw input, writes the audit entry, and only then returns, so
a channel may acknowledge (SMTP 250, HTTP 202) once ``accept`` has returned. An input is a duplicate of an
earlier one only when it has the same content (``intake.contentkey``: for mail, the bytes without the header
fields added in transit) from the same reporter; one unique, indexed ``content_key`` answers that. The same
external id (XARF ``report_id``, a complaint's ``Message-ID``) with other content is a new input, parsed, and
linked to the first one (``related_to``).

The parse stage (``ParseStage``) reads ``raw.stored`` messages: it sniffs the format, parses, stores the Events
(ids are deterministic, so a replay inserts nothing new) and publishes ``events.parsed``. An input no parser
recognises, or whose parser raises ParseError, is quarantined with the reason; ``retry`` re-runs quarantined
inputs after a parser fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError

from abusedesk.domain.errors import Conflict, InputRejected, NotFound, ParseError
from abusedesk.domain.ids import sha256_hex
from abusedesk.domain.records import Event, ParseIssue, RawInput
from abusedesk.evidence import audit
from abusedesk.intake.contentkey import content_key
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import EventRow, RawInputRow
from abusedesk.store.upsert import insert_ignore

log = logging.getLogger(__name__)

RAW_STORED = "raw.stored"
EVENTS_PARSED = "events.parsed"


@dataclass(frozen=True, slots=True)
class Accepted:
    """What ``accept`` stored: the raw input, or the earlier one with the same content from the same reporter."""

    raw: RawInput
    duplicate: bool = False
    duplicate_of: str | None = None
    related_to: str | None = None  # a new input with the report_ref of this earlier one (other content)


@dataclass(slots=True)
class ParseOutcome:
    raw_id: str
    status: str  # parsed | quarantined
    parser: str | None = None
    events: list[Event] = field(default_factory=list)
    issues: list[ParseIssue] = field(default_factory=list)
    error: str | None = None


def derived_raw_id(sha: str, key: str) -> str:
    """The id of an input whose bytes another reporter's input already has (its id is the bytes' SHA-256)."""
    return sha256_hex(f"{sha}:{key}".encode())


def row_to_raw(row: RawInputRow) -> RawInput:
    return RawInput(id=row.id, size=row.size, channel=row.channel, received_at=row.received_at, meta=dict(row.meta))


def event_row(event: Event) -> dict[str, Any]:
    """The events-table row of an Event (the whole event is also kept in ``data``)."""
    return {
        "id": event.id,
        "raw_id": event.raw_id,
        "kind": event.kind,
        "time": event.time,
        "feed": event.feed,
        "reporter": event.reporter,
        "source_ip": event.source_ip,
        "source_url": event.source_url,
        "confidence": event.confidence,
        "customer_id": event.customer_id,
        "project_id": event.project_id,
        "service_id": event.service_id,
        "disposition": "triage" if event.extra.get("triage") else "new",
        "data": event.to_dict(),
    }


class IntakeService:
    def __init__(self, rt: Runtime, parsers: list[Parser] | None = None) -> None:
        self.rt = rt
        self._parsers = parsers

    @property
    def parsers(self) -> list[Parser]:
        if self._parsers is None:
            from abusedesk.plugins import load_parsers

            self._parsers = load_parsers()
        return self._parsers

    def accept(
        self,
        data: bytes,
        *,
        channel: str,
        meta: dict[str, Any] | None = None,
        report_ref: str | None = None,
        reporter: str | None = None,
        canonical: bytes | None = None,
        refuse_ref_reuse: str | None = None,
    ) -> Accepted:
        """Store ``data`` durably and record it; publish ``raw.stored`` for a new input. Then it may be acked.

        A duplicate is the same content from the same reporter (``contentkey``): it is not stored again and the
        answer names the first input. The same ``report_ref`` with other content is a new input, linked to the
        first (``related_to``); with ``refuse_ref_reuse`` (a label such as "XARF report_id 'x'") it is refused with
        Conflict instead. ``canonical`` is the content to key on when the channel knows it better than the bytes.
        """
        limit = self.rt.settings.intake.max_input_bytes
        if len(data) > limit:
            raise InputRejected(
                f"input of {len(data)} bytes from channel {channel} is over the limit of {limit} bytes "
                "(setting intake.max_input_bytes); it was not stored"
            )
        key = content_key(data, reporter=reporter, canonical=canonical)
        now = self.rt.clock.now()
        meta = dict(meta or {})
        try:
            with self.rt.sessions.begin() as s:
                existing = s.scalar(select(RawInputRow).where(RawInputRow.content_key == key))
                if existing is not None:
                    return Accepted(row_to_raw(existing), duplicate=True, duplicate_of=existing.id)
                related = None
                if report_ref:
                    # the first input with this ref is the one not related to another (received_at may tie)
                    related = s.scalar(
                        select(RawInputRow.id)
                        .where(RawInputRow.report_ref == report_ref)
                        .order_by(RawInputRow.related_to.is_not(None), RawInputRow.received_at, RawInputRow.id)
                        .limit(1)
                    )
                if related and refuse_ref_reuse:
                    raise Conflict(
                        f"{refuse_ref_reuse} was already received from {reporter or 'this sender'} as report "
                        f"{related[:16]} with other content; a new report needs a new id (sending the same "
                        "report again is safe)"
                    )
                # the bytes go to disk (fsync'd) before the row that names them is committed
                sha, _ = self.rt.raw_store.put(data)
                raw_id = sha if s.get(RawInputRow, sha) is None else derived_raw_id(sha, key)
                row = RawInputRow(
                    id=raw_id,
                    blob=sha,
                    content_key=key,
                    size=len(data),
                    channel=channel,
                    received_at=now,
                    meta=meta,
                    status="stored",
                    reporter=reporter,
                    report_ref=report_ref,
                    related_to=related,
                )
                s.add(row)
                s.flush()
                audit.append(
                    s,
                    at=now,
                    actor=f"channel:{channel}",
                    action="raw.stored",
                    subject_type="raw_input",
                    subject_id=raw_id,
                    payload={"size": len(data), "meta": meta, "status": "stored", "related_to": related},
                )
                raw = row_to_raw(row)
        except IntegrityError:
            # another process stored the same content between our look-up and our insert: that one is the input
            with self.rt.sessions() as s:
                first = s.scalar(select(RawInputRow).where(RawInputRow.content_key == key))
            if first is None:
                raise
            return Accepted(row_to_raw(first), duplicate=True, duplicate_of=first.id)
        self.rt.bus.publish(RAW_STORED, {"raw_id": raw_id})
        return Accepted(raw, related_to=related)

    def parse(self, raw_id: str) -> ParseOutcome:
        """Parse one stored input and record the outcome; safe to run again on the same input."""
        with self.rt.sessions() as s:
            row = s.get(RawInputRow, raw_id)
            if row is None:
                raise NotFound(f"raw input {raw_id} is not recorded")
            raw = row_to_raw(row)
            blob = row.blob
        data = self.rt.raw_store.get(blob)
        lim = self.rt.settings.intake
        report = Report(
            raw, data, limits=mime.Limits(max_unpacked=lim.max_unpacked_bytes, max_ratio=lim.max_unpack_ratio)
        )
        outcome = ParseOutcome(raw_id=raw_id, status="quarantined")
        parser = self._sniff(report)
        if parser is None:
            outcome.error = "no parser recognises this input (format unknown)"
        else:
            outcome.parser = parser.name
            try:
                for item in parser.parse(report):
                    if isinstance(item, Event):
                        outcome.events.append(item if item.raw_id else _with_raw(item, raw_id))
                    else:
                        outcome.issues.append(item)
                if outcome.events:
                    outcome.status = "parsed"
                else:
                    reasons = "; ".join(i.reason for i in outcome.issues[:3])
                    outcome.error = f"parser {parser.name} found no events" + (f": {reasons}" if reasons else "")
            except ParseError as exc:
                outcome.error = f"parser {parser.name}: {exc.message}"
            except Exception as exc:
                log.exception("parser %s crashed on raw input %s", parser.name, raw_id)
                outcome.error = f"parser {parser.name} crashed: {type(exc).__name__}: {exc}"
                outcome.events.clear()
        self._record(raw, outcome)
        if outcome.status == "parsed":
            self.rt.bus.publish(EVENTS_PARSED, {"raw_id": raw_id, "events": [e.to_dict() for e in outcome.events]})
        return outcome

    def _sniff(self, report: Report) -> Parser | None:
        forced = report.raw.meta.get("parser")
        for parser in self.parsers:
            if forced and parser.name == forced:
                return parser
        if forced:
            return None
        for parser in self.parsers:
            try:
                if parser.recognises(report):
                    return parser
            except Exception:
                log.exception("parser %s failed while sniffing raw input %s", parser.name, report.raw.id)
        return None

    def _record(self, raw: RawInput, outcome: ParseOutcome) -> None:
        now = self.rt.clock.now()
        with self.rt.sessions.begin() as s:
            row = s.get(RawInputRow, raw.id)
            assert row is not None
            row.status = outcome.status
            row.parser = outcome.parser
            row.error = outcome.error
            row.attempts += 1
            row.event_count = len(outcome.events)
            row.issues = [{"reason": i.reason, "line": i.line, "offset": i.offset} for i in outcome.issues[:100]]
            row.parsed_at = now
            if outcome.events:
                row.reporter = row.reporter or outcome.events[0].reporter
            inserted = insert_ignore(s, cast(Table, EventRow.__table__), [event_row(e) for e in outcome.events])
            audit.append(
                s,
                at=now,
                actor=f"parser:{outcome.parser or '-'}",
                action="raw.parsed" if outcome.status == "parsed" else "raw.quarantined",
                subject_type="raw_input",
                subject_id=raw.id,
                payload={
                    "events": len(outcome.events),
                    "new_events": inserted,
                    "issues": len(outcome.issues),
                    "error": outcome.error,
                },
            )

    def handle_stored(self, message: dict[str, Any]) -> None:
        self.parse(str(message["raw_id"]))

    def retry(self, raw_ids: list[str] | None = None, *, status: str = "quarantined") -> list[ParseOutcome]:
        """Re-run inputs (default: every quarantined one) through the parsers, e.g. after a parser fix."""
        with self.rt.sessions() as s:
            if raw_ids is None:
                raw_ids = list(
                    s.scalars(
                        select(RawInputRow.id).where(RawInputRow.status == status).order_by(RawInputRow.received_at)
                    )
                )
        return [self.parse(r) for r in raw_ids]

    def quarantined(self, limit: int = 100) -> list[RawInputRow]:
        with self.rt.sessions() as s:
            return list(
                s.scalars(
                    select(RawInputRow)
                    .where(RawInputRow.status == "quarantined")
                    .order_by(RawInputRow.received_at.desc())
                    .limit(limit)
                )
            )


def _with_raw(event: Event, raw_id: str) -> Event:
    import dataclasses

    return dataclasses.replace(event, raw_id=raw_id)
