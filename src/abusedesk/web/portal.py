"""The customer portal (issue 11, item 2): a customer's users see their cases and the notices sent about them,
with the clause cited and its summary and the evidence they may see (reporters withheld unless they agreed, as in
notices), acknowledge, reply and appeal; and request consent for load or security tests (clause 1.3).

Every page takes the signed-in customer's Principal and calls the services the API calls (``CaseService``,
``ConsentService``), which limit it to its own customer: another customer's case answers 404 as one that does not
exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from abusedesk.actions import advice
from abusedesk.api.deps import runtime_of
from abusedesk.cases.service import MESSAGE_KINDS, CaseService
from abusedesk.consent import KINDS, ConsentService
from abusedesk.domain.errors import AbuseDeskError, NotFound
from abusedesk.domain.identity import Principal
from abusedesk.policy.model import Policy
from abusedesk.web.auth import csrf_checked, page_user, redirect
from abusedesk.web.nav import CUSTOMER_ROLES
from abusedesk.web.templating import render

router = APIRouter(prefix="/portal", include_in_schema=False)
Customer = Annotated[Principal, Depends(page_user(*CUSTOMER_ROLES))]
Checked = [Depends(csrf_checked)]

#: what the page says after each kind of message
SENT = {"acknowledge": "You acknowledged this case.", "reply": "Your reply was sent to the abuse desk.",
        "appeal": "Your appeal was recorded; an analyst will review it."}  # fmt: skip


def clause_view(policy: Policy, clause_id: str | None) -> dict[str, str]:
    """The clause a case cites: id, title, our one-sentence summary and the verbatim text."""
    if not clause_id:
        return {"id": "", "title": "", "summary": "", "text": ""}
    try:
        c = policy.clause(clause_id)
    except NotFound:
        return {"id": clause_id, "title": clause_id, "summary": "", "text": ""}
    return {"id": c.id, "title": c.title, "summary": " ".join(c.summary.split()), "text": c.text.strip()}


@router.get("")
def portal_home(request: Request, by: Customer, state: str = "", cursor: str | None = None) -> Response:
    rt = runtime_of(request)
    cases = CaseService(rt)
    page = cases.page(by, state=state or None, cursor=cursor, limit=50)
    for c in page["items"]:
        c["clause_title"] = clause_view(rt.policy, c["clause"])["title"]
    notices = cases.notices(by, limit=20)
    return render(request, "portal/home.html", page=page, notices=notices, state=state)


def _case_page(request: Request, by: Principal, ref: str, *, error: str = "", status: int = 200) -> Response:
    rt = runtime_of(request)
    service = CaseService(rt)
    case = service.get(ref, by)
    recent = case["findings"]["recent"]
    families = [advice.family(f.get("kind") or case["kind"], f.get("facts")) for f in recent] or [
        advice.family(case["kind"])
    ]
    acknowledged = next((m for m in case["messages"] if m["kind"] == "acknowledge"), None)
    agreed = rt.settings.notices.disclose_reporters
    return render(
        request, "portal/case.html", status, case=case, clause=clause_view(rt.policy, case["clause"]),
        findings=[advice.view_finding(f, agreed) for f in recent], advice=advice.advice_for(families),
        notices=service.notices(by, case["ref"]), acknowledged=acknowledged, error=error,
        sent=SENT.get(request.query_params.get("sent", ""), ""),
    )  # fmt: skip


@router.get("/cases/{ref}")
def portal_case(request: Request, by: Customer, ref: str) -> Response:
    return _case_page(request, by, ref)


@router.post("/cases/{ref}/messages", dependencies=Checked)
def portal_message(
    request: Request,
    by: Customer,
    ref: str,
    kind: Annotated[str, Form(max_length=20)],
    text: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    if kind not in MESSAGE_KINDS:
        raise NotFound(f"{kind!r} is not something the portal sends")
    try:
        done = CaseService(runtime_of(request)).respond(ref, kind, text, by=by)
    except NotFound:
        raise
    except AbuseDeskError as exc:  # a refusal is shown on the case page, beside the form
        return _case_page(request, by, ref, error=exc.message, status=exc.status)
    return redirect(request, f"/portal/cases/{done['case_ref']}?sent={kind}#messages")


def _consents_page(
    request: Request, by: Principal, *, error: str = "", form: dict[str, Any] | None = None, status: int = 200
) -> Response:
    rt = runtime_of(request)
    consents = ConsentService(rt)
    try:
        clause_id = rt.policy.clauses_for_kind("load-test")[0]
    except (AbuseDeskError, IndexError):
        clause_id = None
    return render(
        request, "portal/consents.html", status, consents=consents.list_consents(by),
        services=consents.services(by), kinds=KINDS, clause=clause_view(rt.policy, clause_id), error=error,
        form=form or {}, sent=request.query_params.get("sent", ""),
    )  # fmt: skip


@router.get("/consents")
def portal_consents(request: Request, by: Customer) -> Response:
    return _consents_page(request, by)


def _utc(value: str, label: str) -> datetime:
    """A ``datetime-local`` value (``2026-12-08T10:00``), read as UTC; a clear error naming the field."""
    from abusedesk.domain.errors import ConfigError

    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{label} {value[:40]!r} is not a date and time (YYYY-MM-DDTHH:MM, UTC)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@router.post("/consents", dependencies=Checked)
def portal_request_consent(
    request: Request,
    by: Customer,
    service_ids: Annotated[list[str], Form()],
    targets: Annotated[str, Form(max_length=4000)],
    window_from: Annotated[str, Form(max_length=40)],
    window_to: Annotated[str, Form(max_length=40)],
    kind: Annotated[str, Form(max_length=20)] = "load",
    max_rate: Annotated[str, Form(max_length=12)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    form = {"service_ids": service_ids, "targets": targets, "window_from": window_from, "window_to": window_to,
            "kind": kind, "max_rate": max_rate, "reason": reason}  # fmt: skip
    try:
        rate = int(max_rate) if max_rate.strip() else None
    except ValueError:
        return _consents_page(request, by, error=f"maximum rate {max_rate!r} is not a whole number", form=form,
                              status=422)  # fmt: skip
    try:
        made = ConsentService(runtime_of(request)).request(
            by, service_ids=service_ids, targets=[t for t in targets.replace(",", " ").split() if t],
            window_from=_utc(window_from, "window start"), window_to=_utc(window_to, "window end"), kind=kind,
            max_rate=rate, reason=reason,
        )  # fmt: skip
    except AbuseDeskError as exc:
        return _consents_page(request, by, error=exc.message, form=form, status=exc.status)
    return redirect(request, f"/portal/consents?sent={made['id']}")


@router.post("/consents/{consent_id}/revoke", dependencies=Checked)
def portal_revoke_consent(request: Request, by: Customer, consent_id: str) -> Response:
    ConsentService(runtime_of(request)).decide(by, consent_id, status="revoked", reason="withdrawn by the customer")
    return redirect(request, "/portal/consents")
