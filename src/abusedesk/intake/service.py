"""Accepting raw input, and the parse stage that turns it into Events or quarantines it.

``IntakeService.accept`` is the one door every channel uses: it refuses what is too large, stores the bytes
durably (fsync'd, content-addressed), records the raw input, writes the audit entry, and only then returns, so
a channel may acknowledge (SMTP 250, HTTP 202) once ``accept`` has returned. The same bytes sent twice are
recognised as the same input, and so is a re-sent report with the same external id (XARF ``report_id``,
``Message-ID`` of a complaint).

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

from abusedesk.domain.errors import InputRejected, NotFound, ParseError
from abusedesk.domain.records import Event, ParseIssue, RawInput
from abusedesk.evidence import audit
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
    """What ``accept`` stored: the raw input, and whether it had been seen before (same bytes or report id)."""

    raw: RawInput
    duplicate: bool = False
    duplicate_of: str | None = None


@dataclass(slots=True)
class ParseOutcome:
    raw_id: str
    status: str  # parsed | quarantined
    parser: str | None = None
    events: list[Event] = field(default_factory=list)
    issues: list[ParseIssue] = field(default_factory=list)
    error: str | None = None


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

            self._parsers = load_parsers(self.rt.settings)
        return self._parsers

    def accept(
        self,
        data: bytes,
        *,
        channel: str,
        meta: dict[str, Any] | None = None,
        report_ref: str | None = None,
        reporter: str | None = None,
    ) -> Accepted:
        """Store ``data`` durably and record it; publish ``raw.stored`` for a new input. Then it may be acked."""
        limit = self.rt.settings.intake.max_input_bytes
        if len(data) > limit:
            raise InputRejected(
                f"input of {len(data)} bytes from channel {channel} is over the limit of {limit} bytes "
                "(setting intake.max_input_bytes); it was not stored"
            )
        sha, _ = self.rt.raw_store.put(data)
        now = self.rt.clock.now()
        meta = dict(meta or {})
        with self.rt.sessions.begin() as s:
            existing = s.get(RawInputRow, sha)
            if existing is not None:
                return Accepted(row_to_raw(existing), duplicate=True, duplicate_of=sha)
            dup_of = None
            if report_ref:
                dup_of = s.scalar(
                    select(RawInputRow.id)
                    .where(RawInputRow.report_ref == report_ref, RawInputRow.channel == channel)
                    .limit(1)
                )
            status = "duplicate" if dup_of else "stored"
            row = RawInputRow(
                id=sha,
                size=len(data),
                channel=channel,
                received_at=now,
                meta=meta,
                status=status,
                reporter=reporter,
                report_ref=report_ref,
                error=f"same report id {report_ref!r} as raw input {dup_of}" if dup_of else None,
            )
            s.add(row)
            s.flush()
            audit.append(
                s,
                at=now,
                actor=f"channel:{channel}",
                action="raw.stored",
                subject_type="raw_input",
                subject_id=sha,
                payload={"size": len(data), "meta": meta, "status": status},
            )
            raw = row_to_raw(row)
        if dup_of:
            return Accepted(raw, duplicate=True, duplicate_of=dup_of)
        self.rt.bus.publish(RAW_STORED, {"raw_id": sha})
        return Accepted(raw)

    def parse(self, raw_id: str) -> ParseOutcome:
        """Parse one stored input and record the outcome; safe to run again on the same input."""
        with self.rt.sessions() as s:
            row = s.get(RawInputRow, raw_id)
            if row is None:
                raise NotFound(f"raw input {raw_id} is not recorded")
            raw = row_to_raw(row)
        data = self.rt.raw_store.get(raw_id)
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
