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

from abusedesk.bus.base import StageBatch
from abusedesk.domain.errors import Conflict, InputRejected, NotFound, ParseError
from abusedesk.domain.ids import sha256_hex, stable_id
from abusedesk.domain.records import Event, ParseIssue, RawInput
from abusedesk.evidence import audit
from abusedesk.intake.contentkey import content_key
from abusedesk.intake.hints import ParserHints
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report
from abusedesk.runtime import Runtime
from abusedesk.stages import EVENTS_PARSED, RAW_STORED
from abusedesk.store.tables.intake import EventRow, RawInputRow
from abusedesk.store.upsert import insert_ignore_returning

log = logging.getLogger(__name__)

#: events of one input kept in memory before they are committed and handed on (a large feed is parsed in chunks)
CHUNK_EVENTS = 5000


@dataclass(frozen=True, slots=True)
class Accepted:
    """What ``accept`` stored: the raw input, or the earlier one with the same content from the same reporter."""

    raw: RawInput
    duplicate: bool = False
    duplicate_of: str | None = None
    related_to: str | None = None  # a new input with the report_ref of this earlier one (other content)


@dataclass(slots=True)
class ParseOutcome:
    """What parsing one input gave. ``events`` are those of this run (a resumed parse skips committed chunks);
    ``event_total`` counts them all, ``new_events`` those not already stored."""

    raw_id: str
    status: str  # parsed | quarantined
    parser: str | None = None
    events: list[Event] = field(default_factory=list)
    issues: list[ParseIssue] = field(default_factory=list)
    error: str | None = None
    new_events: int = 0
    event_total: int = 0
    reporter_found: bool = False

    def audit_record(self) -> dict[str, Any]:
        return {
            "raw_id": self.raw_id,
            "status": self.status,
            "parser": self.parser,
            "events": self.event_total,
            "new_events": self.new_events,
            "issues": len(self.issues),
            "error": self.error,
        }


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
        # checked here, at start-up: a hint naming no registered parser is a ConfigError, not a quarantined input
        self.hints = ParserHints.from_settings(rt.settings.intake.parser_hints, lambda: [p.name for p in self.parsers])

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
        """Store ``data`` durably and record it with its hand-off to the parse stage. Then it may be acked.

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
                # the hand-off to the parse stage commits with the input: a crash cannot strand it
                self.rt.bus.put(s, RAW_STORED, {"raw_id": raw_id})
                if reporter:
                    from abusedesk.intake.reporters import add_counts

                    add_counts(s, {reporter: [1, 0]}, now)
        except IntegrityError:
            # another process stored the same content between our look-up and our insert: that one is the input
            with self.rt.sessions() as s:
                first = s.scalar(select(RawInputRow).where(RawInputRow.content_key == key))
            if first is None:
                raise
            return Accepted(row_to_raw(first), duplicate=True, duplicate_of=first.id)
        self.rt.bus.flush()
        return Accepted(raw, related_to=related)

    def parse(self, raw_id: str) -> ParseOutcome:
        """Parse one stored input now, in a transaction of its own, and hand its events on; safe to run again.

        The parse stage does the same for a batch (``ParseStage``); this is the direct call of ``intake retry``.
        """
        with self.rt.sessions() as session:
            session.begin()
            batch = StageBatch(session, [{"raw_id": raw_id}], bus=self.rt.bus, stage="parse")
            try:
                outcomes = self.parse_batch(batch)
                batch.write_outputs()
                session.commit()
            except BaseException:
                session.rollback()
                raise
        self.rt.bus.flush()
        return outcomes[0]

    def parse_batch(self, batch: StageBatch) -> list[ParseOutcome]:
        """Parse every input named in ``batch`` inside its transaction: events stored, inputs' status recorded,
        reporters' counts moved on, one audit entry for the batch, and one ``events.parsed`` message handed on.

        An input whose events outgrow ``CHUNK_EVENTS`` is committed in chunks (``batch.checkpoint``); its
        ``parse_progress`` says how many events are committed, so a parse resumed after a crash skips them.
        """
        s = batch.session
        raw_ids = [str(m["raw_id"]) for m in batch.messages]
        rows = {r.id: r for r in s.scalars(select(RawInputRow).where(RawInputRow.id.in_(raw_ids)))}
        missing = [r for r in raw_ids if r not in rows]
        if missing:
            raise NotFound(f"raw input {missing[0]} is not recorded")
        outcomes: list[ParseOutcome] = []
        pending: list[Event] = []
        new_by_raw: dict[str, int] = {}
        for raw_id in dict.fromkeys(raw_ids):
            outcomes.append(self._parse_one(batch, rows[raw_id], pending, new_by_raw))
        self._store_events(batch, pending, new_by_raw)
        counts: dict[str, list[int]] = {}
        for outcome in outcomes:
            outcome.new_events = new_by_raw.get(outcome.raw_id, 0)
            reporter = rows[outcome.raw_id].reporter
            if reporter and (outcome.new_events or outcome.reporter_found):
                count = counts.setdefault(reporter, [0, 0])
                count[0] += int(outcome.reporter_found)
                count[1] += outcome.new_events
        if counts:
            from abusedesk.intake.reporters import add_counts

            add_counts(s, counts, self.rt.clock.now())
        audit.append(
            s,
            at=self.rt.clock.now(),
            actor="stage:parse",
            action="raw.parsed",
            subject_type="parse_batch",
            subject_id=outcomes[0].raw_id if len(outcomes) == 1 else stable_id("pb", [o.raw_id for o in outcomes]),
            payload={"inputs": [o.audit_record() for o in outcomes]},
        )
        return outcomes

    def _parse_one(
        self, batch: StageBatch, row: RawInputRow, pending: list[Event], new_by_raw: dict[str, int]
    ) -> ParseOutcome:
        raw = row_to_raw(row)
        raw_id = raw.id
        data = self.rt.raw_store.get(row.blob or raw_id)
        lim = self.rt.settings.intake
        report = Report(
            raw, data, limits=mime.Limits(max_unpacked=lim.max_unpacked_bytes, max_ratio=lim.max_unpack_ratio)
        )
        outcome = ParseOutcome(raw_id=raw_id, status="quarantined")
        skip = row.parse_progress  # events a cut-short earlier run committed already
        seen = 0
        handed_on = skip > 0
        parser = self._sniff(report)
        if parser is None:
            outcome.error = "no parser recognises this input (format unknown)"
        else:
            outcome.parser = parser.name
            try:
                for item in parser.parse(report):
                    if isinstance(item, Event):
                        seen += 1
                        if seen <= skip:
                            continue
                        event = item if item.raw_id else _with_raw(item, raw_id)
                        outcome.events.append(event)
                        pending.append(event)
                        if len(pending) >= CHUNK_EVENTS:
                            self._store_events(batch, pending, new_by_raw)
                            row.parse_progress = seen
                            handed_on = True
                            batch.checkpoint()
                    else:
                        outcome.issues.append(item)
                if seen:
                    outcome.status = "parsed"
                else:
                    reasons = "; ".join(i.reason for i in outcome.issues[:3])
                    outcome.error = f"parser {parser.name} found no events" + (f": {reasons}" if reasons else "")
            except ParseError as exc:
                outcome.error = f"parser {parser.name}: {exc.message}"
            except RecursionError:
                outcome.error = f"parser {parser.name}: the input is nested too deeply to read"
            except Exception as exc:
                log.exception("parser %s crashed on raw input %s", parser.name, raw_id)
                outcome.error = f"parser {parser.name} crashed: {type(exc).__name__}: {exc}"
            if outcome.status != "parsed" and seen:
                if handed_on:  # chunks went on already: keep what was read, say where it broke
                    outcome.error = f"{outcome.error} (after {seen} events, which were kept)"
                else:  # nothing of this input was handed on: drop what it yielded before it failed
                    pending[:] = [e for e in pending if e.raw_id != raw_id]
                    outcome.events.clear()
        outcome.event_total = seen if outcome.status == "parsed" else 0
        row.status = outcome.status
        row.parser = outcome.parser
        row.error = outcome.error
        row.attempts += 1
        row.event_count = outcome.event_total
        row.issues = [{"reason": i.reason, "line": i.line, "offset": i.offset} for i in outcome.issues[:100]]
        row.parsed_at = self.rt.clock.now()
        row.parse_progress = 0
        if outcome.events and not row.reporter and outcome.events[0].reporter:
            row.reporter = outcome.events[0].reporter
            outcome.reporter_found = True  # the door did not know it: this input counts as its report now
        return outcome

    def _store_events(self, batch: StageBatch, pending: list[Event], new_by_raw: dict[str, int]) -> None:
        """Insert the pending events (existing ids are left alone), hand them on, and empty ``pending``;
        ``new_by_raw`` counts the new rows per raw input."""
        if not pending:
            return
        inserted = insert_ignore_returning(
            batch.session, cast(Table, EventRow.__table__), [event_row(e) for e in pending], EventRow.raw_id
        )
        for (raw_id,) in inserted:
            new_by_raw[raw_id] = new_by_raw.get(raw_id, 0) + 1
        batch.emit(EVENTS_PARSED, {"events": [e.to_dict() for e in pending]})
        pending.clear()

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


class ParseStage:
    """The parse stage (``raw.stored``): a batch of stored inputs parsed in one transaction."""

    def __init__(self, rt: Runtime) -> None:
        self.intake = IntakeService(rt)

    def handle(self, batch: StageBatch) -> None:
        self.intake.parse_batch(batch)
