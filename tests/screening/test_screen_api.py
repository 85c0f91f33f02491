"""POST /api/v1/screen/signup through TestClient: the verdict, and the signup recorded into the pipeline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from abusedesk.api.app import create_app
from abusedesk.identity.service import IdentityService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import FindingRow
from abusedesk.store.tables.intake import RawInputRow
from tests.api.testclient import TestClient
from tests.support.identities import People, make_people

pytestmark = pytest.mark.integration


@pytest.fixture
def people(runtime: Runtime) -> People:
    return make_people(runtime)


@pytest.fixture
def client(runtime: Runtime, people: People) -> Iterator[TestClient]:
    """The signup flow's client: an ``integration`` user's token (issue 14: a service token for the hook)."""
    ident = IdentityService(runtime)
    ident.add_user(people["root"], "signup-flow", "integration")
    token = ident.create_token(people["root"], "signup-flow", days=3650).token
    with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def test_only_a_token_allowed_to_screen_signups(runtime: Runtime, people: People) -> None:
    body = {"email": "x@example.org", "record": False}
    with TestClient(create_app(runtime)) as c:
        assert c.post("/api/v1/screen/signup", json=body).status_code == 401
        as_analyst = {"Authorization": f"Bearer {people.tokens['alice']}"}
        r = c.post("/api/v1/screen/signup", json=body, headers=as_analyst)
        assert r.status_code == 403 and "signup.screen" in r.json()["detail"]
        as_admin = {"Authorization": f"Bearer {people.tokens['root']}"}
        assert c.post("/api/v1/screen/signup", json=body, headers=as_admin).json()["verdict"] == "ok"


def test_verdict_without_recording(client: TestClient, runtime: Runtime) -> None:
    r = client.post("/api/v1/screen/signup", json={"email": "x@sub.mailinator.com", "record": False})
    assert r.status_code == 200
    body = r.json()
    assert (body["ok"], body["verdict"], body["rule"], body["matched_domain"]) == (
        True, "disposable", "list", "mailinator.com",
    )  # fmt: skip
    assert {entry["name"] for entry in body["lists"]} == {"disposable-email-domains", "mailchecker"}
    assert "mailchecker" in body["knowledge"] and body["recorded"] is None
    with runtime.sessions() as s:
        assert s.scalars(select(RawInputRow)).all() == []
    assert client.post("/api/v1/screen/signup", json={"email": "a@@b", "record": False}).json()["verdict"] == "invalid"


def test_a_recorded_signup_goes_through_the_pipeline(client: TestClient, runtime: Runtime) -> None:
    r = client.post(
        "/api/v1/screen/signup",
        json={"email": "someone@mailinator.com", "customer_id": "cus-9", "account_id": "acct-9", "ip": "192.0.2.9"},
    )
    body = r.json()
    assert body["verdict"] == "disposable" and len(body["recorded"]["reference"]) == 16
    runtime.drain()
    with runtime.sessions() as s:
        (finding,) = s.scalars(select(FindingRow)).all()
    assert (finding.kind, finding.clauses, finding.customer_id) == ("disposable-email", ["2"], "cus-9")


def test_validation_errors_are_422_in_the_one_shape(client: TestClient) -> None:
    r = client.post("/api/v1/screen/signup", json={"mail": "x@example.org"})
    assert r.status_code == 422
    body = r.json()
    assert body["status"] == 422
    assert {e["field"] for e in body["errors"]} >= {"body.email", "body.mail"}
    r = client.post("/api/v1/screen/signup", json={"email": "x@example.org", "ip": "not-an-ip"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("request field 'body.ip'")
    r = client.post("/api/v1/screen/signup", json={"email": "x@example.org", "time": "2026-03-01T10:00:00"})
    assert r.status_code == 422 and "zone" in r.json()["detail"]
