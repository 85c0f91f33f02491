"""Every route, as every role and as another customer's user (issue 10 item 4).

The routes come from the API's route table (``abusedesk.api.app.ROUTERS``); each must have a row in
:data:`ACCESS` saying who may call it, so a new route without one fails here instead of slipping past. For each
route the test makes a desk with a case of customer ``cust-a`` (an action on it, a quarantined input), then calls
the route as: nobody, analyst, approver, admin, auditor, cust-a's user (``cora``) and cust-b's user (``dave``).
Whoever may not call it gets 401 (no token), 403 or 404 and no data; whoever may gets neither 401 nor 403 nor
404, and a customer's lists hold only its own customer's cases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.routing import APIRoute

from abusedesk.api.app import ROUTERS, create_app
from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.service import CaseService
from abusedesk.consent import ConsentService
from abusedesk.intake.service import IntakeService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.inventory import ProjectRow, ServiceRow
from tests.api.testclient import TestClient
from tests.cases.support import finding
from tests.intake.samples import xarf
from tests.support.identities import People, customer_token

ANYONE = frozenset({None, "alice", "bob", "root", "audrey", "cora", "dave"})
SIGNED_IN = ANYONE - {None}
STAFF = frozenset({"alice", "bob", "root", "audrey"})
CHANGERS = frozenset({"alice", "bob", "root"})
APPROVERS = frozenset({"bob", "root"})
AUDITORS = frozenset({"audrey", "root"})
OWN = frozenset({"cora"})  # cust-a's user: the case and action below are cust-a's
CONSENT_REQUEST = {
    "service_ids": ["svc-a1"], "targets": ["192.0.2.0/28"], "kind": "load",
    "window_from": datetime(2026, 12, 8, 10, tzinfo=UTC), "window_to": datetime(2026, 12, 8, 12, tzinfo=UTC),
}  # fmt: skip

#: (method, path) -> who may call it. A route missing here fails test_every_route_has_a_row.
ACCESS: dict[tuple[str, str], frozenset[str | None]] = {
    ("GET", "/healthz"): ANYONE,
    ("GET", "/readyz"): ANYONE,
    ("GET", "/metrics"): STAFF,
    ("POST", "/api/v1/reports"): ANYONE,
    ("GET", "/api/v1/reports/{reference}"): STAFF,  # and its submitter, with the status token
    ("GET", "/api/v1/cases"): SIGNED_IN,  # a customer's list holds only its own cases
    ("GET", "/api/v1/cases/{ref}"): STAFF | OWN,
    ("POST", "/api/v1/cases/{ref}/transitions"): CHANGERS,
    ("POST", "/api/v1/cases/{ref}/notes"): CHANGERS,
    ("POST", "/api/v1/cases/{ref}/actions"): CHANGERS,
    ("POST", "/api/v1/cases/{ref}/messages"): OWN,  # the customer's word; staff write notes
    ("GET", "/api/v1/cases/{ref}/notices"): STAFF | OWN,
    ("GET", "/api/v1/actions/{action_id}"): STAFF | OWN,
    ("POST", "/api/v1/actions/{action_id}/approve"): APPROVERS,
    ("POST", "/api/v1/actions/{action_id}/reject"): APPROVERS | {"alice"},  # alice proposed it: she may withdraw
    ("GET", "/api/v1/triage"): STAFF,
    ("GET", "/api/v1/triage/raw/{raw_id}"): STAFF,
    ("GET", "/api/v1/triage/raw/{raw_id}/content"): STAFF,
    ("POST", "/api/v1/triage/raw/{raw_id}/release"): CHANGERS,
    ("POST", "/api/v1/triage/raw/{raw_id}/discard"): CHANGERS,
    ("POST", "/api/v1/triage/{item_id}/promote"): CHANGERS,
    ("GET", "/api/v1/inventory/whois"): STAFF,
    ("GET", "/api/v1/audit/verify"): AUDITORS,
    ("GET", "/api/v1/policy"): SIGNED_IN,
    ("GET", "/api/v1/consents"): SIGNED_IN,  # a customer's list holds only its own consents
    ("POST", "/api/v1/consents"): OWN | {"root"},  # for cust-a's service: dave gets 404 (not his)
    ("GET", "/api/v1/consents/{consent_id}"): STAFF | OWN,
    ("POST", "/api/v1/consents/{consent_id}/approve"): APPROVERS,
    ("POST", "/api/v1/consents/{consent_id}/reject"): APPROVERS,
    ("POST", "/api/v1/consents/{consent_id}/revoke"): APPROVERS | OWN,  # its requester may withdraw it
    ("POST", "/api/v1/screen/signup"): frozenset({"root"}),  # and the integration role (tests/screening)
}

#: public routes that answer 404 (not 401) to a caller without a token: the report status, whose submitter
#: proves itself by its status token instead
OPEN_DOORS = frozenset({"/api/v1/reports/{reference}"})

ROUTES = sorted((m, r.path) for router in ROUTERS for r in router.routes if isinstance(r, APIRoute) for m in r.methods)
CALLERS: tuple[str | None, ...] = (None, "alice", "bob", "root", "audrey", "cora", "dave")


def test_every_route_has_a_row() -> None:
    assert set(ROUTES) == set(ACCESS), "a route without a row in ACCESS (or a row without a route)"


def _desk(rt: Runtime, people: People) -> dict[str, str]:
    """A case of cust-a with an action alice proposed, a quarantined input, a report; customer users."""
    customer_token(rt, people, "cora", "cust-a")
    customer_token(rt, people, "dave", "cust-b")
    with rt.sessions() as s, s.begin():
        s.add(ProjectRow(id="proj-a", customer_id="cust-a", name="a"))
        s.flush()
        s.add(ServiceRow(id="svc-a1", project_id="proj-a", kind="vm", name="a1"))
    ref = CaseEngine(rt).ingest([finding(rt.policy, 0)]).opened[0]
    action = CaseService(rt).propose(ref, "suspend-service", by=people["alice"], reason="goes on")
    version = CaseService(rt).get(ref, people["alice"])["version"]
    intake = IntakeService(rt)
    raw = intake.accept(b"\x00 not a report", channel="http", reporter="x@example.net").raw.id
    intake.parse(raw)
    consent = ConsentService(rt).request(people["cora"], **CONSENT_REQUEST)  # type: ignore[arg-type]
    return {"ref": ref, "action_id": action["id"], "raw_id": raw, "item_id": raw, "etag": f'"v{version}"',
            "consent_id": str(consent["id"])}  # fmt: skip


def _call(c: TestClient, method: str, path: str, ids: dict[str, str], token: str | None) -> Any:
    url = path
    for key, value in ids.items():
        url = url.replace("{" + key + "}", value)
    headers = {"If-Match": ids["etag"]}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body: dict[str, Any] = {
        "/transitions": {"to": "escalated", "reason": "x"},
        "/notes": {"text": "x"},
        "/messages": {"kind": "reply", "text": "x"},
        "/actions": {"kind": "notify", "reason": "x"},
        "/approve": {"reason": "x"},
        "/reject": {"reason": "x"},
        "/promote": {"clause": "1.8", "service_id": "svc-a1", "reason": "x"},
        "/discard": {"reason": "x"},
        "/revoke": {"reason": "x"},
        "/api/v1/reports": xarf(),
        "/api/v1/consents": {
            **CONSENT_REQUEST,
            "window_from": "2026-12-08T10:00:00Z",
            "window_to": "2026-12-08T12:00:00Z",
        },
        "/api/v1/screen/signup": {"email": "x@example.org", "record": False},
    }.get(
        next(
            (
                k
                for k in (
                    "/transitions",
                    "/notes",
                    "/messages",
                    "/actions",
                    "/approve",
                    "/reject",
                    "/promote",
                    "/revoke",
                    "/discard",
                )
                if url.endswith(k)
            ),
            url,
        ),
        {},
    )
    if url.endswith("/whois"):
        url += "?ip=192.0.2.10"
    if method == "GET":
        return c.get(url, headers=headers)
    return c.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_route_answers_each_caller_as_its_role_allows(runtime: Runtime, people: People, method: str, path: str) -> None:
    ids = _desk(runtime, people)
    if path == "/api/v1/reports/{reference}":
        with TestClient(create_app(runtime)) as c:
            ids["reference"] = c.post("/api/v1/reports", json=xarf()).json()["reference"]
    allowed = ACCESS[(method, path)]
    with TestClient(create_app(runtime)) as c:
        for caller in CALLERS:
            token = people.tokens[caller] if caller else None
            r = _call(c, method, path, ids, token)
            what = f"{method} {path} as {caller or 'nobody'}: {r.status_code} {r.text[:300]}"
            if caller in allowed:
                assert r.status_code not in (401, 403, 404), what
                assert r.status_code < 500, what
            else:
                refused = (403, 404) if caller is not None else (404,) if path in OPEN_DOORS else (401,)
                assert r.status_code in refused, what
                assert r.headers["content-type"] == "application/problem+json", what
                # nothing of cust-a's case leaks beyond what the caller itself put in the URL
                in_url = {v for k, v in ids.items() if "{" + k + "}" in path}
                secrets = ({v for k, v in ids.items() if k != "etag"} - in_url) | {"cust-a", "svc-a1"}
                assert not [s for s in secrets if s in r.text], what
            if r.status_code == 200 and caller in ("cora", "dave") and path == "/api/v1/cases":
                items = r.json()["items"]
                assert all(i["customer_id"] == people[caller].customer_id for i in items), what
                assert (ids["ref"] in {i["ref"] for i in items}) == (caller == "cora"), what


def test_a_customer_cannot_widen_its_view(runtime: Runtime, people: People) -> None:
    ids = _desk(runtime, people)
    dave = {"Authorization": f"Bearer {people.tokens['dave']}"}
    cora = {"Authorization": f"Bearer {people.tokens['cora']}"}
    with TestClient(create_app(runtime)) as c:
        assert c.get("/api/v1/cases?customer=cust-a", headers=dave).json()["items"] == []
        assert c.get(f"/api/v1/cases/{ids['ref']}", headers=dave).status_code == 404
        assert c.get(f"/api/v1/cases/{ids['ref'].lower()}", headers=dave).status_code == 404
        mine = c.get(f"/api/v1/cases/{ids['ref']}", headers=cora).json()["case"]
        assert mine["notes"] == [] and all("actor" not in e for e in mine["timeline"])
        assert all("actor_name" not in e for e in mine["timeline"])  # nor our staff's names
        assert all(a["proposed_by"] is None for a in mine["actions"])  # no names of our staff
