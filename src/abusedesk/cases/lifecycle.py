"""The steps every writer of cases shares (engine, analyst service, scheduler): transitions, actions, playbooks.

Each function works inside the caller's transaction and writes its audit entry there too, so a transition or an
action exists exactly when its proof does. Nothing here commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from abusedesk.domain.actions import ASSERTED_STATES, CATALOGUE, TWO_PERSON
from abusedesk.domain.casestate import CONFIRMED, ENDED, CaseState, check_transition, path_to
from abusedesk.domain.errors import Forbidden, NotFound
from abusedesk.domain.identity import ENGINE, Role, is_service_id
from abusedesk.domain.ids import stable_id
from abusedesk.domain.records import Severity
from abusedesk.domain.timeutil import iso
from abusedesk.evidence import audit
from abusedesk.policy.model import MIN_APPROVALS, ClauseRole, Policy, StepType
from abusedesk.store import bulk
from abusedesk.store.tables.cases import ActionRow, CaseRow, CaseTransitionRow, FindingRow

log = logging.getLogger(__name__)

#: The forward order of the automatic part of the lifecycle; the engine only ever moves a case forward in it.
_FORWARD = {
    CaseState.NEW: 0,
    CaseState.TRIAGED: 1,
    CaseState.NOTIFIED: 2,
    CaseState.AWAITING_CUSTOMER: 3,
    CaseState.ESCALATED: 4,
}
OUTCOMES_KEY = "abusedesk.case_outcomes"
FINDING_SAMPLE = 20


AUDIT_BUFFER = "abusedesk.case_audit_buffer"
TRANSITION_BUFFER = "abusedesk.case_transition_buffer"
#: session.info: case id -> the idempotency keys of its actions, for cases whose keys a writer loaded in one go
ACTION_KEYS = "abusedesk.action_keys"
#: The columns a writer of cases changes; :func:`write_cases` writes exactly these (and the version).
MUTABLE_COLUMNS = (
    "state", "open_key", "closed_at", "severity", "base_severity", "deadline", "notified_at", "last_finding_at",
    "finding_count", "reopen_count", "updated_at",
)  # fmt: skip
_MUTABLE = frozenset(MUTABLE_COLUMNS)


def record(session: Session, **entry: Any) -> None:
    """Write an audit entry (the arguments of ``audit.append``) in the caller's transaction.

    Inside :func:`buffered_writes` the entries are collected and written at the end in one insert, in order.
    """
    buffer = session.info.get(AUDIT_BUFFER)
    if buffer is None:
        audit.append(session, **entry)
    else:
        buffer.append(entry)


def add_transition(
    session: Session, case_id: str, from_state: str | None, to_state: str, *, actor: str, reason: str, at: datetime
) -> None:
    """Add a row to the case's timeline (buffered inside :func:`buffered_writes`)."""
    row = {
        "case_id": case_id,
        "from_state": from_state,
        "to_state": to_state,
        "actor": actor,
        "reason": reason,
        "at": at,
    }
    buffer = session.info.get(TRANSITION_BUFFER)
    if buffer is None:
        session.add(CaseTransitionRow(**row))
    else:
        buffer.append(row)


@contextmanager
def buffered_writes(session: Session) -> Iterator[None]:
    """Collect the transitions and audit entries of a block and write them at its end, each kind in one go (same
    chain, same transaction); the block must have written the cases they refer to by then."""
    session.info[AUDIT_BUFFER], session.info[TRANSITION_BUFFER] = [], []
    try:
        yield
        bulk.copy_rows(session, CaseTransitionRow.__table__, session.info[TRANSITION_BUFFER])
        audit.append_many(session, session.info[AUDIT_BUFFER])
    finally:
        session.info.pop(AUDIT_BUFFER, None)
        session.info.pop(TRANSITION_BUFFER, None)


def load_action_keys(session: Session, case_ids: Sequence[str], *, new: Sequence[str] = ()) -> None:
    """Load the action idempotency keys of ``case_ids`` in one query (``new`` cases have none yet), so that
    :func:`add_action` checks them in memory instead of asking the database once per action."""
    known: dict[str, set[str]] = session.info.setdefault(ACTION_KEYS, {})
    for cid in new:
        known[cid] = set()
    todo = [cid for cid in dict.fromkeys(case_ids) if cid not in known]
    for i in range(0, len(todo), 500):
        part = todo[i : i + 500]
        for cid in part:
            known[cid] = set()
        rows = session.execute(select(ActionRow.case_id, ActionRow.idempotency_key).where(ActionRow.case_id.in_(part)))
        for cid, key in rows:
            known[cid].add(key)


def write_cases(session: Session, cases: Sequence[CaseRow]) -> int:
    """Write stored cases whose :data:`MUTABLE_COLUMNS` changed in one statement, each checked against the version
    it was read at (as the ORM's own flush does, but that flush sends one UPDATE per case, a round trip each).
    Raises StaleDataError when another writer changed one of them. Returns how many were written.

    Cases with other changes, and new cases, are left to the session's flush.
    """
    rows, written = [], []
    for case in cases:
        state = inspect(case)
        if not state.persistent or not state.modified:
            continue
        changed = state.committed_state.keys()  # the attributes set since the last load or flush
        if not changed or not changed <= _MUTABLE:
            continue
        rows.append([case.id, case.version, *(getattr(case, col) for col in MUTABLE_COLUMNS), case.version + 1])
        written.append(case)
    if not rows:
        return 0
    matched = bulk.update_rows(session, CaseRow.__table__, ("id", "version"), (*MUTABLE_COLUMNS, "version"), rows)
    if matched != len(rows):
        raise StaleDataError(
            f"{len(rows) - matched} of {len(rows)} cases were changed by another writer since they were read"
        )
    for case in written:  # the session now holds what the database holds: nothing left for its flush to write
        for col in MUTABLE_COLUMNS:
            set_committed_value(case, col, getattr(case, col))
        set_committed_value(case, "version", case.version + 1)
    return len(written)


def is_retryable(exc: BaseException) -> bool:
    """A database error that means "another writer got there first": SQLite busy, PostgreSQL deadlock/serialisation."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) in ("40001", "40P01") or "database is locked" in str(orig)


def is_person(actor: str) -> bool:
    """A user id, not a service account's (``svc:...``) or a stage's (``stage:...``)."""
    return not is_service_id(actor)


def case_key(customer_id: str | None, service_id: str | None, clause: str, group_key: str) -> str:
    """The grouping key of a case: same customer, service, clause and detector group key → same case."""
    return stable_id("ck", customer_id, service_id, clause, group_key)


def case_ref(case_id: str) -> str:
    """The short reference customers and analysts quote ("AD-3F2A9C01B7")."""
    return "AD-" + case_id.split("_", 1)[-1][:10].upper()


def step_key(case: CaseRow, rnd: int, step: str, action: str | None = None) -> str:
    """The idempotency key of a playbook step: once per case, round (reopen count), step and action."""
    return f"{case.id}:{rnd}:{step}" + (f":{action}" if action else "")


def transition(
    session: Session,
    case: CaseRow,
    target: CaseState | str,
    *,
    actor: str,
    reason: str,
    at: datetime,
    carried_out: str | None = None,
) -> CaseState:
    """Move ``case`` to ``target`` if the lifecycle allows it; record the transition and its audit entry.

    A state that asserts an action (restricted, reported, reinstated: :data:`ASSERTED_STATES`) is reached only
    with ``carried_out``, the id of the action whose carrying out it records (the action runner passes it);
    anyone else is Forbidden, so "restricted" always means an approved suspension was carried out.
    """
    src = case.state
    dst = check_transition(src, target, reason=reason, case_ref=case.ref)
    if dst in ASSERTED_STATES and carried_out is None:
        kinds = ", ".join(k for k, s in CATALOGUE.items() if s.asserts is dst)
        raise Forbidden(
            f"case {case.ref} cannot be moved to {dst.value!r} by hand: that state says an action ({kinds}) was "
            "carried out; propose the action, and the case moves there when it has been done"
        )
    case.state = dst.value
    case.updated_at = at
    if dst in ENDED:
        case.open_key = None
        if case.closed_at is None:
            case.closed_at = at
    else:
        case.open_key = case.case_key
        case.closed_at = None
    add_transition(session, case.id, src, dst.value, actor=actor, reason=reason, at=at)
    record(
        session,
        at=at,
        actor=actor,
        action="case.transition",
        subject_type="case",
        subject_id=case.id,
        payload={"ref": case.ref, "from": src, "to": dst.value, "reason": reason}
        | ({"action": carried_out} if carried_out else {}),
    )
    if dst == CaseState.DISMISSED or (dst in CONFIRMED and src not in {s.value for s in CONFIRMED}):
        session.info.setdefault(OUTCOMES_KEY, []).append((case.id, dst != CaseState.DISMISSED))
    return dst


def advance(session: Session, case: CaseRow, target: CaseState, *, actor: str, reason: str, at: datetime) -> None:
    """Walk ``case`` forward to ``target`` through each intermediate state (each recorded); never backwards."""
    current = CaseState(case.state)
    if current not in _FORWARD or _FORWARD[current] >= _FORWARD[target]:
        return
    for step in path_to(current, target):
        transition(session, case, step, actor=actor, reason=reason, at=at)


def add_action(
    session: Session,
    case: CaseRow,
    kind: str,
    *,
    status: str,
    actor: str,
    at: datetime,
    key: str,
    payload: dict[str, Any],
) -> ActionRow | None:
    """Create an action once per idempotency ``key``; returns None if it already exists."""
    known = session.info.get(ACTION_KEYS, {}).get(case.id)
    if known is None:
        if session.scalar(select(ActionRow.id).where(ActionRow.idempotency_key == key)) is not None:
            return None
    elif key in known:
        return None
    else:
        known.add(key)
    row = ActionRow(
        id=stable_id("ac", key),
        case_id=case.id,
        kind=kind,
        status=status,
        idempotency_key=key,
        proposed_by=actor,
        approved_by=None,
        payload=payload,
        result={},
        attempts=0,
        dry_run=False,
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    record(
        session,
        at=at,
        actor=actor,
        action=f"action.{status}",
        subject_type="action",
        subject_id=row.id,
        payload={"case": case.id, "ref": case.ref, "kind": kind, "status": status, "key": key},
    )
    return row


def finding_summaries(session: Session, case: CaseRow, limit: int = FINDING_SAMPLE) -> list[dict[str, Any]]:
    rows = session.execute(
        select(FindingRow.id, FindingRow.kind, FindingRow.summary, FindingRow.window_start, FindingRow.window_end)
        .where(FindingRow.case_id == case.id)
        .order_by(FindingRow.window_end.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "summary": r.summary,
            "window_start": iso(r.window_start),
            "window_end": iso(r.window_end),
        }
        for r in rows
    ]


def _role_clause(policy: Policy, role: ClauseRole) -> str | None:
    try:
        return policy.clause_for_role(role).id
    except NotFound:
        return None


def action_payload(
    policy: Policy,
    case: CaseRow,
    kind: str,
    findings: Sequence[dict[str, Any]],
    *,
    deadline: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What an adapter needs to carry out ``kind`` for ``case``: the notice's facts, the clauses it cites."""
    try:
        clause = policy.clause(case.clause)
        title, text = clause.title, clause.text
    except NotFound:
        title, text = case.clause, ""
    cites = [case.clause]
    if kind == "request-to-cease":
        duty = _role_clause(policy, ClauseRole.DUTY_TO_CEASE)
        if duty:
            cites.append(duty)
    if kind in TWO_PERSON or CATALOGUE[kind].asserts is not None:
        rights = _role_clause(policy, ClauseRole.ENFORCEMENT_RIGHTS)
        if rights:
            cites.append(rights)
    out: dict[str, Any] = {
        "case_id": case.id,
        "case_ref": case.ref,
        "customer_id": case.customer_id,
        "project_id": case.project_id,
        "service_id": case.service_id,
        "clause": case.clause,
        "clause_title": title,
        "clause_text": text,
        "cites": cites,
        "kind": case.kind,
        "group_key": case.group_key,
        "severity": case.severity,
        "policy_version": case.policy_version,
        "deadline": iso(deadline) if deadline else None,
        "max_notice_delay_s": int(policy.max_notice_delay(case.severity).total_seconds())
        if kind in ("notify", "request-to-cease", "renotify")
        else 0,
        "finding_count": case.finding_count,
        "findings": list(findings)[:FINDING_SAMPLE],
    }
    if kind in TWO_PERSON:
        out["approvals_needed"] = max(MIN_APPROVALS, CATALOGUE[kind].persons)
        out["approvers"] = []
        out["approver_role"] = Role.APPROVER.value
    return out | (extra or {})


@dataclass
class PlaybookRun:
    actions: list[ActionRow] = field(default_factory=list)
    triage: bool = False


def run_playbook(
    session: Session,
    policy: Policy,
    case: CaseRow,
    *,
    at: datetime,
    findings: Sequence[dict[str, Any]] | None = None,
    actor: str = ENGINE.id,
) -> PlaybookRun:
    """Carry out the automatic steps of the playbook for the case's clause and severity.

    notify / request-to-cease create ``pending`` actions (idempotent per case, round and step) and move the case to
    notified / awaiting-customer; propose creates a ``proposed`` action that waits for two persons and moves the
    case to escalated; triage stops and leaves the case to an analyst. renotify and escalate-on-repeat are timed
    steps: :class:`abusedesk.cases.scheduler.Scheduler` carries them out.
    """
    run = PlaybookRun()
    try:
        playbook = policy.playbook_for(case.clause, case.severity)
    except NotFound as exc:
        advance(session, case, CaseState.TRIAGED, actor=actor, reason=f"no playbook: {exc.message}", at=at)
        run.triage = True
        return run
    summaries = list(findings) if findings is not None else finding_summaries(session, case)
    rnd = case.reopen_count
    for step in playbook.steps:
        key = step_key(case, rnd, step.type.value, step.action)
        if step.type is StepType.TRIAGE:
            advance(
                session, case, CaseState.TRIAGED, actor=actor, reason=step.note or "the playbook asks for triage", at=at
            )
            run.triage = True
            break
        if step.type is StepType.NOTIFY:
            row = add_action(
                session,
                case,
                "notify",
                status="pending",
                actor=actor,
                at=at,
                key=key,
                payload=action_payload(policy, case, "notify", summaries),
            )
            if row is not None:
                run.actions.append(row)
                case.notified_at = case.notified_at if case.notified_at and case.notified_at >= at else at
            advance(
                session,
                case,
                CaseState.NOTIFIED,
                actor=actor,
                reason=f"notice queued (playbook {playbook.name})",
                at=at,
            )
        elif step.type is StepType.REQUEST_TO_CEASE:
            assert step.deadline is not None  # the loader requires it
            deadline = at + step.deadline

            def request(
                key: str, extra: dict[str, Any] | None = None, deadline: datetime = deadline
            ) -> ActionRow | None:
                payload = action_payload(policy, case, "request-to-cease", summaries, deadline=deadline, extra=extra)
                return add_action(
                    session, case, "request-to-cease", status="pending", actor=actor, at=at, key=key, payload=payload
                )

            row = request(key)
            if row is not None:
                run.actions.append(row)
                if case.deadline is None or deadline > case.deadline:  # deadlines never move backwards
                    case.deadline = deadline
                case.notified_at = at
            elif (
                case.deadline is not None
                and deadline < case.deadline
                and case.state in (CaseState.NOTIFIED.value, CaseState.AWAITING_CUSTOMER.value)
            ):
                # the severity rose and its playbook gives less time: a new request to cease says so (the earlier
                # deadline only binds the customer once it has been told); once per severity
                earlier = request(
                    f"{key}:{case.severity}",
                    {"replaces_deadline": iso(case.deadline), "severity_rose_to": case.severity},
                )
                if earlier is not None:
                    run.actions.append(earlier)
                    record(
                        session,
                        at=at,
                        actor=actor,
                        action="case.deadline",
                        subject_type="case",
                        subject_id=case.id,
                        payload={
                            "ref": case.ref,
                            "from": iso(case.deadline),
                            "to": iso(deadline),
                            "severity": case.severity,
                        },
                    )
                    case.deadline = deadline
            advance(
                session,
                case,
                CaseState.AWAITING_CUSTOMER,
                actor=actor,
                reason=f"request to cease queued, deadline {iso(case.deadline or deadline)}",
                at=at,
            )
        elif step.type is StepType.PROPOSE:
            assert step.action is not None
            row = add_action(
                session,
                case,
                step.action,
                status="proposed",
                actor=actor,
                at=at,
                key=key,
                payload=action_payload(
                    policy,
                    case,
                    step.action,
                    summaries,
                    extra={
                        "approvals_needed": max(MIN_APPROVALS, step.approvals),
                        "approvers": [],
                        "approver_role": (step.role or Role.APPROVER).value,
                    },
                ),
            )
            if row is not None:
                run.actions.append(row)
            advance(
                session,
                case,
                CaseState.ESCALATED,
                actor=actor,
                reason=f"playbook {playbook.name} proposes {step.action}",
                at=at,
            )
    return run


def raise_severity(case: CaseRow, severity: Severity) -> bool:
    """Set the case's severity to ``severity`` if that is higher; True if it rose."""
    if Severity(severity).rank > Severity(case.severity).rank:
        case.severity = Severity(severity).value
        return True
    return False


def pop_outcomes(session: Session) -> list[tuple[str, bool]]:
    return list(session.info.pop(OUTCOMES_KEY, []))


def record_outcomes(rt: Any, outcomes: Sequence[tuple[str, bool]]) -> None:
    """After commit: tell the reporters' accuracy ledger whether the cases their reports opened were confirmed.

    Uses ``abusedesk.intake.reporters.record_case_outcome(rt, reporter, confirmed)`` (imported here: the intake
    imports the case engine's stage, not the other way round).
    """
    if not outcomes:
        return
    from abusedesk.intake.reporters import record_case_outcome as count_outcome

    with rt.sessions() as s:
        for case_id, confirmed in outcomes:
            names: set[str] = set()
            for (data,) in s.execute(select(FindingRow.data).where(FindingRow.case_id == case_id)):
                for ev in (data or {}).get("evidence", []):
                    if isinstance(ev, dict) and ev.get("reporter"):
                        names.add(str(ev["reporter"]))
            for name in sorted(names):
                try:
                    count_outcome(rt, name, confirmed)
                except Exception:  # the ledger is advisory; a failure must not undo a committed decision
                    log.exception("recording outcome of case %s for reporter %s failed", case_id, name)
