"""The rest of the desk under /api/v1: the triage queue, inventory lookup, audit verification and the policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from abusedesk.api.auth import RT, Caller
from abusedesk.domain.actions import CATALOGUE
from abusedesk.domain.errors import ConfigError
from abusedesk.domain.identity import Can
from abusedesk.intake.triage import TriageService

router = APIRouter(prefix="/api/v1")


class PromoteIn(BaseModel):
    clause: str = Field(description="The clause the case falls under, e.g. 1.8")
    service_id: str = Field(description="The service it is against (its customer comes from the inventory)")
    reason: str = Field(min_length=1)


@router.get("/triage", tags=["triage"])
def triage_queue(rt: RT, by: Caller, limit: int = 100) -> dict[str, Any]:
    """Quarantined inputs and events marked for triage, newest first."""
    return {"ok": True, "items": TriageService(rt).queue(by, limit=min(max(limit, 1), 500))}


@router.get("/triage/raw/{raw_id}", tags=["triage"])
def triage_raw(rt: RT, by: Caller, raw_id: str) -> dict[str, Any]:
    """An input's facts (state, parser, quarantine reason)."""
    info, _ = TriageService(rt).raw(by, raw_id)
    return {"ok": True, "raw": info}


@router.get("/triage/raw/{raw_id}/content", tags=["triage"], response_class=Response)
def triage_raw_content(rt: RT, by: Caller, raw_id: str) -> Response:
    """The input's bytes exactly as received (served as an attachment, never rendered)."""
    _, data = TriageService(rt).raw(by, raw_id)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{raw_id}.bin"', "X-Content-Type-Options": "nosniff"},
    )


@router.post("/triage/raw/{raw_id}/release", tags=["triage"])
def triage_release(rt: RT, by: Caller, raw_id: str) -> dict[str, Any]:
    """Parse a quarantined input again (after a parser fix)."""
    return {"ok": True, "result": TriageService(rt).release(by, raw_id)}


class DiscardIn(BaseModel):
    reason: str = Field(min_length=1, description="Why the input is set aside (kept in the audit log)")


@router.post("/triage/raw/{raw_id}/discard", tags=["triage"])
def triage_discard(rt: RT, by: Caller, raw_id: str, body: DiscardIn) -> dict[str, Any]:
    """Set a quarantined input aside with a reason; it leaves the queue, its bytes are kept."""
    return {"ok": True, "raw": TriageService(rt).discard(by, raw_id, reason=body.reason)}


@router.post("/triage/{item_id}/promote", tags=["triage"], status_code=201)
def triage_promote(rt: RT, by: Caller, item_id: str, body: PromoteIn) -> dict[str, Any]:
    """Make a case of a quarantined input or a triage event, under a clause, for a customer."""
    out = TriageService(rt).promote(by, item_id, clause=body.clause, service_id=body.service_id, reason=body.reason)
    return {"ok": True, **out}


@router.get("/inventory/whois", tags=["inventory"])
def inventory_whois(rt: RT, by: Caller, ip: str, at: datetime | None = None) -> dict[str, Any]:
    """Whose was ``ip`` at ``at`` (default now): allocation, service, project, customer."""
    by.require(Can.INVENTORY_READ)
    from abusedesk.inventory.service import InventoryService

    try:
        answer = InventoryService(rt).whois(ip, at)
    except ValueError as exc:
        raise ConfigError(f"query parameter 'ip': {exc}", field="ip") from None
    return {"ok": True, **answer}


@router.get("/audit/verify", tags=["audit"])
def audit_verify(rt: RT, by: Caller, unsigned: bool = False) -> dict[str, Any]:
    """Walk the audit chain and its signed checkpoints (as ``abusedesk audit verify``) and name the first bad entry
    or checkpoint; ``unsigned=true`` accepts a log without a signed checkpoint (a desk with no key yet)."""
    by.require(Can.AUDIT_READ)
    from abusedesk.evidence import audit

    with rt.sessions() as s:
        result = audit.verify_settings(s, rt.settings, require_signed=not unsigned)
    return {**result.to_dict(), "ok": True, "intact": result.ok}


@router.get("/policy", tags=["policy"])
def policy(rt: RT, by: Caller) -> dict[str, Any]:
    """The policy in force (clauses, kinds, playbooks) and the action catalogue."""
    by.require(Can.POLICY_READ)
    actions = {
        kind: {
            "persons": spec.persons,
            "asserts": spec.asserts.value if spec.asserts else None,
            "scope": spec.scope.value,
            "effect": dict(spec.effect),
            "undo": spec.undo,
            "summary": spec.summary,
        }
        for kind, spec in CATALOGUE.items()
    }
    return {"ok": True, "policy": rt.policy.to_dict(), "actions": actions}
