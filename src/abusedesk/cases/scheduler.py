"""Deadlines: the closed loop of AUP section 4, and the timed playbook steps.

``Scheduler(rt).tick()`` (``abusedesk case tick``; run it every minute) looks at cases awaiting the
customer:

- **renotify**: ``after`` the request to cease, while the deadline has not passed, a reminder (``repeat`` times).
- **deadline passed, no findings since the notice** (no finding of the case whose window ends after
  ``notified_at``): the customer ceased; the case is resolved with reason "ceased".
- **deadline passed, findings since the notice**: the use goes on; the case is escalated and the playbook's
  ``escalate-on-repeat`` action (suspend-service by default) is proposed for two persons to approve.

Findings are compared by their window (when the abuse happened), not by when they arrived, so a late report of
something that happened before the notice does not count as repetition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from abusedesk.cases import lifecycle
from abusedesk.domain.casestate import CaseState
from abusedesk.domain.errors import Conflict, NotFound
from abusedesk.domain.identity import SCHEDULER, Role
from abusedesk.domain.timeutil import iso
from abusedesk.policy.model import MIN_APPROVALS, Policy, StepType
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseRow, FindingRow

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    at: datetime
    resolved: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    renotified: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "resolved": self.resolved,
            "escalated": self.escalated,
            "renotified": self.renotified,
            "conflicts": self.conflicts,
        }


class Scheduler:
    """Carries out what is due at ``now``: reminders, and the section 4 decision at each passed deadline."""

    actor = SCHEDULER.id

    def __init__(self, rt: Runtime, policy: Policy | None = None) -> None:
        self.rt = rt
        self._policy = policy

    @property
    def policy(self) -> Policy:
        return self._policy if self._policy is not None else self.rt.policy

    def tick(self, now: datetime | None = None) -> TickReport:
        """One pass; each case is its own transaction, so one case's conflict does not hold up the rest."""
        now = now or self.rt.clock.now()
        report = TickReport(at=now)
        with self.rt.sessions() as s:
            due = list(
                s.scalars(
                    select(CaseRow.id).where(
                        CaseRow.state == CaseState.AWAITING_CUSTOMER.value, CaseRow.notified_at.is_not(None)
                    )
                )
            )
        from sqlalchemy.exc import OperationalError
        from sqlalchemy.orm.exc import StaleDataError

        for case_id in due:
            try:
                with self.rt.sessions() as s, s.begin():
                    self._one(s, case_id, now, report)
                    outcomes = lifecycle.pop_outcomes(s)
                lifecycle.record_outcomes(self.rt, outcomes)
            except (StaleDataError, Conflict, OperationalError) as exc:
                # an analyst or another scheduler changed the case meanwhile; the next tick looks again
                log.info("scheduler: case %s changed concurrently (%s); left for the next tick", case_id, exc)
                report.conflicts.append(case_id)
        return report

    def _one(self, s: Session, case_id: str, now: datetime, report: TickReport) -> None:
        case = s.get(CaseRow, case_id)
        if case is None or case.state != CaseState.AWAITING_CUSTOMER.value or case.notified_at is None:
            return
        try:
            steps = self.policy.playbook_for(case.clause, case.severity).steps
        except NotFound:
            steps = ()
        if case.deadline is not None and case.deadline <= now:
            since = int(
                s.scalar(
                    select(func.count())
                    .select_from(FindingRow)
                    .where(FindingRow.case_id == case.id, FindingRow.window_end > case.notified_at)
                )
                or 0
            )
            if since == 0:
                lifecycle.transition(
                    s,
                    case,
                    CaseState.RESOLVED,
                    actor=self.actor,
                    at=now,
                    reason=f"ceased: no findings since the request to cease at {iso(case.notified_at)} "
                    f"(deadline {iso(case.deadline)})",
                )
                report.resolved.append(case.ref)
                return
            escalate = next(
                (st for st in steps if st.type is StepType.ESCALATE_ON_REPEAT and st.action is not None), None
            )
            action = escalate.action if escalate is not None and escalate.action else "suspend-service"
            approvals = max(MIN_APPROVALS, escalate.approvals if escalate is not None else 0)
            lifecycle.transition(
                s,
                case,
                CaseState.ESCALATED,
                actor=self.actor,
                at=now,
                reason=f"{since} finding(s) after the request to cease at {iso(case.notified_at)}; deadline "
                f"{iso(case.deadline)} passed; proposing {action}",
            )
            lifecycle.add_action(
                s,
                case,
                action,
                status="proposed",
                actor=self.actor,
                at=now,
                key=lifecycle.step_key(case, case.reopen_count, StepType.ESCALATE_ON_REPEAT.value, action),
                payload=lifecycle.action_payload(
                    self.policy,
                    case,
                    action,
                    lifecycle.finding_summaries(s, case),
                    extra={
                        "findings_since_notice": since,
                        "notified_at": iso(case.notified_at),
                        "approvals_needed": approvals,
                        "approvers": [],
                        "approver_role": (
                            escalate.role if escalate is not None and escalate.role else Role.APPROVER
                        ).value,
                    },
                ),
            )
            case.updated_at = now
            report.escalated.append(case.ref)
            return
        renotify = next((st for st in steps if st.type is StepType.RENOTIFY and st.after is not None), None)
        if renotify is None or renotify.after is None:
            return
        sent = int(
            s.scalar(
                select(func.count())
                .select_from(ActionRow)
                .where(
                    ActionRow.case_id == case.id, ActionRow.kind == "renotify", ActionRow.created_at >= case.notified_at
                )
            )
            or 0
        )
        if sent >= renotify.repeat or case.notified_at + renotify.after * (sent + 1) > now:
            return
        row = lifecycle.add_action(
            s,
            case,
            "renotify",
            status="pending",
            actor=self.actor,
            at=now,
            key=lifecycle.step_key(case, case.reopen_count, f"renotify-{iso(case.notified_at)}-{sent + 1}"),
            payload=lifecycle.action_payload(
                self.policy,
                case,
                "renotify",
                lifecycle.finding_summaries(s, case),
                deadline=case.deadline,
                extra={"reminder": sent + 1, "notified_at": iso(case.notified_at)},
            ),
        )
        if row is not None:
            case.updated_at = now
            report.renotified.append(case.ref)


class SchedulerTicker:
    """The scheduler timer stage: one ``tick`` of the case deadlines."""

    def __init__(self, rt: Runtime) -> None:
        self.scheduler = Scheduler(rt)

    def tick(self) -> None:
        self.scheduler.tick()
