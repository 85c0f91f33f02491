"""What the analyst console shows, as plain dicts: the case queue, a case's timeline, the evidence viewer, the
triage queue, "who had this address", and the dashboard's figures (issue 11 item 1).

Each reading goes through the services the REST API and the CLI use (``CaseService.page`` and ``get``,
``TriageService``, ``InventoryService.whois``) and adds what a page needs beside them in a few indexed queries;
every function takes the signed-in :class:`Principal` and checks its capabilities first, as the services do.
The console is for the provider's staff: a customer's principal is refused here (the portal is its page).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, select

from abusedesk.cases.service import SORTS, CaseQuery, CaseService
from abusedesk.domain.casestate import CONFIRMED, ENDED, CaseState
from abusedesk.domain.errors import ConfigError, Forbidden, NotFound
from abusedesk.domain.identity import Can, Principal
from abusedesk.domain.ipnet import int_to_ip, ip_to_int
from abusedesk.domain.records import Severity
from abusedesk.domain.timeutil import iso, parse_time
from abusedesk.intake.reporters import accuracy
from abusedesk.intake.triage import TriageService
from abusedesk.parsers import mime
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseRow, FindingRow, NoticeRow
from abusedesk.store.tables.identity import UserRow
from abusedesk.store.tables.intake import EventRow, RawInputRow, ReporterRow
from abusedesk.store.tables.inventory import AllocationRow, CustomerRow, ProjectRow, ServiceRow

#: what the queue offers to filter by age (opened more than N days ago) and by deadline (falls before now + N)
AGES = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEADLINES = {"overdue": timedelta(0), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
#: how much of an input the evidence viewer shows as text (the whole input is a download)
TEXT_PREVIEW = 64 * 1024
#: the timeline's findings and events: the most recent ones (a case may hold millions of findings)
TIMELINE_FINDINGS = 50
#: the queue counts the cases its filters match up to this many (then says "10,000+"): cheap on a million cases
QUEUE_COUNT_CAP = 10_000
TIMELINE_EVENTS = 50
#: a person's user id (``new_id("us")``) as it appears in free text such as a transition's reason
USER_ID = re.compile(r"\bus_[0-9a-f]{32}\b")
#: time-to-resolution figures read at most this many cases ended in the window (the most recent)
RESOLUTION_SAMPLE = 20_000
#: open-case age buckets on the dashboard: (label, lower bound of age)
AGE_BUCKETS = (
    ("under 1 day", timedelta(0)),
    ("1-7 days", timedelta(days=1)),
    ("7-30 days", timedelta(days=7)),
    ("over 30 days", timedelta(days=30)),
)


def require_staff(by: Principal, what: Can) -> None:
    """The console is the provider's: a customer (or integration) principal is refused whatever it asks for."""
    if not by.is_staff:
        raise Forbidden(f"{by.name} ({by.id}) is a {by.role}; the analyst console is for the provider's staff")
    by.require(what)


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """The queue's filters as the page's form sends them (every field a string; empty means "any")."""

    state: str = "open"
    clause: str = ""
    severity: str = ""
    customer: str = ""
    age: str = ""  # older than: a key of AGES
    deadline: str = ""  # deadline before now + DEADLINES[deadline]
    sort: str = "updated"
    cursor: str = ""
    limit: int = 50

    @classmethod
    def from_query(cls, query: Any) -> QueueFilters:
        """From a request's query parameters; a value the form never offers is refused naming the field."""

        def get(name: str, default: str = "") -> str:
            value = query.get(name)
            return default if value is None else str(value).strip()

        out = cls(
            state=get("state", "open"),
            clause=get("clause"),
            severity=get("severity"),
            customer=get("customer"),
            age=get("age"),
            deadline=get("deadline"),
            sort=get("sort", "updated") or "updated",
            cursor=get("cursor"),
            limit=_int_field("limit", get("limit", "50") or "50", 1, 200),
        )
        choices = {
            "state": ("", "open", *(s.value for s in CaseState)),
            "severity": ("", *(s.value for s in Severity)),
            "age": ("", *AGES),
            "deadline": ("", *DEADLINES),
            "sort": tuple(SORTS),
        }
        for name, allowed in choices.items():
            value = getattr(out, name)
            if value not in allowed:
                shown = ", ".join(a or "(any)" for a in allowed)
                raise ConfigError(
                    f"filter {name!r} cannot be {value[:40]!r}; choose one of {shown}",
                    field=name,
                )
        return out

    def params(self, **change: str) -> dict[str, str]:
        """The non-empty filters as query parameters (for links to the next page or another sort)."""
        values = {
            "state": self.state,
            "clause": self.clause,
            "severity": self.severity,
            "customer": self.customer,
            "age": self.age,
            "deadline": self.deadline,
            "sort": self.sort,
        } | change
        return {k: v for k, v in values.items() if v}


def _int_field(name: str, value: str, low: int, high: int) -> int:
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, not {value[:20]!r}", field=name)
    return int(value)


class ConsoleViews:
    """The console's readings over the store, for one Runtime (built once per app)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.cases = CaseService(rt)

    # -------------------------------------------------------------------------------------------------- queue

    def queue(self, by: Principal, filters: QueueFilters) -> dict[str, Any]:
        """One page of the case queue: ``items`` (cases with their customer's name), ``next_cursor``; keyset
        pagination through ``CaseService.page``, so a page costs the same on the first page and the ten
        thousandth, with a million cases."""
        require_staff(by, Can.CASE_READ)
        now = self.rt.clock.now()
        query: CaseQuery = {
            "state": filters.state or None,
            "customer": self.customer_id(filters.customer) if filters.customer else None,
            "clause": filters.clause or None,
            "severity": filters.severity or None,
            "opened_before": now - AGES[filters.age] if filters.age else None,
            "deadline_before": now + DEADLINES[filters.deadline] if filters.deadline else None,
            "sort": filters.sort,
        }
        page = self.cases.page(by, **(query | {"limit": filters.limit, "cursor": filters.cursor or None}))
        total, more = self.cases.count(by, cap=QUEUE_COUNT_CAP, **query)
        items: list[dict[str, Any]] = page["items"]
        names = self._customer_names({c["customer_id"] for c in items if c["customer_id"]})
        for c in items:
            c["customer_name"] = names.get(c["customer_id"]) if c["customer_id"] else None
            c["overdue"] = bool(c["deadline"] and parse_time(c["deadline"]) <= now and c["state"] not in _ENDED)
        return {"items": items, "next_cursor": page["next_cursor"], "now": iso(now), "total": total, "more": more}

    def customer_id(self, text: str) -> str:
        """The customer the queue's filter names: a customer id as it is, else a customer's name (any case) looked
        up in the inventory; a name two customers share is refused naming their ids. Text that is neither is
        kept as an id (the queue shows no case)."""
        with self.rt.sessions() as s:
            if s.get(CustomerRow, text) is not None:
                return text
            ids = sorted(s.scalars(select(CustomerRow.id).where(func.lower(CustomerRow.name) == text.lower())))
        if len(ids) > 1:
            raise ConfigError(
                f"customer {text[:80]!r} names {len(ids)} customers; give one id: {', '.join(ids)}", field="customer"
            )
        return ids[0] if ids else text

    def _customer_names(self, ids: set[str]) -> dict[str, str]:
        if not ids:
            return {}
        with self.rt.sessions() as s:
            return dict(s.execute(select(CustomerRow.id, CustomerRow.name).where(CustomerRow.id.in_(ids))).all())

    # -------------------------------------------------------------------------------------------------- a case

    def case(self, by: Principal, ref: str) -> dict[str, Any]:
        """One case for its page: ``CaseService.get`` (facts, actions, notes, transitions) plus the clause it
        cites, the customer, the recent findings, the events they rest on, the notices that carried it, and one
        ``timeline`` of all of them, newest last."""
        require_staff(by, Can.CASE_READ)
        out = self.cases.get(ref, by)
        from abusedesk.web.portal import clause_view  # the portal's reading of a clause: one for both

        out["clause_cited"] = clause_view(self.rt.policy, out["clause"])
        with self.rt.sessions() as s:
            findings = s.execute(
                select(FindingRow)
                .where(FindingRow.case_id == out["id"])
                .order_by(FindingRow.window_end.desc())
                .limit(TIMELINE_FINDINGS)
            ).scalars()
            found: list[dict[str, Any]] = [
                {
                    "id": f.id,
                    "kind": f.kind,
                    "detector": f.detector,
                    "severity": f.severity,
                    "confidence": f.confidence,
                    "summary": f.summary,
                    "subject_ip": f.subject_ip,
                    "window_start": iso(f.window_start),
                    "window_end": iso(f.window_end),
                    "event_ids": list((f.data or {}).get("event_ids") or []),
                    "evidence": list((f.data or {}).get("evidence") or []),
                }
                for f in findings
            ]
            event_ids = sorted({e for f in found for e in f["event_ids"]})[: TIMELINE_EVENTS * 4]
            events = [
                {
                    "id": e.id,
                    "kind": e.kind,
                    "time": iso(e.time),
                    "feed": e.feed,
                    "reporter": e.reporter,
                    "source_ip": e.source_ip,
                    "raw_id": e.raw_id,
                }
                for e in s.scalars(select(EventRow).where(EventRow.id.in_(event_ids)))
            ]
            events = sorted(events, key=lambda e: (e["time"], e["id"]))[-TIMELINE_EVENTS:]
            promoted = [ev["promoted_from"] for f in found for ev in f["evidence"] if ev.get("promoted_from")]
            raw_ids = sorted({e["raw_id"] for e in events if e["raw_id"]} | set(promoted))
            raws = {r.id: r for r in s.scalars(select(RawInputRow).where(RawInputRow.id.in_(raw_ids)))}
            notice_ids = sorted(
                {
                    str(n)
                    for a in s.scalars(select(ActionRow.result).where(ActionRow.case_id == out["id"]))
                    if a
                    for n in [(a or {}).get("notice_id")]
                    if n
                }
            )
            notices = [
                {
                    "id": n.id,
                    "kind": n.kind,
                    "contact": n.contact,
                    "subject": n.subject,
                    "status": n.status,
                    "due_at": iso(n.due_at),
                    "sent_at": iso(n.sent_at) if n.sent_at else None,
                    "error": n.error,
                    "case_count": len(n.case_ids or []),
                }
                for n in s.scalars(select(NoticeRow).where(NoticeRow.id.in_(notice_ids)))
            ]
            people = {a["proposed_by"] for a in out["actions"]} | {p for a in out["actions"] for p in a["approvers"]}
            people |= {u for e in out["timeline"] for u in USER_ID.findall(e.get("text") or "")}
            names = dict(s.execute(select(UserRow.id, UserRow.name).where(UserRow.id.in_(people))).all())
            customer = s.get(CustomerRow, out["customer_id"]) if out["customer_id"] else None
            service = s.get(ServiceRow, out["service_id"]) if out["service_id"] else None
        out["customer"] = {"id": customer.id, "name": customer.name, "status": customer.status} if customer else None
        out["service"] = (
            {"id": service.id, "name": service.name, "kind": service.kind, "status": service.status}
            if service
            else None
        )
        # who's who by id (a service account's id is its name): the page shows names, the records keep ids
        out["names"] = {e["actor"]: e["actor_name"] for e in out["timeline"]} | names
        out["recent_findings"] = found
        out["events"] = events
        out["notices"] = notices
        out["inputs"] = [
            {
                "id": r.id,
                "channel": r.channel,
                "received_at": iso(r.received_at),
                "size": r.size,
                "reporter": r.reporter,
                "status": r.status,
            }
            for r in sorted(raws.values(), key=lambda r: (r.received_at, r.id))
        ]
        out["timeline"] = merge_timeline(name_people(out["timeline"], names), found, events, notices)
        return out

    # -------------------------------------------------------------------------------------------------- evidence

    def evidence(self, by: Principal, raw_id: str, *, case_ref: str | None = None) -> dict[str, Any]:
        """A raw input as received, for reading: its facts, its headers (a mail's), its parts with attachments
        listed, and a text preview; with ``case_ref``, the input must be evidence of that case, and the clause
        the case cites comes along. Without a case it is the triage view (quarantined input)."""
        cited = None
        if case_ref is not None:
            case = self.case(by, case_ref)
            if raw_id not in {i["id"] for i in case["inputs"]}:
                raise NotFound(f"input {raw_id[:16]}… is not evidence of case {case['ref']}")
            cited = case["clause_cited"] | {"case_ref": case["ref"]}
        require_staff(by, Can.TRIAGE_READ)
        info, data = TriageService(self.rt).raw(by, raw_id)
        with self.rt.sessions() as s:
            row = s.get(RawInputRow, raw_id)
            assert row is not None  # TriageService.raw found it
            info |= {
                "reporter": row.reporter,
                "meta": dict(row.meta or {}),
                "issues": list(row.issues or []),
                "event_count": row.event_count,
                "attempts": row.attempts,
            }
        return {"raw": info, "clause_cited": cited, **read_input(data)}

    def triage(self, by: Principal, *, limit: int = 100) -> dict[str, Any]:
        """The triage queue (``TriageService.queue``) with the clauses one may promote to."""
        require_staff(by, Can.TRIAGE_READ)
        items = TriageService(self.rt).queue(by, limit=limit)
        return {"items": items, "clauses": self.clauses()}

    def clauses(self) -> list[dict[str, str]]:
        """The clauses that name kinds of abuse (a case can cite only those)."""
        return [{"id": c.id, "title": c.title} for c in self.rt.policy.clauses.values() if c.kinds]

    # -------------------------------------------------------------------------------------------------- whois

    def who_had(self, by: Principal, ip: str, at: datetime | None = None) -> dict[str, Any]:
        """ "Who had this address at this time?": the inventory's answer at ``at`` (default now), and every
        allocation that ever covered the address, oldest first, with its service, project and customer."""
        require_staff(by, Can.INVENTORY_READ)
        from abusedesk.inventory.service import InventoryService

        at = at or self.rt.clock.now()
        try:
            value = ip_to_int(ip)
        except ValueError as exc:
            raise ConfigError(f"address: {exc}", field="ip") from None
        answer = InventoryService(self.rt).whois(ip, at)
        key = f"{value:032x}"
        with self.rt.sessions() as s:
            rows = s.execute(
                select(AllocationRow, ServiceRow.name, ProjectRow.name, CustomerRow.id, CustomerRow.name)
                .join(ServiceRow, ServiceRow.id == AllocationRow.service_id)
                .join(ProjectRow, ProjectRow.id == ServiceRow.project_id)
                .join(CustomerRow, CustomerRow.id == ProjectRow.customer_id)
                .where(AllocationRow.first_hex <= key, AllocationRow.last_hex >= key)
                .order_by(AllocationRow.valid_from, AllocationRow.id)
            ).all()
        history = [
            {
                "prefix": a.prefix,
                "valid_from": iso(a.valid_from),
                "valid_to": iso(a.valid_to) if a.valid_to else None,
                "service_id": a.service_id,
                "service_name": svc,
                "project_name": prj,
                "customer_id": cid,
                "customer_name": cname,
                "current": a.valid_from <= at and (a.valid_to is None or at < a.valid_to),
            }
            for a, svc, prj, cid, cname in rows
        ]
        return {"ip": int_to_ip(value), "at": iso(at), "answer": answer, "history": history}

    # -------------------------------------------------------------------------------------------------- dashboard

    def dashboard(self, by: Principal, *, days: int = 30) -> dict[str, Any]:
        """The dashboard's figures over the last ``days`` days: findings per clause per day, open cases by age,
        time to resolution per clause (median and 90th percentile, hours), and reporter accuracy."""
        require_staff(by, Can.CASE_READ)
        now = self.rt.clock.now()
        since = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
        with self.rt.sessions() as s:
            dialect = s.get_bind().dialect.name
            day = (
                func.to_char(FindingRow.created_at, "YYYY-MM-DD")
                if dialect == "postgresql"
                else func.strftime("%Y-%m-%d", FindingRow.created_at)
            )
            per_clause = s.execute(
                select(CaseRow.clause, day, func.count())
                .join(CaseRow, CaseRow.id == FindingRow.case_id)
                # the case engine sets a case's updated_at to the time it stores a finding of it (created_at), so a
                # case with a finding of the window was updated in it: ix_cases_updated bounds the cases read, as
                # ix_findings_created_brin (PostgreSQL) bounds the findings
                .where(FindingRow.created_at >= since, CaseRow.updated_at >= since)
                .group_by(CaseRow.clause, day)
            ).all()
            bounds = [now - lower for _, lower in AGE_BUCKETS]
            ages = s.execute(
                select(
                    *(
                        func.coalesce(func.sum(sql_case((_in_bucket(bounds, i), 1), else_=0)), 0)
                        for i in range(len(bounds))
                    )
                ).where(CaseRow.state.in_(_OPEN))  # IN (not NOT IN): ix_cases_state_updated finds the open ones
            ).one()
            # an ended case has closed_at set and updated_at at or after it: (state, updated_at) bounds the read
            # to the window's ended cases through ix_cases_state_updated instead of scanning every case
            ended = s.execute(
                select(CaseRow.clause, CaseRow.opened_at, CaseRow.closed_at)
                .where(CaseRow.state.in_(_ENDED), CaseRow.updated_at >= since)
                .where(CaseRow.closed_at.is_not(None), CaseRow.closed_at >= since)
                .order_by(CaseRow.closed_at.desc())
                .limit(RESOLUTION_SAMPLE)
            ).all()
            reporters = list(
                s.scalars(
                    select(ReporterRow)
                    .where(ReporterRow.confirmed_cases + ReporterRow.dismissed_cases > 0)
                    .order_by((ReporterRow.confirmed_cases + ReporterRow.dismissed_cases).desc(), ReporterRow.address)
                    .limit(15)
                )
            )
        dates = [(since + timedelta(days=i)).date().isoformat() for i in range(days + 1)]
        series: dict[str, dict[str, int]] = defaultdict(dict)
        for clause, d, n in per_clause:
            series[clause][str(d)] = int(n)
        hours: dict[str, list[float]] = defaultdict(list)
        for clause, opened, closed in ended:
            if closed is not None:
                hours[clause].append(max(0.0, (closed - opened).total_seconds() / 3600))
        return {
            "days": days,
            "since": iso(since),
            "findings_per_clause": {
                "dates": dates,
                "series": {c: [series[c].get(d, 0) for d in dates] for c in sorted(series)},
            },
            "open_by_age": [{"label": label, "count": int(n)} for (label, _), n in zip(AGE_BUCKETS, ages, strict=True)],
            "resolution_hours": [
                {"clause": c, "cases": len(v), "median": _percentile(v, 50), "p90": _percentile(v, 90)}
                for c, v in sorted(hours.items())
            ],
            "resolution_sampled": len(ended) >= RESOLUTION_SAMPLE,
            "reporters": [
                {
                    "address": r.address,
                    "reports": r.reports,
                    "confirmed": r.confirmed_cases,
                    "dismissed": r.dismissed_cases,
                    "accuracy": accuracy(r),
                }
                for r in reporters
            ],
        }


_ENDED = sorted(s.value for s in ENDED)
_OPEN = sorted(s.value for s in CaseState if s not in ENDED)
CONFIRMED_STATES = sorted(s.value for s in CONFIRMED)


def _in_bucket(bounds: Sequence[datetime], i: int) -> Any:
    """Opened at most ``bounds[i]`` (its age at least the bucket's lower bound) and after ``bounds[i + 1]``."""
    cond = CaseRow.opened_at <= bounds[i]
    return cond & (CaseRow.opened_at > bounds[i + 1]) if i + 1 < len(bounds) else cond


def _percentile(values: list[float], q: int) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 2)


def name_people(timeline: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    """The timeline with the user ids its texts carry (a transition's reason written as "us_… proposes …")
    replaced by the person's name, for reading; the records themselves keep the ids (the audit log is not
    rewritten). An id of nobody known stays as it is."""

    def named(text: str) -> str:
        return USER_ID.sub(lambda m: names.get(m.group(0), m.group(0)), text)

    return [e | {"text": named(e["text"])} if USER_ID.search(e.get("text") or "") else e for e in timeline]


def merge_timeline(
    base: list[dict[str, Any]],
    findings: list[dict[str, Any]],
    events: list[dict[str, Any]],
    notices: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """One time-ordered list of what happened to a case: ``CaseService.get``'s transitions, actions, notes and
    the customer's messages (acknowledge, reply, appeal), with the findings, the events they rest on and the
    notices that carried the case (by when sent, or due)."""
    out = list(base)
    for f in findings:
        out.append(
            {
                "at": f["window_end"],
                "type": "finding",
                "actor": f["detector"],
                "actor_name": f["detector"],
                "kind": f["kind"],
                "text": f["summary"],
                "id": f["id"],
            }
        )
    for e in events:
        who = e["reporter"] or e["feed"]
        out.append(
            {
                "at": e["time"],
                "type": "event",
                "actor": who,
                "actor_name": who,
                "kind": e["kind"],
                "text": f"{e['kind']} {e['source_ip'] or ''}".strip(),
                "raw_id": e["raw_id"],
                "id": e["id"],
            }
        )
    for n in notices:
        out.append(
            {
                "at": n["sent_at"] or n["due_at"],
                "type": "notice",
                "actor": "svc:actions",
                "actor_name": "actions",
                "kind": n["kind"],
                "status": n["status"],
                "text": f"{n['kind']} to {n['contact']}: {n['subject'] or '(not composed yet)'} ({n['status']})",
                "id": n["id"],
            }
        )
    order = {"event": 0, "finding": 1, "transition": 2, "action": 3, "notice": 4, "message": 5, "note": 6}
    out.sort(key=lambda e: (e["at"], order.get(e["type"], 9)))
    return out


def read_input(data: bytes) -> dict[str, Any]:
    """An input for reading: a mail's headers (decoded, in order) and parts (type, file name, size), and the
    text preview (a mail's body text, or the input itself decoded); ``truncated`` when the preview is cut."""
    head = data[:TEXT_PREVIEW]
    out: dict[str, Any] = {"is_mail": False, "headers": [], "parts": [], "size": len(data), "note": "",
                           "text": mime.decode_bytes(head), "truncated": len(data) > TEXT_PREVIEW}  # fmt: skip
    if not mime.looks_like_mail(data):
        return out
    try:
        msg = mime.parse_message(data)
    except Exception as exc:  # a hostile mail must still be viewable as bytes
        return out | {"note": f"not read as mail: {exc}"}
    text = mime.body_text(msg)
    return out | {
        "is_mail": True,
        "headers": [(k, mime.decode_header_value(v)) for k, v in msg.items()],
        "parts": list_parts(msg),
        "text": text[:TEXT_PREVIEW],
        "truncated": len(text) > TEXT_PREVIEW,
    }


def list_parts(msg: Message, *, limit: int = 200) -> list[dict[str, Any]]:
    """A mail's parts in order, as a reader sees them: multipart containers opened, an attached message
    (``message/*``) listed as one part, not opened; at most ``limit`` parts, iteratively (no recursion)."""
    out: list[dict[str, Any]] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack and len(out) < limit:
        part, depth = stack.pop()
        ctype = part.get_content_type()
        if ctype.startswith("multipart/"):
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend((p, depth + 1) for p in reversed(payload) if isinstance(p, Message))
            continue
        if ctype.startswith("message/"):
            size = len(part.as_bytes()) if part.is_multipart() else len(mime.part_bytes(part))
        else:
            size = len(mime.part_bytes(part))
        filename = part.get_filename()
        out.append(
            {
                "content_type": ctype,
                "filename": mime.decode_header_value(filename) if filename else None,
                "disposition": part.get_content_disposition() or "inline",
                "size": size,
                "depth": depth,
            }
        )
    return out
