"""Cases and actions under /api/v1: thin routes over :class:`CaseService`, acting as the Bearer token's user.

A case's ``ETag`` is its version (``"v7"``); a change to a case (transition, note, action) must send it back in
``If-Match``, so a change made on a stale read is refused with 412 instead of overwriting someone else's (428
when ``If-Match`` is missing). A customer's token sees only its own customer's cases; another customer's case
answers 404, as one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, Field

from abusedesk.api.auth import RT, Caller
from abusedesk.cases.service import CaseService
from abusedesk.domain.errors import ConfigError, PreconditionFailed, PreconditionRequired
from abusedesk.domain.timeutil import as_utc

router = APIRouter(prefix="/api/v1", tags=["cases"])


def etag(version: int) -> str:
    return f'"v{version}"'


def expected_version(if_match: str | None) -> int:
    """The version ``If-Match`` names; 428 without one, 412 for one that is not ours."""
    if not if_match:
        raise PreconditionRequired(
            'changing a case needs If-Match with the ETag you read (GET the case; e.g. If-Match: "v3")'
        )
    value = if_match.strip().removeprefix("W/").strip('"')
    number = value[1:]
    if not value.startswith("v") or not (number.isascii() and number.isdigit()) or len(number) > 12:
        raise PreconditionFailed(f'If-Match {if_match[:40]!r} is not an ETag of this API (they look like "v3")')
    return int(number)


def _aware(name: str, value: datetime | None) -> datetime | None:
    """A query parameter's time in UTC; one without a zone is refused, naming the parameter."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ConfigError(f"query parameter {name!r}: give a time zone (e.g. 2026-03-01T10:00:00Z)", field=name)
    return as_utc(value)


IfMatch = Annotated[str | None, Header(alias="If-Match", description='The case\'s ETag as read, e.g. "v3"')]


class TransitionIn(BaseModel):
    to: str = Field(description="The target state (docs/reference/case-lifecycle.md)")
    reason: str = ""


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=20000)


class MessageIn(BaseModel):
    kind: str = Field(description="acknowledge | reply | appeal")
    text: str = Field(default="", max_length=20000, description="Required for a reply or an appeal")


class ActionIn(BaseModel):
    kind: str = Field(description="An action of the catalogue (GET /api/v1/policy lists them)")
    reason: str = ""


class DecisionIn(BaseModel):
    reason: str = ""


class CaseItem(BaseModel):
    """A case as the list shows it (``CaseService.page``); times are ISO 8601 UTC with ``Z``."""

    id: str
    ref: str
    state: str
    customer_id: str | None
    project_id: str | None
    service_id: str | None
    clause: str
    kind: str
    group_key: str
    severity: str
    policy_version: str
    opened_at: str
    updated_at: str
    closed_at: str | None
    notified_at: str | None
    deadline: str | None
    last_finding_at: str | None
    finding_count: int
    reopen_count: int
    version: int = Field(description='The case\'s ETag is "v<version>"')
    allowed: list[str] = Field(description="The states the case may move to from here")


class CasePage(BaseModel):
    ok: bool
    items: list[CaseItem]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last one")


@router.get("/cases", response_model=CasePage)
def list_cases(
    rt: RT,
    by: Caller,
    state: str | None = None,
    customer: str | None = None,
    clause: str | None = None,
    severity: str | None = None,
    opened_before: datetime | None = None,
    deadline_before: datetime | None = None,
    sort: Annotated[str, Query(description="updated (newest change first), opened (oldest), deadline (soonest)")] = (
        "updated"
    ),
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Response:
    """Cases, newest change first unless ``sort`` says otherwise: ``{"ok", "items", "next_cursor"}``;
    ``next_cursor`` gives the next page (keyset pagination). ``state=open`` is every state but the ended ones.
    The page is encoded by the service straight from the rows (``CaseService.page_json``); ``CasePage`` documents
    it (FastAPI does not validate a Response it is handed: a test holds the two equal)."""
    body = CaseService(rt).page_json(
        by,
        state=state,
        customer=customer,
        clause=clause,
        severity=severity,
        opened_before=_aware("opened_before", opened_before),
        deadline_before=_aware("deadline_before", deadline_before),
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    return Response(body, media_type="application/json")


@router.get("/cases/{ref}")
def get_case(rt: RT, by: Caller, ref: str, response: Response) -> dict[str, Any]:
    """One case: facts, findings summary, actions, notes, timeline and ``allowed`` transitions; ETag = version."""
    case = CaseService(rt).get(ref, by)
    response.headers["ETag"] = etag(case["version"])
    return {"ok": True, "case": case}


@router.post("/cases/{ref}/transitions")
def transition_case(
    rt: RT, by: Caller, ref: str, body: TransitionIn, response: Response, if_match: IfMatch = None
) -> dict[str, Any]:
    """Move a case (If-Match required); 409 for a move the lifecycle refuses, 403 for a state an action asserts."""
    case = CaseService(rt).transition(
        ref, body.to, by=by, reason=body.reason, expected_version=expected_version(if_match)
    )
    response.headers["ETag"] = etag(case["version"])
    return {"ok": True, "case": case}


@router.post("/cases/{ref}/notes", status_code=201)
def add_note(rt: RT, by: Caller, ref: str, body: NoteIn, if_match: IfMatch = None) -> dict[str, Any]:
    """Add a note to the case's timeline (If-Match required)."""
    svc = CaseService(rt)
    current = svc.get(ref, by)["version"]  # 404 before 428 for a case the caller may not see
    if expected_version(if_match) != current:
        raise PreconditionFailed(f"case {ref} changed since you read it (now {etag(current)}); reload it")
    return {"ok": True, "note": svc.note(ref, body.text, by=by)}


@router.post("/cases/{ref}/messages", status_code=201)
def add_message(rt: RT, by: Caller, ref: str, body: MessageIn) -> dict[str, Any]:
    """The customer's word on its own case: acknowledge it, reply, or appeal (the customer portal does the same).
    Staff cannot speak for the customer (403); another customer's case is 404."""
    return {"ok": True, "message": CaseService(rt).respond(ref, body.kind, body.text, by=by)}


@router.get("/cases/{ref}/notices")
def case_notices(rt: RT, by: Caller, ref: str) -> dict[str, Any]:
    """The notices sent that mention this case, as they were mailed (reporters withheld unless they agreed)."""
    return {"ok": True, "items": CaseService(rt).notices(by, ref)}


@router.post("/cases/{ref}/actions", status_code=201)
def propose_action(rt: RT, by: Caller, ref: str, body: ActionIn, if_match: IfMatch = None) -> dict[str, Any]:
    """Propose an action (two-person kinds wait for approval) or start a one-person one (If-Match required)."""
    action = CaseService(rt).propose(
        ref, body.kind, by=by, reason=body.reason, expected_version=expected_version(if_match)
    )
    return {"ok": True, "action": action}


@router.get("/actions/{action_id}")
def get_action(rt: RT, by: Caller, action_id: str) -> dict[str, Any]:
    return {"ok": True, "action": CaseService(rt).action(action_id, by)}


@router.post("/actions/{action_id}/approve")
def approve_action(rt: RT, by: Caller, action_id: str, body: DecisionIn) -> dict[str, Any]:
    """Approve a proposed action: never its proposer, never twice, only the role the step asks for."""
    return {"ok": True, "action": CaseService(rt).approve(action_id, by=by, reason=body.reason)}


@router.post("/actions/{action_id}/reject")
def reject_action(rt: RT, by: Caller, action_id: str, body: DecisionIn) -> dict[str, Any]:
    """Refuse a proposed action (an approver), or withdraw one's own proposal; reason required."""
    return {"ok": True, "action": CaseService(rt).reject(action_id, by=by, reason=body.reason)}
