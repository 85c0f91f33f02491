"""The customer portal: a customer sees its own cases and notices, replies, appeals, asks for test consent; and
cannot reach another customer's, whatever it guesses or forges."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from abusedesk.api.app import create_app
from abusedesk.cases.service import CaseService
from abusedesk.clock import ManualClock
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import CaseRow
from abusedesk.store.tables.evidence import AuditRow
from tests.api.testclient import TestClient
from tests.support.identities import People
from tests.support.web import REPORTER, Desk, portal_desk, sign_in


@pytest.fixture
def desk(runtime: Runtime, people: People, clock: ManualClock) -> Desk:
    return portal_desk(runtime, people, clock)


def _as(client: TestClient, desk: Desk, name: str) -> str:
    return sign_in(client, desk.users, name)


def test_customer_sees_its_case_notice_clause_and_evidence_without_the_reporter(
    client: TestClient, desk: Desk, runtime: Runtime
) -> None:
    _as(client, desk, "cora")
    home = client.get("/portal")
    assert home.status_code == 200
    assert desk.ref_a in home.text and desk.ref_b not in home.text
    assert "My cases" in home.text and 'aria-current="page"' in home.text
    page = client.get(f"/portal/cases/{desk.ref_a}")
    assert page.status_code == 200
    clause = runtime.policy.clause(runtime.policy.clauses_for_kind("brute-force")[0])
    assert f"clause {clause.id}" in page.text and clause.title in page.text
    assert " ".join(clause.summary.split())[:60] in page.text
    assert "1,500" in page.text and "198.51.100.7" in page.text  # the technical evidence
    assert REPORTER not in page.text and "a third party" in page.text  # the reporter withheld
    assert "Notices about this case" in page.text and desk.ref_a in page.text
    assert "No notice has been sent" not in page.text


def test_reporter_who_agreed_is_named(client: TestClient, desk: Desk, runtime: Runtime) -> None:
    runtime.settings.notices.disclose_reporters = ["@cert.example.net"]
    _as(client, desk, "cora")
    assert REPORTER in client.get(f"/portal/cases/{desk.ref_a}").text


def test_reply_is_recorded_audited_and_seen_by_the_analyst(
    client: TestClient, desk: Desk, runtime: Runtime, people: People
) -> None:
    token = _as(client, desk, "cora")
    r = client.post(
        f"/portal/cases/{desk.ref_a}/messages",
        data={"csrf_token": token, "kind": "reply", "text": "We closed SSH to the world; sorry."},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith(f"/portal/cases/{desk.ref_a}?sent=reply")
    page = client.get(r.headers["location"])
    assert "Your reply was sent" in page.text and "We closed SSH to the world" in page.text
    case = CaseService(runtime).get(desk.ref_a, people["alice"])  # the analyst, through the same service
    [message] = case["messages"]
    assert (message["kind"], message["author"], message["author_name"]) == ("reply", people["cora"].id, "cora")
    assert any(e["type"] == "message" and "closed SSH" in e["text"] for e in case["timeline"])
    with runtime.sessions() as s:
        entry = s.scalars(select(AuditRow).where(AuditRow.action == "case.replied")).one()
    assert entry.actor == people["cora"].id
    # and the API shows it to an analyst's token
    with TestClient(create_app(runtime)) as api:
        got = api.get(f"/api/v1/cases/{desk.ref_a}", headers={"Authorization": f"Bearer {people.tokens['alice']}"})
    assert got.json()["case"]["messages"][0]["text"] == "We closed SSH to the world; sorry."


def test_acknowledge_once_and_appeal_moves_the_case(client: TestClient, desk: Desk, runtime: Runtime) -> None:
    token = _as(client, desk, "cora")
    url = f"/portal/cases/{desk.ref_a}/messages"
    assert (
        client.post(url, data={"csrf_token": token, "kind": "acknowledge"}, follow_redirects=False).status_code == 303
    )
    again = client.post(url, data={"csrf_token": token, "kind": "acknowledge"}, follow_redirects=False)
    assert again.status_code == 409 and "acknowledged already" in again.text
    assert "Acknowledge: we have seen this" not in client.get(f"/portal/cases/{desk.ref_a}").text
    empty = client.post(url, data={"csrf_token": token, "kind": "appeal", "text": "  "}, follow_redirects=False)
    assert empty.status_code == 409 and "needs text" in empty.text
    r = client.post(
        url, data={"csrf_token": token, "kind": "appeal", "text": "That address was a honeypot of ours."},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303
    with runtime.sessions() as s:
        assert s.scalar(select(CaseRow.state).where(CaseRow.ref == desk.ref_a)) == "appealed"


def test_customer_cannot_reach_another_customers_case(
    client: TestClient, desk: Desk, runtime: Runtime, people: People
) -> None:
    token = _as(client, desk, "cora")
    for guess in (desk.ref_b, desk.ref_b.lower(), desk.id_b):
        assert client.get(f"/portal/cases/{guess}").status_code == 404, guess
        r = client.post(
            f"/portal/cases/{guess}/messages", data={"csrf_token": token, "kind": "reply", "text": "hello B"},
            follow_redirects=False,
        )  # fmt: skip
        assert r.status_code == 404, guess
        assert desk.ref_b not in r.text or guess == desk.ref_b
    assert client.get("/portal?state=notified&cursor=" + "x" * 10).status_code == 409  # not a cursor of ours
    assert CaseService(runtime).get(desk.ref_b, people["dave"])["messages"] == []
    assert "cust-b" not in client.get("/portal").text


def test_forged_posts_without_the_session_token_are_refused(
    client: TestClient, desk: Desk, runtime: Runtime, people: People
) -> None:
    real = _as(client, desk, "cora")
    url = f"/portal/cases/{desk.ref_a}/messages"
    for data, headers in (
        ({"kind": "reply", "text": "forged"}, {}),  # no token
        ({"kind": "reply", "text": "forged", "csrf_token": "guess"}, {}),  # a guessed one
        ({"kind": "reply", "text": "forged", "csrf_token": real}, {"Origin": "https://evil.example"}),  # other site
    ):
        r = client.post(url, data=data, headers=headers, follow_redirects=False)
        assert r.status_code == 403, (data, headers)
    # dave's own session token does not work on cora's session either
    with TestClient(client.app, base_url="http://desk.test") as other:
        daves = _as(other, desk, "dave")
    r = client.post(url, data={"kind": "reply", "text": "forged", "csrf_token": daves}, follow_redirects=False)
    assert r.status_code == 403
    assert CaseService(runtime).get(desk.ref_a, people["alice"])["messages"] == []


def test_staff_and_signed_out_users_do_not_use_the_portal(client: TestClient, desk: Desk) -> None:
    assert client.get("/portal", follow_redirects=False).status_code == 303
    _as(client, desk, "alice")
    r = client.get("/portal", headers={"Accept": "text/html"})
    assert r.status_code == 403 and "for customer" in r.text


def test_consent_request_and_withdrawal(client: TestClient, desk: Desk, runtime: Runtime, people: People) -> None:
    from abusedesk.consent import ConsentService

    token = _as(client, desk, "cora")
    page = client.get("/portal/consents")
    assert page.status_code == 200 and "svc-a1" in page.text and "svc-b1" not in page.text
    form = {"csrf_token": token, "service_ids": ["svc-a1"], "targets": "203.0.113.0/28, 203.0.113.99",
            "window_from": "2026-12-08T10:00", "window_to": "2026-12-08T12:00", "kind": "load", "max_rate": "500",
            "reason": "release test"}  # fmt: skip
    bad = client.post("/portal/consents", data=form | {"window_to": "2026-12-08T09:00"}, follow_redirects=False)
    assert bad.status_code == 400 and "ends" in bad.text and "release test" in bad.text  # the form kept
    other = client.post("/portal/consents", data=form | {"service_ids": ["svc-b1"]}, follow_redirects=False)
    assert other.status_code == 404 and "not one of your services" in other.text
    r = client.post("/portal/consents", data=form, follow_redirects=False)
    assert r.status_code == 303
    [consent] = ConsentService(runtime).list_consents(people["bob"])
    assert consent["requested_by"] == people["cora"].id and consent["targets"] == ["203.0.113.0/28", "203.0.113.99/32"]
    assert consent["window_from"] == "2026-12-08T10:00:00Z"
    assert re.search(r"requested", client.get("/portal/consents").text)
    ConsentService(runtime).decide(people["bob"], consent["id"], status="approved")
    page = client.get("/portal/consents")
    assert "approved" in page.text and "Withdraw" in page.text
    r = client.post(f"/portal/consents/{consent['id']}/revoke", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert ConsentService(runtime).get(people["bob"], consent["id"])["status"] == "revoked"


def test_api_reply_route_is_the_same_service(desk: Desk, runtime: Runtime, people: People) -> None:
    cora = {"Authorization": f"Bearer {people.tokens['cora']}"}
    alice = {"Authorization": f"Bearer {people.tokens['alice']}"}
    with TestClient(create_app(runtime)) as api:
        r = api.post(f"/api/v1/cases/{desk.ref_a}/messages", json={"kind": "reply", "text": "via API"}, headers=cora)
        assert r.status_code == 201 and r.json()["message"]["author"] == people["cora"].id
        r = api.post(f"/api/v1/cases/{desk.ref_a}/messages", json={"kind": "reply", "text": "x"}, headers=alice)
        assert r.status_code == 403  # staff do not speak for the customer
        r = api.get(f"/api/v1/cases/{desk.ref_a}/notices", headers=cora)
        [notice] = r.json()["items"]
        assert desk.ref_a in notice["case_refs"] and REPORTER not in notice["body"]
        case = api.get(f"/api/v1/cases/{desk.ref_a}", headers=cora).json()["case"]
        assert all(f.get("facts", {}).get("reporter") in (None, "a third party") for f in case["findings"]["recent"])
        assert all("actor_name" not in e for e in case["timeline"] if e["type"] != "message")
