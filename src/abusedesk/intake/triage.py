"""TriageService: what waits for an analyst: quarantined inputs and events marked for triage.

An analyst lists the queue, reads an input's raw bytes (as received), releases a quarantined input to be parsed
again (after a parser fix), discards one with a reason (its bytes are kept), or promotes an input or event to a
case under a clause they name: the promotion is a finding of the ``triage`` detector, so it goes through the case
engine like any other and opens or joins the case of its customer, service and clause. Every change names the
analyst's user id in the audit log.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from abusedesk.domain.errors import Conflict, NotFound
from abusedesk.domain.identity import Can, Principal
from abusedesk.domain.records import Finding
from abusedesk.domain.timeutil import iso
from abusedesk.evidence import audit
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import EventRow, RawInputRow
from abusedesk.store.tables.inventory import ProjectRow, ServiceRow


def raw_dict(row: RawInputRow) -> dict[str, Any]:
    return {
        "type": "raw",
        "id": row.id,
        "status": row.status,
        "channel": row.channel,
        "received_at": iso(row.received_at),
        "size": row.size,
        "parser": row.parser,
        "reason": row.error,
        "filename": (row.meta or {}).get("filename"),
    }


def event_dict(row: EventRow) -> dict[str, Any]:
    return {
        "type": "event",
        "id": row.id,
        "raw_id": row.raw_id,
        "kind": row.kind,
        "time": iso(row.time),
        "source_ip": row.source_ip,
        "source_url": row.source_url,
        "reporter": row.reporter,
        "customer_id": row.customer_id,
        "service_id": row.service_id,
        "disposition": row.disposition,
        "confidence": row.confidence,
    }


class TriageService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def queue(self, by: Principal, *, limit: int = 100) -> list[dict[str, Any]]:
        """Quarantined inputs and events for triage, newest first."""
        by.require(Can.TRIAGE_READ)
        with self.rt.sessions() as s:
            raws = s.scalars(
                select(RawInputRow)
                .where(RawInputRow.status == "quarantined")
                .order_by(RawInputRow.received_at.desc())
                .limit(limit)
            )
            events = s.scalars(
                select(EventRow).where(EventRow.disposition == "triage").order_by(EventRow.time.desc()).limit(limit)
            )
            return [raw_dict(r) for r in raws] + [event_dict(e) for e in events]

    def raw(self, by: Principal, raw_id: str) -> tuple[dict[str, Any], bytes]:
        """An input's facts and its bytes exactly as received."""
        by.require(Can.TRIAGE_READ)
        with self.rt.sessions() as s:
            row = s.get(RawInputRow, raw_id)
            if row is None:
                raise NotFound(f"raw input {raw_id!r} does not exist")
            info = raw_dict(row)
            blob = row.blob
        return info, self.rt.raw_store.get(blob)

    def event(self, by: Principal, event_id: str) -> dict[str, Any]:
        """One event's facts (what its report said and how attribution went), for an analyst to decide on."""
        by.require(Can.TRIAGE_READ)
        with self.rt.sessions() as s:
            row = s.get(EventRow, event_id)
            if row is None:
                raise NotFound(f"event {event_id!r} does not exist")
            return event_dict(row) | {
                "feed": row.feed,
                "project_id": row.project_id,
                "extra": dict((row.data or {}).get("extra") or {}),
            }

    def release(self, by: Principal, raw_id: str) -> dict[str, Any]:
        """Parse a quarantined input again; it stays quarantined (with the new reason) if it still fails."""
        by.require(Can.TRIAGE_CHANGE)
        from abusedesk.intake.service import IntakeService

        with self.rt.sessions() as s, s.begin():
            row = s.get(RawInputRow, raw_id)
            if row is None:
                raise NotFound(f"raw input {raw_id!r} does not exist")
            if row.status != "quarantined":
                raise Conflict(f"raw input {raw_id} is {row.status}, not quarantined; nothing to release")
            audit.append(
                s,
                at=self.rt.clock.now(),
                actor=by.id,
                action="raw.released",
                subject_type="raw_input",
                subject_id=raw_id,
                payload={"reason": row.error},
            )
        [outcome] = IntakeService(self.rt).retry([raw_id])
        self.rt.drain()
        return {"id": raw_id, "status": outcome.status, "parser": outcome.parser, "error": outcome.error}

    def discard(self, by: Principal, raw_id: str, *, reason: str) -> dict[str, Any]:
        """Set a quarantined input aside for good (spam to the abuse address, a test, a duplicate the content key
        missed): it leaves the queue, its bytes stay in the raw store, and the audit log names who and why."""
        by.require(Can.TRIAGE_CHANGE)
        if not reason.strip():
            raise Conflict("discarding an input needs a reason")
        with self.rt.sessions() as s, s.begin():
            row = s.get(RawInputRow, raw_id)
            if row is None:
                raise NotFound(f"raw input {raw_id!r} does not exist")
            if row.status != "quarantined":
                raise Conflict(
                    f"raw input {raw_id} is {row.status}, not quarantined; only quarantined input is discarded"
                )
            row.status = "discarded"
            audit.append(
                s,
                at=self.rt.clock.now(),
                actor=by.id,
                action="raw.discarded",
                subject_type="raw_input",
                subject_id=raw_id,
                payload={"reason": reason, "quarantine_reason": row.error},
            )
            return raw_dict(row) | {"discarded_because": reason}

    def promote(
        self,
        by: Principal,
        item_id: str,
        *,
        clause: str,
        service_id: str,
        reason: str,
    ) -> dict[str, Any]:
        """Make a case of a quarantined input or a triage event under ``clause`` against ``service_id`` (its
        project and customer come from the inventory). An event attribution placed may leave ``service_id`` empty:
        its own service is taken. A promoted event leaves the triage queue (disposition ``promoted``)."""
        by.require(Can.TRIAGE_CHANGE)
        by.require(Can.CASE_CHANGE)
        if not reason.strip():
            raise Conflict("promoting to a case needs a reason")
        policy = self.rt.policy
        spec = policy.clause(clause)  # NotFound naming the clauses
        if not spec.kinds:
            raise Conflict(f"clause {clause} names no kind of abuse (it states rights or duties); pick another")
        now = self.rt.clock.now()
        with self.rt.sessions() as s:
            event = s.get(EventRow, item_id)
            raw = s.get(RawInputRow, item_id) if event is None else None
            if event is None and raw is None:
                raise NotFound(f"{item_id!r} is neither a raw input nor an event")
            if not service_id and event is not None and event.service_id:
                service_id = event.service_id
            if not service_id:
                raise Conflict("attribution found no service for this item: name the service it is against")
            service = s.get(ServiceRow, service_id)
            project = s.get(ProjectRow, service.project_id) if service is not None else None
            if service is None or project is None:
                raise NotFound(f"service {service_id!r} is not in the inventory (`abusedesk inventory whois`)")
            customer_id, project_id = project.customer_id, project.id
            kind = event.kind if event is not None and event.kind in spec.kinds else spec.kinds[0]
            at = event.time if event is not None else raw.received_at  # type: ignore[union-attr]
            subject_ip = event.source_ip if event is not None else None
        finding = Finding.create(
            detector="triage",
            kind=kind,
            clauses=(clause,),
            group_key=f"triage:{item_id}",
            window_start=at,
            window_end=at + timedelta(seconds=1),
            severity=policy.severity_for_kind(kind),
            confidence=1.0,
            summary=f"promoted by {by.name}: {reason}",
            subject_ip=subject_ip,
            customer_id=customer_id,
            project_id=project_id,
            service_id=service_id,
            event_ids=(item_id,) if event is not None else (),
            evidence=({"promoted_from": item_id, "promoted_by": by.id, "reason": reason},),
        )
        from abusedesk.cases.engine import CaseEngine

        report = CaseEngine(self.rt, actor=by.id).ingest([finding])
        refs = report.opened or report.updated or report.reopened
        if event is not None:
            with self.rt.sessions() as s, s.begin():
                s.execute(
                    update(EventRow)
                    .where(EventRow.id == item_id, EventRow.disposition == "triage")
                    .values(disposition="promoted")
                )
        return {"item": item_id, "clause": clause, "cases": list(refs), "at": iso(now)}
