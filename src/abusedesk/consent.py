"""The consent registry (clause 1.3): written consent for load or security testing of the provider's ranges.

A customer's user requests consent (source services, target CIDRs or addresses, a time window, a maximum rate in
packets per second, the kind of test); a provider's user approves or rejects it, and may revoke an approved one.
Each step is done by an authenticated :class:`Principal` (an API token: the REST routes, or ``ABUSEDESK_TOKEN``
for the CLI) whose id is recorded with the consent and in the audit chain. Capabilities: ``consent.request``
(customers, for their own services; admins), ``consent.decide`` (approvers, admins), ``consent.read`` (staff;
a customer sees its own). The approver must be another person than the requester; a customer may revoke its
own approved consent.

The flow stage asks :meth:`ConsentService.judge` about each finding of a service: inside an approved consent
(the finding's service among the consent's, its target inside the consent's targets, its time inside the window,
its rate at most ``max_rate``) the finding is kept but marked consented and makes no case; a finding of a
consented test that runs beyond the window or above the rate becomes a ``load-test`` finding of its own
("consent exceeded"), which does make a case.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from abusedesk.domain.errors import ConfigError, Conflict, Forbidden, NotFound
from abusedesk.domain.identity import Can, Principal
from abusedesk.domain.ids import new_id
from abusedesk.domain.records import Finding
from abusedesk.domain.timeutil import as_utc, iso
from abusedesk.evidence import audit
from abusedesk.store.tables.consent import ConsentRow
from abusedesk.store.tables.inventory import ProjectRow, ServiceRow

if TYPE_CHECKING:
    from abusedesk.runtime import Runtime

KINDS = ("load", "security")
STATUSES = ("requested", "approved", "rejected", "revoked")


def consent_dict(row: ConsentRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "customer_id": row.customer_id,
        "service_ids": list(row.service_ids),
        "targets": list(row.targets),
        "kind": row.kind,
        "window_from": iso(as_utc(row.window_from)),
        "window_to": iso(as_utc(row.window_to)),
        "max_rate": row.max_rate,
        "status": row.status,
        "requested_by": row.requested_by,
        "decided_by": row.decided_by,
        "decided_at": iso(as_utc(row.decided_at)) if row.decided_at else None,
        "revoked_by": row.revoked_by,
        "revoked_at": iso(as_utc(row.revoked_at)) if row.revoked_at else None,
        "reason": row.reason,
        "created_at": iso(as_utc(row.created_at)),
    }


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a consent makes of a finding: ``consent`` None = no consent covers it."""

    consent: str | None = None
    consented: bool = False
    exceeded: str = ""  # why a covered test went beyond its consent ("rate", "window")


class ConsentService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    # ------------------------------------------------------------------ the registry

    def request(
        self,
        by: Principal,
        *,
        service_ids: Sequence[str],
        targets: Sequence[str],
        window_from: datetime,
        window_to: datetime,
        kind: str,
        max_rate: int | None = None,
        reason: str = "",
    ) -> dict[str, Any]:
        by.require(Can.CONSENT_REQUEST)
        actor = by.id
        if kind not in KINDS:
            raise ConfigError(f"consent kind {kind!r} is not one of {', '.join(KINDS)}")
        if not service_ids:
            raise ConfigError("a consent request names at least one source service (--service)")
        if not targets:
            raise ConfigError("a consent request names at least one target CIDR or address (--target)")
        norm: list[str] = []
        for t in targets:
            try:
                norm.append(str(ipaddress.ip_network(t.strip(), strict=False)))
            except ValueError:
                raise ConfigError(f"consent target {t!r} is not a CIDR or an address") from None
        wf, wt = as_utc(window_from), as_utc(window_to)
        if wt <= wf:
            raise ConfigError(f"the consent window ends ({iso(wt)}) before it starts ({iso(wf)})")
        if max_rate is not None and max_rate <= 0:
            raise ConfigError("max rate must be a positive number of packets per second")
        now = self.rt.clock.now()
        with self.rt.sessions.begin() as s:
            customers = {
                c
                for (c,) in s.execute(
                    select(ProjectRow.customer_id)
                    .join(ServiceRow, ServiceRow.project_id == ProjectRow.id)
                    .where(ServiceRow.id.in_(list(service_ids)))
                )
            }
            found = set(s.scalars(select(ServiceRow.id).where(ServiceRow.id.in_(list(service_ids)))))
            unknown = sorted(set(service_ids) - found)
            if unknown or not all(by.sees_customer(c) for c in customers):
                if by.is_staff:
                    raise NotFound(f"service(s) {', '.join(unknown)} are not in the inventory")
                raise NotFound("a service of this request is not one of your services")
            if len(customers) != 1:
                raise ConfigError("the services of one consent request must belong to one customer")
            cid = new_id("cn")  # two identical requests are two requests
            row = ConsentRow(
                id=cid, customer_id=customers.pop(), service_ids=sorted(service_ids), targets=norm, kind=kind,
                window_from=wf, window_to=wt, max_rate=max_rate, status="requested", requested_by=actor,
                reason=reason, created_at=now,
            )  # fmt: skip
            s.add(row)
            s.flush()
            out = consent_dict(row)
            audit.append(s, at=now, actor=actor, action="consent.requested", subject_type="consent",
                         subject_id=cid, payload=out)  # fmt: skip
        return out

    def decide(self, by: Principal, consent_id: str, *, status: str, reason: str = "") -> dict[str, Any]:
        """approve, reject (from requested) or revoke (from approved), by someone other than the requester (a
        customer may revoke its own)."""
        actor = by.id
        allowed = {"approved": ("requested",), "rejected": ("requested",), "revoked": ("approved",)}
        if status not in allowed:
            raise ConfigError(f"a consent cannot be set to {status!r}")
        now = self.rt.clock.now()
        with self.rt.sessions.begin() as s:
            row = s.get(ConsentRow, consent_id, with_for_update=True)
            if row is None or not by.sees_customer(row.customer_id):
                raise NotFound(f"consent {consent_id} does not exist")
            if not (status == "revoked" and by.can(Can.CONSENT_REQUEST) and not by.is_staff):
                by.require(Can.CONSENT_DECIDE)
            if row.status not in allowed[status]:
                raise Conflict(f"consent {consent_id} is {row.status}; it cannot become {status}")
            if actor == row.requested_by and status != "revoked":
                raise Forbidden(f"consent {consent_id} was requested by {actor}; another person must decide it")
            row.status = status
            if status == "revoked":
                row.revoked_by, row.revoked_at = actor, now
            else:
                row.decided_by, row.decided_at = actor, now
            if reason:
                row.reason = (row.reason + "\n" if row.reason else "") + f"{status}: {reason}"
            s.flush()
            out = consent_dict(row)
            audit.append(s, at=now, actor=actor, action=f"consent.{status}", subject_type="consent",
                         subject_id=consent_id, payload={"reason": reason, "status": status})  # fmt: skip
        return out

    def list_consents(
        self, by: Principal, *, status: str | None = None, customer_id: str | None = None
    ) -> list[dict[str, Any]]:
        by.require(Can.CONSENT_READ)
        if not by.is_staff:
            customer_id = by.customer_id
        with self.rt.sessions() as s:
            q = select(ConsentRow).order_by(ConsentRow.created_at, ConsentRow.id)
            if status:
                q = q.where(ConsentRow.status == status)
            if customer_id:
                q = q.where(ConsentRow.customer_id == customer_id)
            return [consent_dict(r) for r in s.scalars(q)]

    def services(self, by: Principal) -> list[dict[str, str]]:
        """The services ``by`` may request consent for: a customer's own (staff: every service), id and name."""
        by.require(Can.CONSENT_REQUEST)
        with self.rt.sessions() as s:
            q = select(ServiceRow.id, ServiceRow.name, ServiceRow.kind).join(
                ProjectRow, ProjectRow.id == ServiceRow.project_id
            )
            if not by.is_staff:
                q = q.where(ProjectRow.customer_id == by.customer_id)
            return [{"id": i, "name": n, "kind": k} for i, n, k in s.execute(q.order_by(ServiceRow.id))]

    def get(self, by: Principal, consent_id: str) -> dict[str, Any]:
        by.require(Can.CONSENT_READ)
        with self.rt.sessions() as s:
            row = s.get(ConsentRow, consent_id)
            if row is None or not by.sees_customer(row.customer_id):
                raise NotFound(f"consent {consent_id} does not exist")
            return consent_dict(row)

    # ------------------------------------------------------------------ judging findings

    def judge(self, session: Session, findings: Sequence[Finding]) -> list[tuple[Finding, Verdict]]:
        """Each finding with what the approved (or revoked) consents of its service make of it."""
        services = {f.service_id for f in findings if f.service_id}
        rows = [
            r
            for r in session.scalars(select(ConsentRow).where(ConsentRow.status.in_(("approved", "revoked"))))
            if services & set(r.service_ids)
        ]
        out: list[tuple[Finding, Verdict]] = []
        for f in findings:
            out.append((f, self._verdict(f, rows)))
        return out

    @staticmethod
    def _verdict(f: Finding, rows: Sequence[ConsentRow]) -> Verdict:
        targets = _targets_of(f)
        if not targets or f.service_id is None:
            return Verdict()
        for r in rows:
            if f.service_id not in r.service_ids:
                continue
            nets = [ipaddress.ip_network(t) for t in r.targets]
            if not all(any(t in n for n in nets) for t in targets):
                continue
            start, end = as_utc(f.window_start), as_utc(f.window_end)
            wf, wt = as_utc(r.window_from), as_utc(r.window_to)
            if r.status == "revoked" and r.revoked_at is not None:
                wt = min(wt, as_utc(r.revoked_at))
            if end < wf:
                continue
            if start > wt or end > wt:
                return Verdict(r.id, False, "window")
            rate = _rate_of(f)
            if r.max_rate is not None and rate is not None and rate > r.max_rate:
                return Verdict(r.id, False, "rate")
            return Verdict(r.id, True)
        return Verdict()


def _targets_of(f: Finding) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses a flow finding was aimed at: the aggregate's target, else every sampled flow's."""
    texts: list[str] = []
    for part in f.evidence:
        agg = part.get("aggregate")
        if isinstance(agg, dict) and agg.get("dst_addr"):
            texts.append(str(agg["dst_addr"]))
    if not texts:
        for part in f.evidence:
            for flow in part.get("flows", []) or []:
                texts.append(str(flow["dst"]))
    out = []
    for t in texts:
        try:
            out.append(ipaddress.ip_address(t))
        except ValueError:
            continue
    return out


def _rate_of(f: Finding) -> float | None:
    """Packets per second of the finding's aggregate over its active span (at least 1 s)."""
    for part in f.evidence:
        agg = part.get("aggregate")
        if isinstance(agg, dict) and "packets" in agg and "first" in agg and "last" in agg:
            span = max((int(agg["last"]) - int(agg["first"])) / 1000.0, 1.0)
            return float(agg["packets"]) / span
    return None
