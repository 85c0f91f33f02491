"""The case engine: findings become cases, and new cases get their playbook.

Grouping (docs/reference/case-lifecycle.md#grouping): a finding joins the case with the same customer, service,
primary clause (the finding's first clause) and group key. If that case ended (resolved, closed, dismissed) and
the finding's window ends within the policy's ``reopen_window`` after it ended, the case reopens (``new`` again,
``reopen_count`` + 1); a finding whose window ended before the case ended is late news about the same episode and
joins it without reopening; later ones open a new case. A finding id is stored once: a duplicate never counts
twice. A finding with no service (not attributed to a customer of ours) opens no case.

Batches are processed in one transaction; ``open_key`` (unique while a case is open) and the optimistic
``version`` of each case make a concurrent engine worker's conflicting batch fail with Conflict, and
:meth:`CaseEngine.handle` then retries it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from abusedesk.bus.base import StageBatch
from abusedesk.cases import lifecycle
from abusedesk.domain.casestate import ENDED, CaseState
from abusedesk.domain.errors import Conflict
from abusedesk.domain.identity import ENGINE
from abusedesk.domain.ids import stable_id
from abusedesk.domain.records import Finding, Severity
from abusedesk.domain.timeutil import as_utc, iso, parse_time
from abusedesk.policy.model import Policy
from abusedesk.runtime import Runtime
from abusedesk.store import bulk
from abusedesk.store.tables.cases import ActionRow, CaseRow, FindingRow

log = logging.getLogger(__name__)

_CHUNK = 500


@dataclass
class IngestReport:
    """What one :meth:`CaseEngine.ingest` call did."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    unattributed: int = 0
    opened: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    actions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "unattributed": self.unattributed,
            "opened": self.opened,
            "reopened": self.reopened,
            "updated": self.updated,
            "actions": self.actions,
        }


def finding_from_dict(data: dict[str, Any]) -> Finding:
    """Rebuild a Finding from ``Finding.to_dict()`` output (the findings.new message)."""
    return Finding(
        id=str(data["id"]),
        detector=str(data["detector"]),
        kind=str(data["kind"]),
        clauses=tuple(str(c) for c in data["clauses"]),
        group_key=str(data["group_key"]),
        window_start=parse_time(data["window_start"]),
        window_end=parse_time(data["window_end"]),
        severity=Severity(data["severity"]),
        confidence=float(data["confidence"]),
        summary=str(data["summary"]),
        subject_ip=data.get("subject_ip"),
        customer_id=data.get("customer_id"),
        project_id=data.get("project_id"),
        service_id=data.get("service_id"),
        event_ids=tuple(data.get("event_ids") or ()),
        evidence=tuple(data.get("evidence") or ()),
        policy_version=data.get("policy_version"),
    )


def _summary(f: Finding) -> dict[str, Any]:
    return lifecycle.finding_summary(
        id=f.id,
        kind=f.kind,
        summary=f.summary,
        window_start=f.window_start,
        window_end=f.window_end,
        evidence=f.evidence,
    )


class CaseEngine:
    """Turns findings into cases. ``handle`` is the bus handler for ``findings.new``; ``ingest`` the direct call."""

    def __init__(self, rt: Runtime, policy: Policy | None = None, *, actor: str = ENGINE.id) -> None:
        self.rt = rt
        self._policy = policy
        self.actor = actor

    @property
    def policy(self) -> Policy:
        return self._policy if self._policy is not None else self.rt.policy

    def ingest(self, findings: list[Finding], policy_version: str | None = None) -> IngestReport:
        """Store new findings once, group them into cases and run playbooks, in a transaction of its own."""
        with self.rt.sessions() as session, session.begin():
            report, outcomes = self.ingest_in(session, findings, policy_version)
        lifecycle.record_outcomes(self.rt, outcomes)
        return report

    def ingest_in(
        self, session: Session, findings: list[Finding], policy_version: str | None = None
    ) -> tuple[IngestReport, list[tuple[str, bool]]]:
        """The same inside the caller's transaction (the cases stage's batch); returns the report and the
        reporter outcomes to record after the commit. A concurrent engine's change to the same cases raises
        Conflict: the caller rolls back and runs the batch again."""
        report = IngestReport(received=len(findings))
        try:
            with lifecycle.buffered_writes(session):  # one insert for the batch's transitions, one for its audit
                self._ingest(session, findings, policy_version, report)
            session.info.pop(lifecycle.ACTION_KEYS, None)
            outcomes = lifecycle.pop_outcomes(session)
        except (StaleDataError, IntegrityError) as exc:
            raise Conflict(
                f"another worker changed the cases of this batch of {len(findings)} findings at the same time "
                f"({type(exc).__name__}); retry the batch"
            ) from None
        except OperationalError as exc:
            if lifecycle.is_retryable(exc):
                raise Conflict(f"the cases of this batch are locked by another worker ({exc.orig}); retry") from None
            raise
        return report, outcomes

    # ------------------------------------------------------------------------------------------------ internals

    def _ingest(self, s: Session, findings: list[Finding], version: str | None, report: IngestReport) -> None:
        policy = self.policy
        now = self.rt.clock.now()
        unique: dict[str, Finding] = {}
        for f in findings:
            if f.id in unique:
                report.duplicates += 1
            else:
                unique[f.id] = f
        attributed: list[Finding] = []
        for f in unique.values():
            # account-level findings (a signup: sections 2 and 1.10) have a customer but no service yet
            if f.service_id is None and f.customer_id is None:
                report.unattributed += 1
                log.info("finding %s (%s, %s) is not attributed to a customer; no case", f.id, f.kind, f.group_key)
            else:
                attributed.append(f)
        known = _known_ids(s, [f.id for f in attributed])
        fresh = [f for f in attributed if f.id not in known]
        report.duplicates += len(attributed) - len(fresh)
        if not fresh:
            return

        groups: dict[str, list[Finding]] = defaultdict(list)
        keys_of: dict[tuple[Any, ...], str] = {}  # many findings share a key: hash it once per batch
        for f in fresh:
            parts = (f.customer_id, f.service_id, f.clauses[0], f.group_key)
            key = keys_of.get(parts)
            if key is None:
                key = keys_of[parts] = lifecycle.case_key(*parts)
            groups[key].append(f)
        existing: dict[str, list[CaseRow]] = defaultdict(list)
        keys = list(groups)
        for i in range(0, len(keys), _CHUNK):
            for case in s.scalars(select(CaseRow).where(CaseRow.case_key.in_(keys[i : i + _CHUNK]))):
                existing[case.case_key].append(case)

        # Everything below is decided in memory and written in one flush (new cases are inserted with their final
        # counts and state, not inserted and then updated), then the findings follow by COPY/INSERT.
        with s.no_autoflush:
            by_case, cases_by_id, new_cases, reopened, dismissed_reopen = self._assign(
                s, policy, groups, existing, version, now
            )
            new_ids = {c.id for c in new_cases}
            raised = self._update_counts(s, policy, by_case, cases_by_id, dismissed_reopen, new_ids, now)
            fresh_ids = new_ids | {c.id for c in reopened}
            rerun = sorted(cid for cid in raised - fresh_ids if CaseState(cases_by_id[cid].state) not in ENDED)
            lifecycle.load_action_keys(s, [c.id for c in reopened] + rerun, new=sorted(new_ids))
            for case in [*new_cases, *reopened]:
                run = lifecycle.run_playbook(
                    s, policy, case, at=now, findings=_sample(by_case[case.id]), actor=self.actor
                )
                report.actions += len(run.actions)
            for case_id in rerun:  # a higher severity may have a stronger playbook
                run = lifecycle.run_playbook(
                    s, policy, cases_by_id[case_id], at=now, findings=_sample(by_case[case_id]), actor=self.actor
                )
                report.actions += len(run.actions)
            lifecycle.write_cases(s, [c for cid, c in cases_by_id.items() if cid not in new_ids])
        # new cases and their actions by COPY (in foreign-key order), then whatever else is pending; the transitions
        # and audit entries follow at the end of buffered_writes
        bulk.flush_new(s, [CaseRow, ActionRow])
        s.flush()
        report.stored = self._insert_findings(s, by_case, now)
        report.opened = [c.ref for c in new_cases]
        report.reopened = [c.ref for c in reopened]
        report.updated = [c.ref for cid, c in cases_by_id.items() if cid not in fresh_ids]

    def _assign(
        self,
        s: Session,
        policy: Policy,
        groups: dict[str, list[Finding]],
        existing: dict[str, list[CaseRow]],
        version: str | None,
        now: datetime,
    ) -> tuple[dict[str, list[Finding]], dict[str, CaseRow], list[CaseRow], list[CaseRow], set[str]]:
        """Each finding's case: the open one, a reopened one, late news of an ended one, or a new one."""
        by_case: dict[str, list[Finding]] = {}
        cases_by_id: dict[str, CaseRow] = {}
        new_cases: list[CaseRow] = []
        reopened: list[CaseRow] = []
        dismissed_reopen: set[str] = set()
        for key, members in groups.items():
            members.sort(key=lambda f: (f.window_end, f.id))
            cases = existing.get(key, [])
            current = next((c for c in cases if c.open_key is not None), None)
            if current is None and cases:
                current = max(cases, key=lambda c: (c.closed_at or c.opened_at, c.opened_at))
            for f in members:
                if current is not None and CaseState(current.state) in ENDED:
                    closed_at = current.closed_at or current.updated_at
                    if f.window_end <= closed_at:
                        pass  # late news of the episode that ended: joins it, reopens nothing
                    elif f.window_end <= closed_at + policy.reopen_window:
                        if current.state == CaseState.DISMISSED:
                            dismissed_reopen.add(current.id)
                        lifecycle.transition(
                            s,
                            current,
                            CaseState.NEW,
                            actor=self.actor,
                            at=now,
                            reason=f"finding {f.id} ({iso(f.window_end)}) within the reopen window of {iso(closed_at)}",
                        )
                        current.reopen_count += 1
                        current.deadline = None
                        current.notified_at = None
                        reopened.append(current)
                    else:
                        current = None
                if current is None:
                    current = self._new_case(f, key, version or f.policy_version or policy.version, now)
                    s.add(current)
                    new_cases.append(current)
                    lifecycle.add_transition(
                        s, current.id, None, CaseState.NEW.value, actor=self.actor, reason="opened", at=now
                    )
                    lifecycle.record(
                        s,
                        at=now,
                        actor=self.actor,
                        action="case.opened",
                        subject_type="case",
                        subject_id=current.id,
                        payload={
                            "ref": current.ref,
                            "customer_id": current.customer_id,
                            "service_id": current.service_id,
                            "clause": current.clause,
                            "group_key": current.group_key,
                            "policy_version": current.policy_version,
                        },
                    )
                if current.id not in by_case:
                    by_case[current.id] = []
                    cases_by_id[current.id] = current
                by_case[current.id].append(f)
        return by_case, cases_by_id, new_cases, reopened, dismissed_reopen

    def _new_case(self, f: Finding, key: str, version: str, now: datetime) -> CaseRow:
        cid = stable_id("cs", key, f.id)
        return CaseRow(
            id=cid,
            ref=lifecycle.case_ref(cid),
            case_key=key,
            open_key=key,
            customer_id=f.customer_id,
            project_id=f.project_id,
            service_id=f.service_id,
            clause=f.clauses[0],
            kind=f.kind,
            group_key=f.group_key,
            state=CaseState.NEW.value,
            severity=f.severity.value,
            base_severity=f.severity.value,
            policy_version=version,
            opened_at=now,
            updated_at=now,
            closed_at=None,
            deadline=None,
            notified_at=None,
            last_finding_at=f.window_end,
            finding_count=0,
            reopen_count=0,
        )

    def _insert_findings(self, s: Session, by_case: dict[str, list[Finding]], now: datetime) -> int:
        """Store the batch's findings with their case (one COPY on PostgreSQL).

        The duplicate check before left only findings that were not stored; if another worker stored one of them
        since, the primary key refuses the write and the whole batch is rolled back and retried (Conflict), so no
        finding is ever counted into a case twice.
        """
        rows = [_finding_row(f, case_id, now) for case_id, members in by_case.items() for f in members]
        return bulk.copy_rows(s, FindingRow.__table__, rows, _FINDING_COLUMNS)

    def _update_counts(
        self,
        s: Session,
        policy: Policy,
        by_case: dict[str, list[Finding]],
        cases: dict[str, CaseRow],
        no_reopen_raise: set[str],
        new: set[str],
        now: datetime,
    ) -> set[str]:
        """Count the new findings into their cases; returns the ids of cases whose severity rose."""
        raised: set[str] = set()
        rules = {}
        for cid, members in by_case.items():
            case = cases[cid]
            case.finding_count += len(members)
            latest = max(f.window_end for f in members)
            if case.last_finding_at is None or latest > case.last_finding_at:  # never moves backwards
                case.last_finding_at = latest
            top = max((f.severity for f in members), key=lambda sv: sv.rank)
            if top.rank > Severity(case.base_severity).rank:
                case.base_severity = top.value
            case.updated_at = now
            rules[cid] = _repeat_rule(policy, case.clause)
        # repetition: count each case's findings within the rule's window before its newest finding. The batch's
        # own findings are not stored yet: the count is the stored ones (only a case that existed before the batch
        # has any) plus the batch's members in the window.
        counted = [cid for cid, rule in rules.items() if rule is not None and rule.every]
        counts: dict[str, int] = {}
        stored_before = [cid for cid in counted if cid not in new]
        cutoffs = {cid: cases[cid].last_finding_at - rules[cid].within for cid in stored_before}  # type: ignore[operator]
        counts.update(_count_since(s, cutoffs))
        for cid in counted:
            cutoff = cases[cid].last_finding_at - rules[cid].within  # type: ignore[operator]
            counts[cid] = counts.get(cid, 0) + sum(1 for f in by_case[cid] if f.window_end >= cutoff)
        for cid, rule in rules.items():
            case = cases[cid]
            base = Severity(case.base_severity)
            target = base
            if rule is not None:
                reopens = 0 if cid in no_reopen_raise else case.reopen_count
                target = rule.raised(base, counts.get(cid, 0), reopens)
            before = case.severity
            if lifecycle.raise_severity(case, target):
                raised.add(cid)
                lifecycle.record(
                    s,
                    at=now,
                    actor=self.actor,
                    action="case.severity",
                    subject_type="case",
                    subject_id=cid,
                    payload={
                        "ref": case.ref,
                        "from": before,
                        "to": case.severity,
                        "findings_in_window": counts.get(cid, 0),
                        "reopen_count": case.reopen_count,
                    },
                )
            lifecycle.record(
                s,
                at=now,
                actor=self.actor,
                action="case.findings",
                subject_type="case",
                subject_id=cid,
                payload={
                    "ref": case.ref,
                    "findings": sorted(f.id for f in by_case[cid]),
                    "finding_count": case.finding_count,
                },
            )
        return raised


def _known_ids(s: Session, ids: list[str]) -> set[str]:
    """Which of ``ids`` are stored already (PostgreSQL: one query with an array parameter)."""
    if not ids:
        return set()
    if s.get_bind().dialect.name == "postgresql":
        return set(s.scalars(text("SELECT id FROM findings WHERE id = ANY(:ids)"), {"ids": ids}))
    known: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        known.update(s.scalars(select(FindingRow.id).where(FindingRow.id.in_(ids[i : i + _CHUNK]))))
    return known


def _count_since(s: Session, cutoffs: dict[str, datetime]) -> dict[str, int]:
    """Per case id: how many of its stored findings end at or after its cutoff."""
    counts: dict[str, int] = {}
    if not cutoffs:
        return counts
    if s.get_bind().dialect.name == "postgresql":  # one query, the pairs as two arrays
        rows = s.execute(
            text(
                "SELECT f.case_id, count(*) FROM findings f "
                "JOIN unnest(CAST(:ids AS text[]), CAST(:cutoffs AS timestamptz[])) AS c(id, cutoff) "
                "ON f.case_id = c.id AND f.window_end >= c.cutoff GROUP BY f.case_id"
            ),
            {"ids": list(cutoffs), "cutoffs": [as_utc(t) for t in cutoffs.values()]},
        )
        return {str(cid): int(n) for cid, n in rows}
    ids = list(cutoffs)
    for i in range(0, len(ids), 200):
        cond = or_(
            *(and_(FindingRow.case_id == cid, FindingRow.window_end >= cutoffs[cid]) for cid in ids[i : i + 200])
        )
        for case_id, n in s.execute(select(FindingRow.case_id, func.count()).where(cond).group_by(FindingRow.case_id)):
            counts[str(case_id)] = int(n)
    return counts


def _sample(members: list[Finding]) -> list[dict[str, Any]]:
    """What a notice shows of a batch's findings: the first few (members are in window order)."""
    return [_summary(f) for f in members[: lifecycle.FINDING_SAMPLE]]


_FINDING_COLUMNS = (
    "id", "detector", "kind", "clauses", "group_key", "window_start", "window_end", "severity", "confidence",
    "summary", "subject_ip", "customer_id", "project_id", "service_id", "case_id", "created_at", "data",
)  # fmt: skip


def _finding_row(f: Finding, case_id: str, now: datetime) -> tuple[Any, ...]:
    """A finding's row, in :data:`_FINDING_COLUMNS` order."""
    data = {"event_ids": list(f.event_ids), "evidence": list(f.evidence), "policy_version": f.policy_version}
    return (
        f.id, f.detector, f.kind, list(f.clauses), f.group_key, f.window_start, f.window_end, f.severity.value,
        f.confidence, f.summary, f.subject_ip, f.customer_id, f.project_id, f.service_id, case_id, now, data,
    )  # fmt: skip


def _repeat_rule(policy: Policy, clause_id: str) -> Any:
    clause = policy.clauses.get(clause_id)
    if clause is not None and clause.playbook is not None:
        return clause.playbook.severity_on_repeat
    return policy.severity_on_repeat


class CasesStage:
    """The cases stage (``findings.new``): a batch of findings into cases, in the batch's transaction."""

    def __init__(self, rt: Runtime) -> None:
        self.engine = CaseEngine(rt)

    def handle(self, batch: StageBatch) -> None:
        findings = [finding_from_dict(d) for m in batch.messages for d in m.get("findings", [])]
        if not findings:
            return
        _, outcomes = self.engine.ingest_in(batch.session, findings)
        if outcomes:
            batch.after_commit(lambda: lifecycle.record_outcomes(self.engine.rt, outcomes))
