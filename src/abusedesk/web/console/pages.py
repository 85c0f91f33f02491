"""The analyst console's pages under ``/console`` (issue 11 item 1): the case queue with mass actions, the case page
with its action buttons and two-person approvals, the evidence viewer, triage, "who had this address", and the
dashboard.

Pages are for the provider's staff (``page_user`` of the staff roles: a customer gets 403). Every form posts with
the session's CSRF token (``csrf_checked``) and calls the service the API and the CLI call, with the signed-in
Principal; what a role may not do is refused by the service, not hidden by the page alone. A form that succeeds
redirects (303) to the page it came from with a short notice; one the service refuses shows the page again with
the service's message and its status. Every form is a plain HTML form: htmx only makes some of them faster.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from abusedesk.api.deps import app_service, runtime_of
from abusedesk.cases.service import CaseService
from abusedesk.domain import actions as actions_catalogue
from abusedesk.domain.casestate import CaseState
from abusedesk.domain.errors import AbuseDeskError, ConfigError, NotFound
from abusedesk.domain.identity import STAFF_ROLES, Can, Principal
from abusedesk.domain.timeutil import parse_time
from abusedesk.intake.triage import TriageService
from abusedesk.web.auth import csrf_checked, page_user, redirect
from abusedesk.web.console import charts
from abusedesk.web.console.actions import OPERATIONS, apply_to_selection
from abusedesk.web.console.queries import AGES, DEADLINES, ConsoleViews, QueueFilters
from abusedesk.web.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)
Staff = Annotated[Principal, Depends(page_user(*STAFF_ROLES))]
Checked = [Depends(csrf_checked)]

#: the notices a redirect after a successful form carries (``?done=KEY``): fixed texts, so a link cannot make the
#: page say anything else
DONE = {
    "note": "Note added.",
    "transition": "The case moved.",
    "proposed": "Action proposed; it waits for a second person's approval.",
    "started": "Action started.",
    "approved": "Approved.",
    "approval": "Approval recorded; another approver is still needed.",
    "rejected": "Action rejected.",
    "promoted": "Promoted to a case.",
    "released": "Released: the input was parsed again.",
    "still": "Released, but the input is still quarantined (see the reason).",
    "discarded": "Input discarded.",
}


def views(request: Request) -> ConsoleViews:
    return app_service(request, "console_views", ConsoleViews)


def _done(request: Request) -> str:
    return DONE.get(request.query_params.get("done", ""), "")


def _path(base: str, **params: str) -> str:
    return f"{base}?{urlencode(params)}" if params else base


# ------------------------------------------------------------------------------------------------------ the queue


@router.get("")
def queue(request: Request, by: Staff) -> Response:
    filters = QueueFilters.from_query(request.query_params)
    page = views(request).queue(by, filters)
    context = _queue_context(request, by, filters, page)
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "queue-results":
        return render(request, "console/_queue_results.html", **context)
    return render(request, "console/queue.html", **context)


def _queue_context(request: Request, by: Principal, filters: QueueFilters, page: dict[str, Any]) -> dict[str, Any]:
    cursor = page["next_cursor"]
    return {
        "filters": filters,
        "page": page,
        "next_url": _path("/console", **filters.params(cursor=cursor)) if cursor else None,
        "first_url": _path("/console", **filters.params()) if filters.cursor else None,
        "sort_urls": {s: _path("/console", **filters.params(sort=s)) for s in ("updated", "opened", "deadline")},
        "clauses": views(request).clauses(),
        "states": ["open", *(s.value for s in CaseState)],
        "severities": ["low", "medium", "high", "critical"],
        "ages": list(AGES),
        "deadlines": list(DEADLINES),
        "operations": OPERATIONS,
        "action_kinds": sorted(actions_catalogue.CATALOGUE),
        "can_change": by.can(Can.CASE_CHANGE),
        "done": _done(request),
        "error": "",
        "outcomes": [],
    }


@router.post("/cases/mass", dependencies=Checked)
def mass_action(
    request: Request,
    by: Staff,
    case: Annotated[list[str] | None, Form()] = None,
    do: Annotated[str, Form(max_length=80)] = "",
    reason: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    """Apply one operation (``do`` is ``transition:STATE``, ``propose:KIND`` or ``note:``) to the selected cases;
    the queue is shown again with each case's outcome."""
    rt = runtime_of(request)
    filters = QueueFilters.from_query(request.query_params)
    operation, _, value = do.partition(":")
    error, outcomes, status = "", [], 200
    try:
        outcomes = apply_to_selection(rt, by, case or [], operation, value, reason)
    except AbuseDeskError as exc:
        error, status = exc.message, exc.status
    page = views(request).queue(by, filters)
    context = _queue_context(request, by, filters, page) | {"error": error, "outcomes": outcomes}
    return render(request, "console/queue.html", status, **context)


# ------------------------------------------------------------------------------------------------------ a case


def _case_page(request: Request, by: Principal, ref: str, *, error: str = "", status: int = 200) -> Response:
    case = views(request).case(by, ref)
    kinds = [
        {"kind": k, "summary": spec.summary, "persons": spec.persons}
        for k, spec in sorted(actions_catalogue.CATALOGUE.items())
    ]
    return render(
        request,
        "console/case.html",
        status,
        case=case,
        kinds=kinds,
        can_change=by.can(Can.CASE_CHANGE),
        can_propose=by.can(Can.ACTION_PROPOSE),
        can_approve=by.can(Can.ACTION_APPROVE),
        done=_done(request),
        error=error,
    )


@router.get("/cases/{ref}")
def case_page(request: Request, by: Staff, ref: str) -> Response:
    return _case_page(request, by, ref)


def _case_form(
    request: Request, by: Principal, ref: str, work: Callable[[], Any], done: str | Callable[[Any], str]
) -> Response:
    """Run a form's service call; 303 back to the case with a notice, or the case page with the refusal."""
    try:
        outcome = work()
    except NotFound:
        raise
    except AbuseDeskError as exc:
        return _case_page(request, by, ref, error=exc.message, status=exc.status)
    key = done(outcome) if callable(done) else done
    return redirect(request, _path(f"/console/cases/{ref}", done=key))


def _version(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() else None


@router.post("/cases/{ref}/transition", dependencies=Checked)
def transition(
    request: Request,
    by: Staff,
    ref: str,
    to: Annotated[str, Form(max_length=30)],
    reason: Annotated[str, Form(max_length=20000)] = "",
    version: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    svc = CaseService(runtime_of(request))
    return _case_form(
        request, by, ref,
        lambda: svc.transition(ref, to, by=by, reason=reason, expected_version=_version(version)),
        "transition",
    )  # fmt: skip


@router.post("/cases/{ref}/note", dependencies=Checked)
def note(request: Request, by: Staff, ref: str, text: Annotated[str, Form(max_length=20000)] = "") -> Response:
    svc = CaseService(runtime_of(request))
    return _case_form(request, by, ref, lambda: svc.note(ref, text, by=by), "note")


@router.post("/cases/{ref}/propose", dependencies=Checked)
def propose(
    request: Request,
    by: Staff,
    ref: str,
    kind: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(max_length=20000)] = "",
    version: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    svc = CaseService(runtime_of(request))
    return _case_form(
        request, by, ref,
        lambda: svc.propose(ref, kind, by=by, reason=reason, expected_version=_version(version)),
        lambda action: "proposed" if action["status"] == "proposed" else "started",
    )  # fmt: skip


@router.post("/actions/{action_id}/approve", dependencies=Checked)
def approve(
    request: Request,
    by: Staff,
    action_id: str,
    ref: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    svc = CaseService(runtime_of(request))
    return _case_form(
        request, by, ref,
        lambda: svc.approve(action_id, by=by, reason=reason),
        lambda action: "approval" if action.get("approvals_missing") else "approved",
    )  # fmt: skip


@router.post("/actions/{action_id}/reject", dependencies=Checked)
def reject(
    request: Request,
    by: Staff,
    action_id: str,
    ref: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    svc = CaseService(runtime_of(request))
    return _case_form(request, by, ref, lambda: svc.reject(action_id, by=by, reason=reason), "rejected")


@router.get("/cases/{ref}/evidence/{raw_id}")
def case_evidence(request: Request, by: Staff, ref: str, raw_id: str) -> Response:
    evidence = views(request).evidence(by, raw_id, case_ref=ref)
    return render(request, "console/evidence.html", evidence=evidence, case_ref=ref, triage=None, done="", error="")


@router.get("/raw/{raw_id}")
def raw_download(request: Request, by: Staff, raw_id: str) -> Response:
    """The input's bytes exactly as received, as a download (never rendered by the browser)."""
    _, data = TriageService(runtime_of(request)).raw(by, raw_id)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{raw_id[:64]}.bin"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


# ------------------------------------------------------------------------------------------------------ triage


@router.get("/triage")
def triage(request: Request, by: Staff) -> Response:
    data = views(request).triage(by)
    return render(request, "console/triage.html", triage=data, done=_done(request), error="")


def _triage_item(request: Request, by: Principal, raw_id: str, *, error: str = "", status: int = 200) -> Response:
    evidence = views(request).evidence(by, raw_id)
    context = {"clauses": views(request).clauses(), "can_change": by.can(Can.TRIAGE_CHANGE)}
    return render(
        request, "console/evidence.html", status, evidence=evidence, case_ref=None, triage=context,
        done=_done(request), error=error,
    )  # fmt: skip


@router.get("/triage/{raw_id}")
def triage_item(request: Request, by: Staff, raw_id: str) -> Response:
    return _triage_item(request, by, raw_id)


@router.post("/triage/{raw_id}/promote", dependencies=Checked)
def promote(
    request: Request,
    by: Staff,
    raw_id: str,
    clause: Annotated[str, Form(max_length=20)] = "",
    service_id: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    return _promote(request, by, raw_id, clause, service_id, reason, _triage_item)


def _triage_event(request: Request, by: Principal, event_id: str, *, error: str = "", status: int = 200) -> Response:
    event = TriageService(runtime_of(request)).event(by, event_id)
    return render(
        request, "console/triage_event.html", status, event=event, clauses=views(request).clauses(),
        can_change=by.can(Can.TRIAGE_CHANGE), done=_done(request), error=error,
    )  # fmt: skip


@router.get("/triage/events/{event_id}")
def triage_event(request: Request, by: Staff, event_id: str) -> Response:
    """An event waiting for an analyst (its reporter or attribution left it): its facts and the promote form."""
    return _triage_event(request, by, event_id)


@router.post("/triage/events/{event_id}/promote", dependencies=Checked)
def promote_event(
    request: Request,
    by: Staff,
    event_id: str,
    clause: Annotated[str, Form(max_length=20)] = "",
    service_id: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    """Promote the event to a case under ``clause``; ``service_id`` may stay empty when attribution found one."""
    return _promote(request, by, event_id, clause, service_id, reason, _triage_event)


def _promote(
    request: Request,
    by: Principal,
    item_id: str,
    clause: str,
    service_id: str,
    reason: str,
    again: Callable[..., Response],
) -> Response:
    """Promote an input or an event (``TriageService.promote``): to the case with a notice, or ``again`` (the
    item's page) with the service's refusal."""
    try:
        out = TriageService(runtime_of(request)).promote(
            by, item_id, clause=clause.strip(), service_id=service_id.strip(), reason=reason
        )
    except AbuseDeskError as exc:
        return again(request, by, item_id, error=exc.message, status=exc.status)
    [ref, *_] = out["cases"]
    return redirect(request, _path(f"/console/cases/{ref}", done="promoted"))


@router.post("/triage/{raw_id}/release", dependencies=Checked)
def release(request: Request, by: Staff, raw_id: str) -> Response:
    try:
        out = TriageService(runtime_of(request)).release(by, raw_id)
    except AbuseDeskError as exc:
        return _triage_item(request, by, raw_id, error=exc.message, status=exc.status)
    if out["status"] == "quarantined":
        return redirect(request, _path(f"/console/triage/{raw_id}", done="still"))
    return redirect(request, _path("/console/triage", done="released"))


@router.post("/triage/{raw_id}/discard", dependencies=Checked)
def discard(request: Request, by: Staff, raw_id: str, reason: Annotated[str, Form(max_length=20000)] = "") -> Response:
    try:
        TriageService(runtime_of(request)).discard(by, raw_id, reason=reason)
    except AbuseDeskError as exc:
        return _triage_item(request, by, raw_id, error=exc.message, status=exc.status)
    return redirect(request, _path("/console/triage", done="discarded"))


# ------------------------------------------------------------------------------------------------------ whois


@router.get("/whois")
def whois(request: Request, by: Staff, ip: str = "", at: str = "") -> Response:
    """ "Who had this address at this time?" (a form; the answer under it once an address is given)."""
    answer, error, status = None, "", 200
    if ip.strip():
        try:
            when = _when(at)
            answer = views(request).who_had(by, ip.strip(), when)
        except ConfigError as exc:
            error, status = exc.message, exc.status
    return render(request, "console/whois.html", status, ip=ip, at=at, answer=answer, error=error, done="")


def _when(text: str) -> datetime | None:
    """The form's time: ISO 8601 with a zone, or a ``datetime-local`` value (read as UTC, the page says so)."""
    text = text.strip()
    if not text:
        return None
    try:
        return parse_time(text, assume_utc=True)
    except ValueError:
        raise ConfigError(f"time {text[:40]!r} is not a date and time (e.g. 2026-03-01T10:00Z)", field="at") from None


# ------------------------------------------------------------------------------------------------------ dashboard


@router.get("/dashboard")
def dashboard(request: Request, by: Staff, days: str = "30") -> Response:
    if days not in ("7", "30", "90"):
        raise ConfigError("days must be 7, 30 or 90", field="days")
    data = views(request).dashboard(by, days=int(days))
    fpc = data["findings_per_clause"]
    pictures = {
        "findings": charts.line_chart(f"Findings per clause per day, last {days} days", fpc["dates"], fpc["series"]),
        "ages": charts.bar_chart("Open cases by age", [(a["label"], a["count"]) for a in data["open_by_age"]]),
        "resolution": charts.bar_chart(
            "Median time to resolution per clause (hours)",
            [(f"clause {r['clause']}", r["median"]) for r in data["resolution_hours"]],
            unit=" h",
        ),
        "reporters": charts.bar_chart(
            "Reporter accuracy (confirmed share of decided cases)",
            [(r["address"], round(100 * (r["accuracy"] or 0))) for r in data["reporters"]],
            unit=" %",
        ),
    }
    return render(request, "console/dashboard.html", data=data, charts=pictures, done="", error="")
