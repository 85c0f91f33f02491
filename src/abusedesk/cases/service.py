"""CaseService: what analysts (CLI, API, console) do with cases: list, show, transition, act, approve, note.

Every change is one transaction with its audit entry. Two analysts changing one case at the same moment: the
case's optimistic ``version`` makes the later commit fail with Conflict ("reload and retry"), never a lost update.
Destructive actions (the two-person kinds of the catalogue, domain/actions.py) are proposed by one person and
carried out only after a *different* person approves; persons are user ids, so no spelling of a name helps.
"""

from __future__ import annotations

import base64
import builtins
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypedDict, TypeVar, Unpack

import orjson
from sqlalchemy import Select, func, literal, or_, select, tuple_
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from abusedesk.cases import lifecycle
from abusedesk.domain import actions as actions_catalogue
from abusedesk.domain.casestate import ENDED, CaseState, allowed_targets, check_transition, parse_state
from abusedesk.domain.errors import Conflict, Forbidden, NotFound, PreconditionFailed
from abusedesk.domain.identity import Can, Principal, Role
from abusedesk.domain.timeutil import iso, parse_time
from abusedesk.policy.model import Policy
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import (
    ActionRow,
    CaseMessageRow,
    CaseNoteRow,
    CaseRow,
    CaseTransitionRow,
    FindingRow,
    NoticeRow,
)
from abusedesk.store.tables.identity import UserRow

T = TypeVar("T")


#: sort name -> the cases column it orders by (with the id as the tie-break); ``updated`` runs newest first
SORTS = {"updated": "updated_at", "opened": "opened_at", "deadline": "deadline"}

#: what a customer may say on its case (``CaseService.respond``)
MESSAGE_KINDS = ("acknowledge", "reply", "appeal")
MAX_MESSAGE = 20_000

#: state -> the states a case may move to from it (computed once: every listed case needs it)
_ALLOWED = {s.value: [t.value for t in allowed_targets(s)] for s in CaseState}


class CaseQuery(TypedDict, total=False):
    """The filters and the page of a case list (``CaseService.page``'s keyword arguments)."""

    state: str | None
    customer: str | None
    clause: str | None
    severity: str | None
    opened_before: datetime | None
    deadline_before: datetime | None
    sort: str
    limit: int
    cursor: str | None


#: the columns of a listed case, in ``case_dict``'s order (its keys but ``allowed``)
_PAGE_FIELDS = (
    "id", "ref", "state", "customer_id", "project_id", "service_id", "clause", "kind", "group_key", "severity",
    "policy_version", "opened_at", "updated_at", "closed_at", "notified_at", "deadline", "last_finding_at",
    "finding_count", "reopen_count", "version",
)  # fmt: skip
#: orjson writes an aware UTC time as ``iso`` does: ``Z``, microseconds only when there are some
_ORJSON_TIMES = orjson.OPT_UTC_Z


def case_dict(case: Any) -> dict[str, Any]:
    """A case (a CaseRow, or a row of the cases table) as the API and the CLI show it."""
    return {
        "id": case.id,
        "ref": case.ref,
        "state": case.state,
        "customer_id": case.customer_id,
        "project_id": case.project_id,
        "service_id": case.service_id,
        "clause": case.clause,
        "kind": case.kind,
        "group_key": case.group_key,
        "severity": case.severity,
        "policy_version": case.policy_version,
        "opened_at": iso(case.opened_at),
        "updated_at": iso(case.updated_at),
        "closed_at": iso(case.closed_at) if case.closed_at else None,
        "notified_at": iso(case.notified_at) if case.notified_at else None,
        "deadline": iso(case.deadline) if case.deadline else None,
        "last_finding_at": iso(case.last_finding_at) if case.last_finding_at else None,
        "finding_count": case.finding_count,
        "reopen_count": case.reopen_count,
        "version": case.version,
        "allowed": list(_ALLOWED[case.state]),
    }


def action_dict(row: ActionRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "case_id": row.case_id,
        "kind": row.kind,
        "status": row.status,
        "proposed_by": row.proposed_by,
        "approved_by": row.approved_by,
        "approvers": list((row.payload or {}).get("approvers", [])),
        "approvals_needed": (row.payload or {}).get("approvals_needed", 1),
        "deadline": (row.payload or {}).get("deadline"),
        "attempts": row.attempts,
        "error": row.error,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


class CaseService:
    """The operations people do on cases; each takes the acting :class:`Principal` (``by``), checks what its role
    may do, limits a customer to its own cases, and names ``by.id`` in every record it writes."""

    def __init__(self, rt: Runtime, policy: Policy | None = None) -> None:
        self.rt = rt
        self._policy = policy

    @property
    def policy(self) -> Policy:
        return self._policy if self._policy is not None else self.rt.policy

    # ------------------------------------------------------------------------------------------------ reading

    def page(
        self,
        by: Principal,
        *,
        state: str | None = None,
        customer: str | None = None,
        clause: str | None = None,
        severity: str | None = None,
        opened_before: datetime | None = None,
        deadline_before: datetime | None = None,
        sort: str = "updated",
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of cases, filtered and sorted; ``next_cursor`` continues after its last case.

        ``state`` is a state or ``open`` (every state but resolved, closed and dismissed); ``opened_before`` keeps
        cases opened before then (their age), ``deadline_before`` those whose deadline falls before then (overdue:
        now). ``sort`` is one of :data:`SORTS`: ``updated`` (newest change first, the default), ``opened`` (oldest
        first) or ``deadline`` (soonest first; only cases with a deadline).

        A customer's principal sees only its own customer's cases, whatever ``customer`` says. The cursor is the
        (sort column, id) of the last case shown (keyset pagination: a page costs the same at any depth), and
        one direction for both columns, so an index ``(column, id)`` (or ``(state|customer_id, column, id)``)
        serves it without a sort. Read in one statement outside a transaction (no BEGIN/ROLLBACK).
        """
        query = CaseQuery(
            state=state,
            customer=customer,
            clause=clause,
            severity=severity,
            opened_before=opened_before,
            deadline_before=deadline_before,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
        rows, next_cursor = self._page_rows(by, query)
        return {"items": [case_dict(c) for c in rows], "next_cursor": next_cursor}

    def page_json(self, by: Principal, **query: Unpack[CaseQuery]) -> bytes:
        """``{"ok": true, **page(by, **query)}`` as JSON bytes, the same document, built for the API's hot route:
        the rows go to orjson as they come (times encoded by orjson in ``iso``'s form) instead of through
        ``case_dict`` and ``json`` (~1 ms of Python a page of 50 less; issue 10). A test holds the two equal."""
        rows, next_cursor = self._page_rows(by, query)
        items = []
        for row in rows:
            item = dict(zip(_PAGE_FIELDS, row, strict=True))
            item["allowed"] = _ALLOWED[row.state]
            items.append(item)
        return orjson.dumps({"ok": True, "items": items, "next_cursor": next_cursor}, option=_ORJSON_TIMES)

    def _page_rows(self, by: Principal, query: CaseQuery) -> tuple[list[Any], str | None]:
        limit, cursor, sort = query.get("limit", 50), query.get("cursor"), query.get("sort", "updated")
        by.require(Can.CASE_READ)
        if not 1 <= limit <= 500:
            raise Conflict(f"limit must be between 1 and 500, not {limit}")
        if sort not in SORTS:
            raise Conflict(f"sort {sort!r} is not one of {', '.join(SORTS)}")
        cases = CaseRow.__table__
        column = cases.c[SORTS[sort]]
        descending = sort == "updated"
        order = (column.desc(), cases.c.id.desc()) if descending else (column.asc(), cases.c.id.asc())
        q = self._filtered(by, select(*(cases.c[f] for f in _PAGE_FIELDS)), query)
        if q is None:
            return [], None
        q = q.order_by(*order).limit(limit + 1)
        if cursor:
            at, last = decode_cursor(cursor, sort)
            key, mark = tuple_(column, cases.c.id), tuple_(literal(at), literal(last))
            q = q.where(key < mark if descending else key > mark)
        with self.rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            rows = list(conn.execute(q))
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(getattr(rows[-1], SORTS[sort]), rows[-1].id, sort) if more and rows else None
        return rows, next_cursor

    def count(self, by: Principal, *, cap: int = 10_000, **query: Unpack[CaseQuery]) -> tuple[int, bool]:
        """How many cases match the filters of ``query`` (its sort, cursor and limit do not matter), counted up to
        ``cap``: (the count, whether there are more). Reading at most ``cap + 1`` index entries keeps it cheap
        whatever the number of cases."""
        by.require(Can.CASE_READ)
        q = self._filtered(by, select(CaseRow.__table__.c.id), query, counting=True)
        if q is None:
            return 0, False
        capped = select(func.count()).select_from(q.limit(cap + 1).subquery())
        with self.rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            n = int(conn.execute(capped).scalar_one())
        return min(n, cap), n > cap

    @staticmethod
    def _filtered(by: Principal, q: Select[Any], query: CaseQuery, *, counting: bool = False) -> Select[Any] | None:
        """``q`` with the filters of ``query`` (a customer's principal: its own cases only); None when the
        principal may see none of what is asked."""
        state, customer, clause = query.get("state"), query.get("customer"), query.get("clause")
        severity, sort = query.get("severity"), query.get("sort", "updated")
        opened_before, deadline_before = query.get("opened_before"), query.get("deadline_before")
        if not by.is_staff:
            if customer is not None and customer != by.customer_id:
                return None
            customer = by.customer_id
        cases = CaseRow.__table__
        if state == "open" and counting:  # IN: the count reads ix_cases_state_updated's open entries only
            q = q.where(cases.c.state.in_([s.value for s in CaseState if s not in ENDED]))
        elif state == "open":  # NOT IN: the page walks its sort's index and stops after one page
            q = q.where(cases.c.state.not_in([s.value for s in ENDED]))
        elif state:
            q = q.where(cases.c.state == parse_state(state).value)
        if customer:
            q = q.where(cases.c.customer_id == customer)
        if clause:
            q = q.where(cases.c.clause == clause)
        if severity:
            q = q.where(cases.c.severity == severity)
        if opened_before is not None:
            q = q.where(cases.c.opened_at < opened_before)
        if deadline_before is not None:
            q = q.where(cases.c.deadline < deadline_before)
        if sort == "deadline":
            q = q.where(cases.c.deadline.is_not(None))
        return q

    def list(
        self,
        by: Principal,
        *,
        state: str | None = None,
        customer: str | None = None,
        clause: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Cases, newest change first, filtered by state, customer and clause (one page of ``limit``)."""
        items: list[dict[str, Any]] = self.page(by, state=state, customer=customer, clause=clause, limit=limit)["items"]
        return items

    def get(self, case: str, by: Principal) -> dict[str, Any]:
        """One case with a findings summary, its actions, notes and timeline (time order) and allowed moves."""
        by.require(Can.CASE_READ)
        with self.rt.sessions() as s:
            row = self._load(s, case, by=by)
            out = case_dict(row)
            kinds = s.execute(
                select(
                    FindingRow.kind, func.count(), func.min(FindingRow.window_start), func.max(FindingRow.window_end)
                )
                .where(FindingRow.case_id == row.id)
                .group_by(FindingRow.kind)
            ).all()
            out["findings"] = {
                "count": row.finding_count,
                "by_kind": {k: n for k, n, _, _ in kinds},
                "first": iso(min(r[2] for r in kinds)) if kinds else None,
                "last": iso(max(r[3] for r in kinds)) if kinds else None,
                "recent": lifecycle.finding_summaries(s, row, limit=10),
            }
            actions = list(s.scalars(select(ActionRow).where(ActionRow.case_id == row.id)))
            out["actions"] = [action_dict(a) for a in sorted(actions, key=lambda a: (a.created_at, a.id))]
            notes = list(s.scalars(select(CaseNoteRow).where(CaseNoteRow.case_id == row.id)))
            out["notes"] = [{"id": n.id, "at": iso(n.at), "author": n.author, "text": n.text} for n in notes]
            timeline: list[dict[str, Any]] = []
            for t in s.scalars(select(CaseTransitionRow).where(CaseTransitionRow.case_id == row.id)):
                timeline.append(
                    {
                        "at": iso(t.at),
                        "type": "transition",
                        "actor": t.actor,
                        "from": t.from_state,
                        "to": t.to_state,
                        "text": t.reason,
                        "_order": t.id,
                    }
                )
            for a in actions:
                timeline.append(
                    {
                        "at": iso(a.created_at),
                        "type": "action",
                        "actor": a.proposed_by,
                        "kind": a.kind,
                        "status": a.status,
                        "id": a.id,
                        "text": f"{a.kind} {a.status}",
                        "_order": 0,
                    }
                )
            for n in notes:
                timeline.append({"at": iso(n.at), "type": "note", "actor": n.author, "text": n.text, "_order": n.id})
            messages = list(
                s.scalars(select(CaseMessageRow).where(CaseMessageRow.case_id == row.id).order_by(CaseMessageRow.id))
            )
            out["messages"] = [
                {"id": m.id, "at": iso(m.at), "author": m.author, "kind": m.kind, "text": m.text} for m in messages
            ]
            for m in messages:
                timeline.append(
                    {"at": iso(m.at), "type": "message", "actor": m.author, "kind": m.kind, "text": m.text,
                     "_order": m.id}
                )  # fmt: skip
            timeline.sort(key=lambda e: (e["at"], e["type"] != "transition", e.pop("_order")))
            ids = {e["actor"] for e in timeline} | {m["author"] for m in out["messages"]}
            names = dict(s.execute(select(UserRow.id, UserRow.name).where(UserRow.id.in_(ids))).all()) if ids else {}
            for e in timeline:
                e["actor_name"] = names.get(e["actor"], e["actor"])  # a service account's id is its name
            out["timeline"] = timeline
            for m in out["messages"]:
                m["author_name"] = names.get(m["author"], m["author"])
            if not by.is_staff:  # a customer sees what happened, not who on our side did it, nor our notes
                out["notes"] = []
                agreed = self.rt.settings.notices.disclose_reporters
                out["findings"]["recent"] = [withhold_reporter(f, agreed) for f in out["findings"]["recent"]]
                out["timeline"] = [
                    {k: v for k, v in e.items() if k not in ("actor", "actor_name") or e["type"] == "message"}
                    for e in timeline
                    if e["type"] != "note"
                ]
                for a in out["actions"]:
                    a.update(proposed_by=None, approved_by=None, approvers=[])
            return out

    def summary(self, by: Principal) -> dict[str, Any]:
        """Counts of cases per state, customer and clause (the demo prints it), and open actions per status."""
        by.require(Can.CASE_READ)
        if not by.is_staff:
            raise Forbidden("the summary counts every customer's cases; it is for staff")
        with self.rt.sessions() as s:
            by_state: dict[str, int] = dict(
                s.execute(select(CaseRow.state, func.count()).group_by(CaseRow.state)).all()
            )
            by_customer = dict(s.execute(select(CaseRow.customer_id, func.count()).group_by(CaseRow.customer_id)).all())
            by_clause = dict(s.execute(select(CaseRow.clause, func.count()).group_by(CaseRow.clause)).all())
            actions = dict(s.execute(select(ActionRow.status, func.count()).group_by(ActionRow.status)).all())
            findings = int(s.scalar(select(func.count()).select_from(FindingRow)) or 0)
        return {
            "total": sum(by_state.values()),
            "by_state": {k: int(v) for k, v in sorted(by_state.items())},
            "by_customer": {str(k): int(v) for k, v in sorted(by_customer.items(), key=lambda kv: str(kv[0]))},
            "by_clause": {k: int(v) for k, v in sorted(by_clause.items())},
            "actions_by_status": {k: int(v) for k, v in sorted(actions.items())},
            "findings": findings,
        }

    # ------------------------------------------------------------------------------------------------ changing

    def transition(
        self, case: str, to: str, *, by: Principal, reason: str = "", expected_version: int | None = None
    ) -> dict[str, Any]:
        """Move a case to ``to``. Conflict for an illegal move (naming the allowed ones) or a concurrent change;
        Forbidden for a state that asserts an action (it is reached by carrying out the approved action)."""
        by.require(Can.CASE_CHANGE)

        def work(s: Session) -> dict[str, Any]:
            row = self._load(s, case, expected_version, by=by)
            self.transition_in(s, row, to, actor=by.id, reason=reason)
            return case_dict(row)

        return self._write(work)

    def transition_in(self, s: Session, row: CaseRow, to: str, *, actor: str, reason: str) -> None:
        """The transition inside the caller's session (used by :meth:`transition` and by concurrency tests)."""
        lifecycle.transition(s, row, parse_state(to), actor=actor, reason=reason, at=self.rt.clock.now())

    def propose(
        self, case: str, kind: str, *, by: Principal, reason: str = "", expected_version: int | None = None
    ) -> dict[str, Any]:
        """Start an action on a case (the action catalogue, domain/actions.py, says how).

        Two-person kinds become ``proposed`` and move the case to escalated; they wait for :meth:`approve` by
        other persons. One-person kinds go straight to ``pending`` for the adapters. A kind that asserts a state
        (reinstate) moves the case there only when the runner has carried it out.
        """
        by.require(Can.ACTION_PROPOSE)
        if not by.is_person:
            raise Forbidden(f"{by.id} is a service account; only a person proposes an action by hand")
        spec = actions_catalogue.spec(kind)
        if spec.needs_reason and not reason.strip():
            raise Conflict(f"{kind} needs a reason (--reason)")
        policy = self.policy

        def work(s: Session) -> dict[str, Any]:
            row = self._load(s, case, expected_version, by=by)
            now = self.rt.clock.now()
            if CaseState(row.state) in ENDED:
                raise Conflict(f"case {row.ref} is {row.state}; reopen it (transition to 'new') before acting on it")
            if spec.asserts is not None and not spec.needs_approval:
                check_transition(row.state, spec.asserts, reason=reason, case_ref=row.ref)
            n = s.scalar(select(func.count()).select_from(ActionRow).where(ActionRow.case_id == row.id)) or 0
            key = f"{row.id}:manual:{kind}:{n + 1}"
            summaries = lifecycle.finding_summaries(s, row)
            deadline = None
            if kind == "request-to-cease":
                try:
                    cease = policy.playbook_for(row.clause, row.severity).cease_deadline
                except NotFound:
                    cease = None
                if cease is not None:
                    deadline = now + cease
            extra = {"reason": reason, "requested_by": by.id}
            payload = lifecycle.action_payload(policy, row, kind, summaries, deadline=deadline, extra=extra)
            if spec.needs_approval:
                lifecycle.advance(s, row, CaseState.ESCALATED, actor=by.id, reason=f"{by.id} proposes {kind}", at=now)
            action = lifecycle.add_action(
                s,
                row,
                kind,
                status="proposed" if spec.needs_approval else "pending",
                actor=by.id,
                at=now,
                key=key,
                payload=payload,
            )
            assert action is not None  # the key counts this case's actions, so it is new
            if kind == "request-to-cease" and deadline is not None:
                row.notified_at = now
                if row.deadline is None or deadline > row.deadline:
                    row.deadline = deadline
                lifecycle.advance(s, row, CaseState.AWAITING_CUSTOMER, actor=by.id, reason="request to cease", at=now)
            elif kind in ("notify", "renotify"):
                lifecycle.advance(s, row, CaseState.NOTIFIED, actor=by.id, reason=f"{kind} by {by.id}", at=now)
            row.updated_at = now
            s.flush()
            return action_dict(action) | {"case_ref": row.ref, "case_state": row.state}

        return self._write(work)

    def approve(self, action_id: str, *, by: Principal, reason: str = "") -> dict[str, Any]:
        """Approve a proposed action: Forbidden for its proposer, a person who approved already, a service
        account, and anyone without the role the playbook step asks for (admin always may).

        When the action has its persons (the proposer, if a person, plus approvers; two at least) it becomes
        ``pending`` for the adapters; the case moves to the state the action asserts when it has been carried out.
        """
        by.require(Can.ACTION_APPROVE)
        if not by.is_person:
            raise Forbidden(f"{by.id} is a service account; only a person can approve an action")

        def work(s: Session) -> dict[str, Any]:
            action, case = self._proposed(s, action_id, by)
            payload = dict(action.payload or {})
            role = payload.get("approver_role") or Role.APPROVER.value
            if by.role is not Role.ADMIN and by.role.value != role:
                raise Forbidden(
                    f"action {action.id} ({action.kind}) must be approved by an {role}; {by.name} is {by.role}"
                )
            approvers = list(payload.get("approvers", []))
            if by.id in approvers:
                raise Forbidden(f"{by.name} already approved action {action.id}; a different person must approve it")
            approvers.append(by.id)
            persons = set(approvers) | ({action.proposed_by} if lifecycle.is_person(action.proposed_by) else set())
            needed = max(actions_catalogue.MIN_PERSONS, int(payload.get("approvals_needed", 2)))
            payload["approvers"] = approvers
            action.payload = payload
            now = self.rt.clock.now()
            action.updated_at = now
            done = len(persons) >= needed
            lifecycle.record(
                s,
                at=now,
                actor=by.id,
                action="action.approved" if done else "action.approval",
                subject_type="action",
                subject_id=action.id,
                payload={
                    "case": case.id,
                    "ref": case.ref,
                    "kind": action.kind,
                    "approvers": approvers,
                    "needed": needed,
                    "reason": reason,
                },
            )
            if done:
                action.approved_by = by.id
                action.status = "pending"
                lifecycle.advance(s, case, CaseState.ESCALATED, actor=by.id, reason="approved action", at=now)
                case.updated_at = now
            s.flush()
            out = action_dict(action) | {"case_ref": case.ref, "case_state": case.state}
            out["approvals_missing"] = max(0, needed - len(persons))
            return out

        return self._write(work)

    def reject(self, action_id: str, *, by: Principal, reason: str) -> dict[str, Any]:
        """Refuse a proposed action (an approver, or its proposer withdrawing it); it is never carried out."""
        if not reason.strip():
            raise Conflict("rejecting an action needs a reason")

        def work(s: Session) -> dict[str, Any]:
            action, case = self._proposed(s, action_id, by, proposer_ok=True)
            now = self.rt.clock.now()
            action.status, action.updated_at, action.error = "rejected", now, reason
            lifecycle.record(
                s,
                at=now,
                actor=by.id,
                action="action.rejected",
                subject_type="action",
                subject_id=action.id,
                payload={"case": case.id, "ref": case.ref, "kind": action.kind, "reason": reason},
            )
            case.updated_at = now
            s.flush()
            return action_dict(action) | {"case_ref": case.ref, "case_state": case.state}

        return self._write(work)

    def note(self, case: str, text: str, *, by: Principal) -> dict[str, Any]:
        by.require(Can.CASE_CHANGE)
        if not text.strip():
            raise Conflict("a note needs text")

        def work(s: Session) -> dict[str, Any]:
            row = self._load(s, case, by=by)
            now = self.rt.clock.now()
            note = CaseNoteRow(case_id=row.id, author=by.id, text=text, at=now)
            s.add(note)
            s.flush()
            lifecycle.record(
                s,
                at=now,
                actor=by.id,
                action="case.note",
                subject_type="case",
                subject_id=row.id,
                payload={"ref": row.ref, "note": note.id, "text": text},
            )
            return {
                "id": note.id,
                "case_id": row.id,
                "case_ref": row.ref,
                "author": by.id,
                "text": text,
                "at": iso(now),
            }

        return self._write(work)

    def respond(self, case: str, kind: str, text: str = "", *, by: Principal) -> dict[str, Any]:
        """The customer's word on its case: ``acknowledge`` (once; text optional), ``reply`` or ``appeal`` (text
        required). Recorded on the case's timeline, audited, shown to staff and to the customer. An appeal moves
        the case to ``appealed`` (its reason the appeal's text) where the lifecycle allows it, so it waits in the
        analysts' queue for a decision. Staff do not speak for the customer: they write notes, or send notices."""
        by.require(Can.CASE_RESPOND)
        if by.is_staff:
            raise Forbidden(
                f"{by.name} ({by.role}) works for the desk; acknowledgements, replies and appeals are the customer's "
                "(add a note instead)"
            )
        if kind not in MESSAGE_KINDS:
            raise Conflict(f"{kind!r} is not something a customer can say on a case; one of {', '.join(MESSAGE_KINDS)}")
        text = text.strip()
        if kind != "acknowledge" and not text:
            raise Conflict(f"a{'n' if kind[0] in 'aeiou' else ''} {kind} needs text")
        if len(text) > MAX_MESSAGE:
            raise Conflict(f"the {kind} is {len(text)} characters; at most {MAX_MESSAGE}")

        def work(s: Session) -> dict[str, Any]:
            row = self._load(s, case, by=by)
            if kind == "acknowledge":
                earlier = s.scalar(
                    select(CaseMessageRow.at).where(
                        CaseMessageRow.case_id == row.id, CaseMessageRow.kind == "acknowledge"
                    )
                )
                if earlier is not None:
                    raise Conflict(f"case {row.ref} was acknowledged already, at {iso(earlier)}")
            now = self.rt.clock.now()
            if kind == "appeal" and row.state != CaseState.APPEALED.value:
                if CaseState.APPEALED.value not in _ALLOWED[row.state]:
                    raise Conflict(
                        f"case {row.ref} is {row.state}; there is no decision to appeal (a case can be appealed once "
                        "it was notified, escalated or restricted); send a reply instead"
                    )
                lifecycle.transition(s, row, CaseState.APPEALED, actor=by.id, reason=text, at=now)
            message = CaseMessageRow(case_id=row.id, author=by.id, kind=kind, text=text, at=now)
            s.add(message)
            row.updated_at = now  # it moves up the analysts' queue (and its version changes)
            s.flush()
            done = {"acknowledge": "acknowledged", "reply": "replied", "appeal": "appealed"}[kind]
            lifecycle.record(
                s, at=now, actor=by.id, action=f"case.{done}", subject_type="case", subject_id=row.id,
                payload={"ref": row.ref, "message": message.id, "text": text},
            )  # fmt: skip
            return {"id": message.id, "case_id": row.id, "case_ref": row.ref, "author": by.id, "kind": kind,
                    "text": text, "at": iso(now)}  # fmt: skip

        return self._write(work)

    def notices(self, by: Principal, case: str | None = None, *, limit: int = 200) -> builtins.list[dict[str, Any]]:
        """Notices sent about ``by``'s cases (a customer: its own customer's; staff: any), newest first; with
        ``case``, those that mention that case. The text is the one that was mailed: composed once, with
        reporters withheld unless they agreed (actions/notices.py)."""
        by.require(Can.CASE_READ)
        with self.rt.sessions() as s:
            q = select(NoticeRow).where(NoticeRow.status == "sent")
            case_id = None
            if case is not None:
                row = self._load(s, case, by=by)
                case_id = row.id
                q = q.where(NoticeRow.customer_id == row.customer_id)
            elif not by.is_staff:
                q = q.where(NoticeRow.customer_id == by.customer_id)
            rows = s.scalars(q.order_by(NoticeRow.sent_at.desc(), NoticeRow.id.desc()).limit(limit * 4)).all()
            picked = [n for n in rows if case_id is None or case_id in (n.case_ids or [])][:limit]
            if not by.is_staff:
                picked = [n for n in picked if n.customer_id == by.customer_id]
            ids = {c for n in picked for c in (n.case_ids or [])}
            refs = dict(s.execute(select(CaseRow.id, CaseRow.ref).where(CaseRow.id.in_(ids))).all()) if ids else {}
            return [notice_dict(n, refs) for n in picked]

    def action(self, action_id: str, by: Principal) -> dict[str, Any]:
        """One action (its case must be visible to ``by``)."""
        by.require(Can.CASE_READ)
        with self.rt.sessions() as s:
            action = s.get(ActionRow, action_id)
            case = s.get(CaseRow, action.case_id) if action is not None else None
            if action is None or case is None or not by.sees_customer(case.customer_id):
                raise NotFound(f"action {action_id} does not exist")
            return action_dict(action) | {"case_ref": case.ref, "case_state": case.state}

    # ------------------------------------------------------------------------------------------------ helpers

    def _load(
        self, s: Session, case: str, expected_version: int | None = None, *, by: Principal | None = None
    ) -> CaseRow:
        row = s.scalar(select(CaseRow).where(or_(CaseRow.id == case, CaseRow.ref == case.upper())))
        if row is None or (by is not None and not by.sees_customer(row.customer_id)):
            # another customer's case answers as one that does not exist: its existence is not theirs to learn
            raise NotFound(f"case {case!r} does not exist (give its id or its AD-... reference; `abusedesk case list`)")
        if expected_version is not None and row.version != expected_version:
            raise PreconditionFailed(
                f"case {row.ref} changed since you read it (version {expected_version}, now {row.version}); reload it"
            )
        return row

    def _proposed(
        self, s: Session, action_id: str, by: Principal, *, proposer_ok: bool = False
    ) -> tuple[ActionRow, CaseRow]:
        """The proposed action ``by`` decides on, checked in this order so that a refusal tells nothing more than
        it must: it exists and ``by`` may see it (404), ``by`` may decide (403), it waits for a decision (409)."""
        action = s.get(ActionRow, action_id)
        case = s.get(CaseRow, action.case_id) if action is not None else None
        if action is None or case is None or not by.sees_customer(case.customer_id):
            raise NotFound(f"action {action_id} does not exist; `abusedesk case show CASE` lists a case's actions")
        own = action.proposed_by == by.id
        if not (proposer_ok and own):
            by.require(Can.ACTION_APPROVE)
        if action.status != "proposed":
            raise Conflict(f"action {action_id} ({action.kind}) is {action.status}, not proposed; nothing to decide")
        if own and not proposer_ok:
            raise Forbidden(
                f"{by.name} ({by.id}) proposed action {action_id} ({action.kind}); a different person must approve "
                "it (two-person rule)"
            )
        return action, case

    def _write(self, work: Callable[[Session], T]) -> T:
        with self._conflicts(), self.rt.sessions() as s, s.begin():
            result = work(s)
            outcomes = lifecycle.pop_outcomes(s)
        lifecycle.record_outcomes(self.rt, outcomes)
        return result

    @contextmanager
    def _conflicts(self) -> Iterator[None]:
        try:
            yield
        except StaleDataError:
            raise Conflict(
                "someone else changed this case at the same moment; your change was not saved; reload and retry"
            ) from None
        except IntegrityError as exc:
            raise Conflict(
                f"the change clashes with another one saved at the same moment ({exc.orig}); retry"
            ) from None
        except OperationalError as exc:
            if lifecycle.is_retryable(exc):
                raise Conflict(f"the case is being changed by another worker ({exc.orig}); retry") from None
            raise


def notice_dict(n: NoticeRow, refs: dict[str, str]) -> dict[str, Any]:
    """A sent notice as the portal and the API show it (``refs``: case id -> reference)."""
    return {
        "id": n.id,
        "kind": n.kind,
        "subject": n.subject,
        "body": n.body,
        "contact": n.contact,
        "sent_at": iso(n.sent_at) if n.sent_at else None,
        "customer_id": n.customer_id,
        "case_refs": [refs[c] for c in (n.case_ids or []) if c in refs],
    }


def withhold_reporter(finding: dict[str, Any], agreed: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A finding summary as a customer may see it: its reporter named only if the reporter agreed
    (``notices.disclose_reporters``, as in notices), else ``"a third party"``."""
    from abusedesk.actions.advice import is_disclosed

    facts = finding.get("facts")
    if not isinstance(facts, dict) or not facts.get("reporter") or is_disclosed(facts["reporter"], agreed):
        return finding
    return finding | {"facts": facts | {"reporter": "a third party"}}


def encode_cursor(at: datetime, case_id: str, sort: str = "updated") -> str:
    """An opaque cursor: the (sort column, id) of a page's last case; a sort other than the default is named in it,
    so a cursor is never read under another order."""
    head = "" if sort == "updated" else f"{sort}:"
    return base64.urlsafe_b64encode(f"{head}{iso(at)}|{case_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str = "updated") -> tuple[datetime, str]:
    """The (sort column, id) a cursor stands for; Conflict naming the cursor if it is not one of ours for
    ``sort``."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        head = "" if sort == "updated" else f"{sort}:"
        # a default cursor starts with its year; any other names its sort first
        if not text.startswith(head) or not text.removeprefix(head)[:1].isdigit():
            raise ValueError(f"not a cursor of sort {sort}")
        at, case_id = text.removeprefix(head).split("|", 1)
        return parse_time(at), case_id
    except (ValueError, UnicodeDecodeError):
        raise Conflict(
            f"cursor {cursor[:40]!r} is not a cursor this API gave out for sort {sort!r}; start from the first page"
        ) from None
