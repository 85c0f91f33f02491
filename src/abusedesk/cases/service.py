"""CaseService: what analysts (CLI, API, console) do with cases: list, show, transition, act, approve, note.

Every change is one transaction with its audit entry. Two analysts changing one case at the same moment: the
case's optimistic ``version`` makes the later commit fail with Conflict ("reload and retry"), never a lost update.
Destructive actions (suspend-service, disable-data-access, report-officials) are proposed by one person and carried
out only after a *different* person approves; the proposer approving is Forbidden.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from abusedesk.cases import lifecycle
from abusedesk.domain.casestate import ENDED, CaseState, allowed_targets, parse_state
from abusedesk.domain.errors import Conflict, Forbidden, NotFound
from abusedesk.domain.timeutil import iso
from abusedesk.policy.model import Policy
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseNoteRow, CaseRow, CaseTransitionRow, FindingRow

T = TypeVar("T")


def case_dict(case: CaseRow) -> dict[str, Any]:
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
        "allowed": [s.value for s in allowed_targets(case.state)],
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
    """The analysts' operations on cases. Actors are names ("alice"); "engine" and "scheduler" are the system."""

    def __init__(self, rt: Runtime, policy: Policy | None = None) -> None:
        self.rt = rt
        self._policy = policy

    @property
    def policy(self) -> Policy:
        return self._policy if self._policy is not None else self.rt.policy

    # ------------------------------------------------------------------------------------------------ reading

    def list(
        self,
        *,
        state: str | None = None,
        customer: str | None = None,
        clause: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Cases, newest change first, filtered by state, customer and clause."""
        q = select(CaseRow).order_by(CaseRow.updated_at.desc(), CaseRow.id).limit(limit)
        if state:
            q = q.where(CaseRow.state == parse_state(state).value)
        if customer:
            q = q.where(CaseRow.customer_id == customer)
        if clause:
            q = q.where(CaseRow.clause == clause)
        with self.rt.sessions() as s:
            return [case_dict(c) for c in s.scalars(q)]

    def get(self, case: str) -> dict[str, Any]:
        """One case with a findings summary and its timeline (transitions, actions, notes) in time order."""
        with self.rt.sessions() as s:
            row = self._load(s, case)
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
            for n in s.scalars(select(CaseNoteRow).where(CaseNoteRow.case_id == row.id)):
                timeline.append({"at": iso(n.at), "type": "note", "actor": n.author, "text": n.text, "_order": n.id})
            timeline.sort(key=lambda e: (e["at"], e["type"] != "transition", e.pop("_order")))
            out["timeline"] = timeline
            return out

    def summary(self) -> dict[str, Any]:
        """Counts of cases per state, customer and clause (the demo prints it), and open actions per status."""
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
        self, case: str, to: str, *, actor: str, reason: str = "", expected_version: int | None = None
    ) -> dict[str, Any]:
        """Move a case to ``to``. Conflict for an illegal move (naming the allowed ones) or a concurrent change."""
        _need_actor(actor)

        def work(s: Session) -> dict[str, Any]:
            row = self._load(s, case, expected_version)
            self.transition_in(s, row, to, actor=actor, reason=reason)
            return case_dict(row)

        return self._write(work)

    def transition_in(self, s: Session, row: CaseRow, to: str, *, actor: str, reason: str) -> None:
        """The transition inside the caller's session (used by :meth:`transition` and by concurrency tests)."""
        lifecycle.transition(s, row, parse_state(to), actor=actor, reason=reason, at=self.rt.clock.now())

    def propose(self, case: str, kind: str, *, actor: str, reason: str = "") -> dict[str, Any]:
        """Start an action on a case.

        Two-person kinds (suspend-service, disable-data-access, report-officials) become ``proposed`` and move the
        case to escalated; they wait for :meth:`approve` by someone else. One-person kinds (notify,
        request-to-cease, renotify, reinstate) go straight to ``pending`` for the adapters; reinstate needs a reason
        and moves the case to reinstated.
        """
        _need_actor(actor)
        if kind not in lifecycle.ACTION_KINDS:
            raise Conflict(f"{kind!r} is not an action; the actions are {', '.join(sorted(lifecycle.ACTION_KINDS))}")
        policy = self.policy

        def work(s: Session) -> dict[str, Any]:
            row = self._load(s, case)
            now = self.rt.clock.now()
            if CaseState(row.state) in ENDED:
                raise Conflict(f"case {row.ref} is {row.state}; reopen it (transition to 'new') before acting on it")
            n = s.scalar(select(func.count()).select_from(ActionRow).where(ActionRow.case_id == row.id)) or 0
            key = f"{row.id}:manual:{kind}:{n + 1}"
            summaries = lifecycle.finding_summaries(s, row)
            two = kind in lifecycle.TWO_PERSON
            deadline = None
            if kind == "request-to-cease":
                try:
                    cease = policy.playbook_for(row.clause, row.severity).cease_deadline
                except NotFound:
                    cease = None
                if cease is not None:
                    deadline = now + cease
            extra = {"reason": reason, "requested_by": actor}
            payload = lifecycle.action_payload(policy, row, kind, summaries, deadline=deadline, extra=extra)
            if kind == "reinstate":
                lifecycle.transition(s, row, CaseState.REINSTATED, actor=actor, reason=reason, at=now)
            elif two:
                lifecycle.advance(s, row, CaseState.ESCALATED, actor=actor, reason=f"{actor} proposes {kind}", at=now)
            action = lifecycle.add_action(
                s, row, kind, status="proposed" if two else "pending", actor=actor, at=now, key=key, payload=payload
            )
            assert action is not None  # the key counts this case's actions, so it is new
            if kind == "request-to-cease" and deadline is not None:
                row.notified_at = now
                if row.deadline is None or deadline > row.deadline:
                    row.deadline = deadline
                lifecycle.advance(s, row, CaseState.AWAITING_CUSTOMER, actor=actor, reason="request to cease", at=now)
            elif kind in ("notify", "renotify"):
                lifecycle.advance(s, row, CaseState.NOTIFIED, actor=actor, reason=f"{kind} by {actor}", at=now)
            row.updated_at = now
            s.flush()
            return action_dict(action) | {"case_ref": row.ref, "case_state": row.state}

        return self._write(work)

    def approve(self, action_id: str, *, actor: str, reason: str = "") -> dict[str, Any]:
        """Approve a proposed action. The proposer (or a person who approved already) is Forbidden.

        When the action has its persons (proposer, if a person, plus approvers; two by default) it becomes
        ``pending`` for the adapters and the case moves to restricted (suspension, disabled data access) or reported.
        """
        _need_actor(actor)
        if not lifecycle.is_person(actor):
            raise Forbidden(f"{actor!r} is the system; only a person can approve an action")

        def work(s: Session) -> dict[str, Any]:
            action = s.get(ActionRow, action_id)
            if action is None:
                raise NotFound(f"action {action_id} does not exist; `abusedesk case show CASE` lists a case's actions")
            if action.status != "proposed":
                raise Conflict(
                    f"action {action_id} ({action.kind}) is {action.status}, not proposed; nothing to approve"
                )
            if actor == action.proposed_by:
                raise Forbidden(
                    f"{actor} proposed action {action_id} ({action.kind}); a different person must approve it "
                    "(two-person rule)"
                )
            payload = dict(action.payload or {})
            approvers = list(payload.get("approvers", []))
            if actor in approvers:
                raise Forbidden(f"{actor} already approved action {action_id}; a different person must approve it")
            approvers.append(actor)
            persons = approvers + ([action.proposed_by] if lifecycle.is_person(action.proposed_by) else [])
            needed = int(payload.get("approvals_needed", 2))
            payload["approvers"] = approvers
            action.payload = payload
            now = self.rt.clock.now()
            action.updated_at = now
            case = s.get(CaseRow, action.case_id)
            assert case is not None
            done = len(set(persons)) >= needed
            lifecycle.record(
                s,
                at=now,
                actor=actor,
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
                action.approved_by = actor
                action.status = "pending"
                target = lifecycle.ACTION_STATE.get(action.kind)
                if target is not None and target.value != case.state:
                    lifecycle.advance(s, case, CaseState.ESCALATED, actor=actor, reason="approved action", at=now)
                    lifecycle.transition(
                        s,
                        case,
                        target,
                        actor=actor,
                        at=now,
                        # the proposer is one of the two persons but did not approve (issue 11: "approved by
                        # bob, alice" read as if alice's refused self-approval had counted)
                        reason=f"{action.kind} proposed by {action.proposed_by}, approved by {', '.join(approvers)} "
                        f"(action {action.id})",
                    )
                case.updated_at = now
            s.flush()
            out = action_dict(action) | {"case_ref": case.ref, "case_state": case.state}
            out["approvals_missing"] = max(0, needed - len(set(persons)))
            return out

        return self._write(work)

    def note(self, case: str, text: str, *, actor: str) -> dict[str, Any]:
        _need_actor(actor)
        if not text.strip():
            raise Conflict("a note needs text")

        def work(s: Session) -> dict[str, Any]:
            row = self._load(s, case)
            now = self.rt.clock.now()
            note = CaseNoteRow(case_id=row.id, author=actor, text=text, at=now)
            s.add(note)
            s.flush()
            lifecycle.record(
                s,
                at=now,
                actor=actor,
                action="case.note",
                subject_type="case",
                subject_id=row.id,
                payload={"ref": row.ref, "note": note.id, "text": text},
            )
            return {
                "id": note.id,
                "case_id": row.id,
                "case_ref": row.ref,
                "author": actor,
                "text": text,
                "at": iso(now),
            }

        return self._write(work)

    # ------------------------------------------------------------------------------------------------ helpers

    def _load(self, s: Session, case: str, expected_version: int | None = None) -> CaseRow:
        row = s.scalar(select(CaseRow).where(or_(CaseRow.id == case, CaseRow.ref == case.upper())))
        if row is None:
            raise NotFound(f"case {case!r} does not exist (give its id or its AD-... reference; `abusedesk case list`)")
        if expected_version is not None and row.version != expected_version:
            raise Conflict(
                f"case {row.ref} changed since you read it (version {expected_version}, now {row.version}); reload it"
            )
        return row

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


def _need_actor(actor: str) -> None:
    if not actor or not actor.strip():
        raise Conflict("an actor (who does this) is required: --actor NAME")
