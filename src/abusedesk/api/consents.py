"""The consent registry over REST (clause 1.3): ``/api/v1/consents``. Thin over ``ConsentService``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from abusedesk.api.auth import RT, Caller
from abusedesk.consent import ConsentService

router = APIRouter(prefix="/api/v1", tags=["consents"])


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service_ids: list[str] = Field(min_length=1)
    targets: list[str] = Field(min_length=1)
    window_from: datetime
    window_to: datetime
    kind: str = "load"
    max_rate: int | None = None
    reason: str = ""


class ConsentDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = ""


@router.get("/consents")
def list_consents(rt: RT, by: Caller, status: str | None = None) -> list[dict[str, Any]]:
    return ConsentService(rt).list_consents(by, status=status)


@router.post("/consents", status_code=201)
def request_consent(rt: RT, by: Caller, body: ConsentIn) -> dict[str, Any]:
    return ConsentService(rt).request(
        by, service_ids=body.service_ids, targets=body.targets, window_from=body.window_from,
        window_to=body.window_to, kind=body.kind, max_rate=body.max_rate, reason=body.reason,
    )  # fmt: skip


@router.get("/consents/{consent_id}")
def get_consent(rt: RT, by: Caller, consent_id: str) -> dict[str, Any]:
    return ConsentService(rt).get(by, consent_id)


def _decide(rt: RT, by: Caller, consent_id: str, status: str, body: ConsentDecisionIn) -> dict[str, Any]:
    return ConsentService(rt).decide(by, consent_id, status=status, reason=body.reason)


@router.post("/consents/{consent_id}/approve")
def approve_consent(rt: RT, by: Caller, consent_id: str, body: ConsentDecisionIn) -> dict[str, Any]:
    return _decide(rt, by, consent_id, "approved", body)


@router.post("/consents/{consent_id}/reject")
def reject_consent(rt: RT, by: Caller, consent_id: str, body: ConsentDecisionIn) -> dict[str, Any]:
    return _decide(rt, by, consent_id, "rejected", body)


@router.post("/consents/{consent_id}/revoke")
def revoke_consent(rt: RT, by: Caller, consent_id: str, body: ConsentDecisionIn) -> dict[str, Any]:
    return _decide(rt, by, consent_id, "revoked", body)
