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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError

from abusedesk.bus.base import Outgoing, StageBatch
from abusedesk.config import Settings
from abusedesk.domain.errors import (
    AbuseDeskError,
    Conflict,
    InputLimitExceeded,
    InputRejected,
    NotFound,
    ParseError,
)
from abusedesk.domain.ids import sha256_hex, stable_id
from abusedesk.domain.records import Event, ParseIssue, RawInput
from abusedesk.evidence import audit
from abusedesk.intake.contentkey import content_key, content_key_of_file
from abusedesk.intake.groupcommit import GroupCommit
from abusedesk.intake.hints import ParserHints
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report
from abusedesk.runtime import Runtime
from abusedesk.stages import EVENTS_PARSED, RAW_STORED
from abusedesk.store.tables.intake import EventRow, RawInputRow
from abusedesk.store.upsert import insert_new

if TYPE_CHECKING:
    from abusedesk.intake.reporters import AckReservation

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
    ack: AckReservation | None = None  # the acknowledgement counted against its limit with the stored input


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


@dataclass(frozen=True, slots=True)
class AcceptRequest:
    """One input at the door: its bytes and what the channel knows of it (see ``IntakeService.accept``)."""

    data: bytes
    channel: str
    meta: dict[str, Any] = field(default_factory=dict)
    report_ref: str | None = None
    reporter: str | None = None
    canonical: bytes | None = None
    refuse_ref_reuse: str | None = None
    #: a feed file too large to hold: streamed into the raw store from here (``data`` is then empty)
    path: Path | None = None
    #: the reporter address the door will acknowledge: its hourly limit is counted in the storing transaction
    ack_to: str | None = None

    @property
    def size(self) -> int:
        return self.path.stat().st_size if self.path is not None else len(self.data)


def _in_chunks(s: Any, entity: Any, column: Any, values: Sequence[Any], size: int = 500) -> list[Any]:
    out: list[Any] = []
    for at in range(0, len(values), size):
        out.extend(s.scalars(select(entity).where(column.in_(values[at : at + size]))))
    return out


class IntakeService:
    def __init__(self, rt: Runtime, parsers: list[Parser] | None = None) -> None:
        self.rt = rt
        self._parsers = parsers
        # concurrent accepts (SMTP sessions, HTTP requests) share one flush and one commit
        self._group: GroupCommit[AcceptRequest, Accepted | AbuseDeskError] = GroupCommit(self.accept_many)
        # checked here, at start-up: a hint naming no registered parser is a ConfigError, not a quarantined input
        self.hints = ParserHints.from_settings(rt.settings.intake.parser_hints, lambda: [p.name for p in self.parsers])

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
        canonical: bytes | None = None,
        refuse_ref_reuse: str | None = None,
    ) -> Accepted:
        """Store ``data`` durably and record it with its hand-off to the parse stage. Then it may be acked.

        A duplicate is the same content from the same reporter (``contentkey``): it is not stored again and the
        answer names the first input. The same ``report_ref`` with other content is a new input, linked to the
        first (``related_to``); with ``refuse_ref_reuse`` (a label such as "XARF report_id 'x'") it is refused with
        Conflict instead. ``canonical`` is the content to key on when the channel knows it better than the bytes.
        """
        return self.submit(
            AcceptRequest(data, channel, dict(meta or {}), report_ref, reporter, canonical, refuse_ref_reuse)
        )

    def submit(self, request: AcceptRequest) -> Accepted:
        """``accept`` for a prepared request: it shares a commit with concurrent ones (group commit); raises the
        error that refused it."""
        result = self._group.submit(request)
        if isinstance(result, Exception):
            raise result
        return result

    def accept_many(self, requests: Sequence[AcceptRequest]) -> list[Accepted | AbuseDeskError]:
        """Accept several inputs with one flush of the raw store and one transaction (group commit).

        Each answer is the input's ``Accepted``, or the error that refused it (InputRejected, Conflict): one bad
        input refuses only itself. Everything that is stored is durable when this returns.
        """
        for attempt in range(3):
            try:
                return self._accept_batch(requests)
            except IntegrityError:
                # another process stored the same content between our look-up and our insert: look again, and
                # what it stored is the first input now
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _accept_batch(self, requests: Sequence[AcceptRequest]) -> list[Accepted | AbuseDeskError]:
        lim = self.rt.settings.intake
        now = self.rt.clock.now()
        results: list[Accepted | AbuseDeskError | None] = [None] * len(requests)
        keys: list[str] = []
        for i, r in enumerate(requests):
            limit, setting = (
                (lim.max_file_bytes, "max_file_bytes") if r.path else (lim.max_input_bytes, "max_input_bytes")
            )
            if r.size > limit:
                keys.append("")
                results[i] = InputRejected(
                    f"input of {r.size} bytes from channel {r.channel} is over the limit of {limit} bytes "
                    f"(setting intake.{setting}); it was not stored"
                )
            elif r.path is not None:
                keys.append(content_key_of_file(r.path, reporter=r.reporter))
            else:
                keys.append(content_key(r.data, reporter=r.reporter, canonical=r.canonical))
        fresh: list[int] = []
        new_rows: list[RawInputRow] = []
        acks: list[AckReservation | None] = []
        with self.rt.sessions.begin() as s:
            wanted = sorted({k for i, k in enumerate(keys) if results[i] is None})
            existing = {row.content_key: row for row in _in_chunks(s, RawInputRow, RawInputRow.content_key, wanted)}
            refs = sorted({r.report_ref for r in requests if r.report_ref})
            related_of: dict[str, str] = {}
            # the first input with a ref is the one not related to another (received_at may tie)
            for row in sorted(
                _in_chunks(s, RawInputRow, RawInputRow.report_ref, refs),
                key=lambda r: (r.related_to is not None, r.received_at, r.id),
            ):
                related_of.setdefault(str(row.report_ref), row.id)
            first_in_batch: dict[str, int] = {}
            for i, r in enumerate(requests):
                if results[i] is not None:
                    continue
                key = keys[i]
                if key in existing:
                    row = existing[key]
                    results[i] = Accepted(row_to_raw(row), duplicate=True, duplicate_of=row.id)
                    continue
                if key in first_in_batch:
                    continue  # a copy of an input earlier in this batch: answered once that one has its row
                related = related_of.get(r.report_ref) if r.report_ref else None
                if related and r.refuse_ref_reuse:
                    results[i] = Conflict(
                        f"{r.refuse_ref_reuse} was already received from {r.reporter or 'this sender'} as report "
                        f"{related[:16]} with other content; a new report needs a new id (sending the same "
                        "report again is safe)"
                    )
                    continue
                first_in_batch[key] = i
                fresh.append(i)
            if fresh:
                # the bytes go to disk (one flush for the batch) before the rows that name them are committed
                in_memory = [i for i in fresh if requests[i].path is None]
                sha_of = dict(zip(in_memory, self.rt.raw_store.put_many([requests[i].data for i in in_memory]),
                                  strict=True))  # fmt: skip
                for i in fresh:
                    path = requests[i].path
                    if path is not None:  # a large feed: copied a chunk at a time, its own fsync
                        sha_of[i] = self.rt.raw_store.put_file(path)[0]
                shas = [sha_of[i] for i in fresh]
                taken = {row.id for row in _in_chunks(s, RawInputRow, RawInputRow.id, sorted(set(shas)))}
                counts: dict[str, list[int]] = {}
                entries: list[dict[str, Any]] = []
                for i, sha in zip(fresh, shas, strict=True):
                    r = requests[i]
                    raw_id = derived_raw_id(sha, keys[i]) if sha in taken else sha
                    taken.add(sha)
                    related = related_of.get(r.report_ref) if r.report_ref else None
                    if r.report_ref and related is None:
                        related_of[r.report_ref] = raw_id  # a later input of this batch with the ref links here
                    row = RawInputRow(
                        id=raw_id, blob=sha, content_key=keys[i], size=r.size, channel=r.channel,
                        received_at=now, meta=r.meta, status="stored", reporter=r.reporter,
                        report_ref=r.report_ref, related_to=related,
                    )  # fmt: skip
                    new_rows.append(row)
                    entries.append(
                        {"at": now, "actor": f"channel:{r.channel}", "action": "raw.stored",
                         "subject_type": "raw_input", "subject_id": raw_id,
                         "payload": {"size": r.size, "meta": r.meta, "status": "stored", "related_to": related}}
                    )  # fmt: skip
                    if r.reporter:
                        counts.setdefault(r.reporter, [0, 0])[0] += 1
                s.add_all(new_rows)
                s.flush()
                audit.append_many(s, entries)
                # the hand-offs to the parse stage commit with the inputs: a crash cannot strand one
                self.rt.bus.put_many(s, [Outgoing(RAW_STORED, {"raw_id": row.id}) for row in new_rows])
                if counts:
                    from abusedesk.intake.reporters import add_counts

                    add_counts(s, counts, now)
                acks = self._reserve_acks(s, [requests[i] for i in fresh], now)
        if fresh:
            self.rt.bus.flush()
        for n, (i, row) in enumerate(zip(fresh, new_rows, strict=True)):
            results[i] = Accepted(row_to_raw(row), related_to=row.related_to, ack=acks[n])
        by_key = {keys[i]: row for i, row in zip(fresh, new_rows, strict=True)}
        for i, result in enumerate(results):
            if result is None:  # a copy of an input earlier in the batch
                row = by_key[keys[i]]
                results[i] = Accepted(row_to_raw(row), duplicate=True, duplicate_of=row.id)
        return [r for r in results if r is not None]

    def _reserve_acks(self, s: Any, requests: list[AcceptRequest], now: Any) -> list[AckReservation | None]:
        """The acknowledgements of new inputs counted against their reporters' hourly limits, in the transaction
        that stores the inputs: one commit for the batch instead of one per reply."""
        if not any(r.ack_to for r in requests):
            return [None] * len(requests)
        from abusedesk.intake.reporters import reserve_ack

        cfg = self.rt.settings.intake
        limit, domain_limit = cfg.ack_per_reporter_per_hour, cfg.ack_per_domain_per_hour
        return [reserve_ack(s, r.ack_to, now, limit, domain_limit) if r.ack_to else None for r in requests]

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
        # the audit chain's lock before the reporters' rows, as at the door (accept_many): the reverse order
        # deadlocked a door storing while parse workers ran (PostgreSQL)
        audit.append(
            s,
            at=self.rt.clock.now(),
            actor="stage:parse",
            action="raw.parsed",
            subject_type="parse_batch",
            subject_id=outcomes[0].raw_id if len(outcomes) == 1 else stable_id("pb", [o.raw_id for o in outcomes]),
            payload={"inputs": [o.audit_record() for o in outcomes]},
        )
        if counts:
            from abusedesk.intake.reporters import add_counts

            add_counts(s, counts, self.rt.clock.now())
        return outcomes

    def _parse_one(
        self, batch: StageBatch, row: RawInputRow, pending: list[Event], new_by_raw: dict[str, int]
    ) -> ParseOutcome:
        raw = row_to_raw(row)
        raw_id = raw.id
        blob = row.blob or raw_id
        self.rt.raw_store.open(blob).close()  # NotFound here, not as "format unknown" from a sniffer
        report = Report(raw, opener=lambda: self.rt.raw_store.open(blob), limits=input_limits(self.rt.settings))
        outcome = ParseOutcome(raw_id=raw_id, status="quarantined")
        skip = row.parse_progress  # events a cut-short earlier run committed already
        seen = 0
        handed_on = skip > 0
        first_reporter: str | None = None
        try:
            parser = self._sniff(report)
        except InputLimitExceeded as exc:  # a bound passed while sniffing: that is the reason, not "format unknown"
            parser, outcome.error = None, exc.message
        if parser is None:
            outcome.error = outcome.error or "no parser recognises this input (format unknown)"
        else:
            outcome.parser = parser.name
            try:
                if parser.hands_on is not None:  # telemetry (an egress log): read in columns by a stage of its own
                    batch.emit(parser.hands_on, {"raw_id": raw_id, **parser.hand_on(report)}, key=raw_id)
                    outcome.status, handed_on = "parsed", True
                for item in () if parser.hands_on is not None else parser.parse(report):
                    if isinstance(item, Event):
                        seen += 1
                        if seen <= skip:
                            continue
                        event = item if item.raw_id else _with_raw(item, raw_id)
                        first_reporter = first_reporter or event.reporter
                        outcome.events.append(event)
                        pending.append(event)
                        if len(pending) >= CHUNK_EVENTS:
                            self._store_events(batch, pending, new_by_raw)
                            row.parse_progress = seen
                            handed_on = True
                            batch.checkpoint()
                            outcome.events.clear()  # committed and handed on: memory stays bounded by a chunk
                    else:
                        outcome.issues.append(item)
                if seen or outcome.status == "parsed":
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
        if outcome.status == "parsed" and not row.reporter and first_reporter:
            row.reporter = first_reporter
            outcome.reporter_found = True  # the door did not know it: this input counts as its report now
        return outcome

    def _store_events(self, batch: StageBatch, pending: list[Event], new_by_raw: dict[str, int]) -> None:
        """Insert the pending events (existing ids are left alone), hand them on, and empty ``pending``;
        ``new_by_raw`` counts the new rows per raw input."""
        if not pending:
            return
        inserted = insert_new(batch.session, cast(Table, EventRow.__table__), [event_row(e) for e in pending])
        for row in inserted:
            new_by_raw[row["raw_id"]] = new_by_raw.get(row["raw_id"], 0) + 1
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
            except InputLimitExceeded:
                raise
            except RecursionError:
                raise InputLimitExceeded(
                    f"parser {parser.name} recursed too deeply while sniffing; the input is nested deeper than "
                    "Python can follow (setting intake.max_mime_depth limits MIME nesting)"
                ) from None
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


def input_limits(settings: Settings) -> mime.Limits:
    """The bounds on one input, from the intake settings (docs/admin/intake.md, "Limits")."""
    lim = settings.intake
    return mime.Limits(
        max_unpacked=lim.max_unpacked_bytes,
        max_ratio=lim.max_unpack_ratio,
        max_nesting=lim.max_mime_depth,
        max_seconds=lim.max_parse_seconds,
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
