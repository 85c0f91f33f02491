"""The case API: bearer tokens, filters and cursors, ETag/If-Match, the two-person rule over HTTP, triage,
inventory, audit, policy, health and metrics, and the docs served without a CDN."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from abusedesk.api.app import create_app
from abusedesk.cases.engine import CaseEngine
from abusedesk.evidence import checkpoints
from abusedesk.runtime import Runtime
from tests.api.testclient import TestClient
from tests.cases.support import finding
from tests.support.identities import People


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as c:
        yield c


def auth(people: People, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {people.tokens[name]}"}


def test_cases_need_a_valid_bearer_token(client: TestClient, people: People) -> None:
    r = client.get("/api/v1/cases")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/api/v1/cases", headers={"Authorization": "Bearer adk_nope"}).status_code == 401
    assert client.get("/api/v1/cases", headers={"Authorization": "Basic YTpi"}).status_code == 401
    assert client.get("/api/v1/cases", headers=auth(people, "alice")).json()["items"] == []


def test_list_filters_and_cursor_pages(client: TestClient, runtime: Runtime, people: People, clock) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    for i in range(7):
        CaseEngine(runtime).ingest([finding(runtime.policy, 0, key=f"ip:192.0.2.{10 + i}")])
        clock.advance(timedelta(seconds=1))
    CaseEngine(runtime).ingest([finding(runtime.policy, 0, key="ip:192.0.2.99", customer="cust-b", service="svc-b")])
    h = auth(people, "alice")
    seen, cursor = [], None
    while True:
        url = "/api/v1/cases?customer=cust-a&limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=h).json()
        seen += [c["ref"] for c in page["items"]]
        assert len(page["items"]) <= 3
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    everything = client.get("/api/v1/cases?limit=500", headers=h).json()["items"]
    assert [c["ref"] for c in everything if c["customer_id"] == "cust-a"] == seen
    assert client.get("/api/v1/cases?state=awaiting-customer&clause=1.8", headers=h).json()["items"]
    assert client.get("/api/v1/cases?state=nope", headers=h).status_code == 409
    assert client.get("/api/v1/cases?cursor=%%%", headers=h).status_code == 409
    assert client.get("/api/v1/cases?limit=0", headers=h).status_code == 422


def test_the_listed_page_is_the_service_page_and_its_documented_schema(  # type: ignore[no-untyped-def]
    client: TestClient, runtime: Runtime, people: People, clock
) -> None:
    """The list route encodes rows straight to JSON (``page_json``, orjson); it must say exactly what ``page``
    (``case_dict``, the CLI's) says, times with and without microseconds and empty ones included, and fit the
    ``CasePage`` model the OpenAPI document shows for it (FastAPI does not check a Response it is handed)."""
    from datetime import timedelta

    from sqlalchemy import update

    from abusedesk.api.cases import CasePage
    from abusedesk.cases.service import CaseService
    from abusedesk.store.tables.cases import CaseRow
    from tests.support.identities import customer_token

    for i in range(4):
        clock.advance(timedelta(seconds=1, microseconds=123_457 * (i % 2)))
        CaseEngine(runtime).ingest([finding(runtime.policy, 0, key=f"ip:192.0.2.{30 + i}")])
    with runtime.sessions.begin() as s:  # a case with every optional time set, one with microseconds
        ref = s.scalars(select_first_ref()).first()
        s.execute(
            update(CaseRow)
            .where(CaseRow.ref == ref)
            .values(closed_at=clock.now() + timedelta(microseconds=7), deadline=clock.now(), notified_at=clock.now())
        )
    customer_token(runtime, people, "cathy", "cust-a")
    pages = []
    for name, query in (("alice", {}), ("alice", {"limit": 2}), ("alice", {"clause": "1.8"}), ("cathy", {})):
        got = client.get("/api/v1/cases", params=query, headers=auth(people, name))
        assert got.status_code == 200
        assert got.headers["content-type"] == "application/json"
        want = {"ok": True, **CaseService(runtime).page(people[name], **query)}  # type: ignore[arg-type]
        assert got.json() == want
        assert CasePage.model_validate(got.json()).model_dump() == want
        pages.append(want)
    everything = pages[0]["items"]
    assert len(everything) == 4 and pages[1]["next_cursor"] and pages[3]["items"]
    assert any(c["closed_at"] and c["closed_at"].endswith("921Z") for c in everything)  # T0 + 246,914 + 7 µs
    assert any(c["updated_at"].endswith(".123457Z") for c in everything)
    assert any("." not in c["updated_at"] for c in everything)
    assert any(c["closed_at"] is None for c in everything)
    schema = client.get("/api/v1/openapi.json").json()
    ok = schema["paths"]["/api/v1/cases"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/CasePage"}


def select_first_ref():  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from abusedesk.store.tables.cases import CaseRow

    return select(CaseRow.ref).order_by(CaseRow.ref)


def test_case_changes_need_if_match_and_no_update_is_lost(client: TestClient, runtime: Runtime, people: People) -> None:
    ref = CaseEngine(runtime).ingest([finding(runtime.policy, 0)]).opened[0]
    h = auth(people, "alice")
    r = client.get(f"/api/v1/cases/{ref}", headers=h)
    etag = r.headers["etag"]
    case = r.json()["case"]
    assert etag == f'"v{case["version"]}"'
    assert "escalated" in case["allowed"] and case["timeline"] and case["notes"] == []
    move = {"to": "escalated", "reason": "still scanning"}
    r = client.post(f"/api/v1/cases/{ref}/transitions", json=move, headers=h)
    assert r.status_code == 428
    assert r.json()["title"] == "Precondition Required"
    r = client.post(f"/api/v1/cases/{ref}/transitions", json=move, headers=h | {"If-Match": etag})
    assert r.status_code == 200
    assert r.headers["etag"] != etag
    r = client.post(f"/api/v1/cases/{ref}/transitions", json={"to": "resolved"}, headers=h | {"If-Match": etag})
    assert r.status_code == 412  # bob's view was stale: his change is refused, alice's is kept
    assert "changed since you read it" in r.json()["detail"]
    fresh = client.get(f"/api/v1/cases/{ref}", headers=h).headers["etag"]
    r = client.post(f"/api/v1/cases/{ref}/notes", json={"text": "called them"}, headers=h | {"If-Match": fresh})
    assert r.status_code == 201
    r = client.post(f"/api/v1/cases/{ref}/transitions", json={"to": "restricted"}, headers=h | {"If-Match": fresh})
    assert r.status_code == 403
    assert "carried out" in r.json()["detail"]


def test_two_persons_over_http(client: TestClient, runtime: Runtime, people: People) -> None:
    ref = CaseEngine(runtime).ingest([finding(runtime.policy, 0)]).opened[0]
    etag = client.get(f"/api/v1/cases/{ref}", headers=auth(people, "bob")).headers["etag"]
    r = client.post(
        f"/api/v1/cases/{ref}/actions",
        json={"kind": "suspend-service", "reason": "goes on"},
        headers=auth(people, "bob") | {"If-Match": etag},
    )
    assert r.status_code == 201, r.json()
    action = r.json()["action"]
    url = f"/api/v1/actions/{action['id']}"
    r = client.post(f"{url}/approve", json={}, headers=auth(people, "bob"))
    assert r.status_code == 403
    assert "two-person rule" in r.json()["detail"]
    assert client.post(f"{url}/approve", json={}, headers=auth(people, "alice")).status_code == 403
    r = client.post(f"{url}/approve", json={"reason": "checked"}, headers=auth(people, "carol"))
    assert r.status_code == 200
    assert (r.json()["action"]["status"], r.json()["action"]["case_state"]) == ("pending", "escalated")
    assert client.get(url, headers=auth(people, "audrey")).json()["action"]["status"] == "pending"
    etag = client.get(f"/api/v1/cases/{ref}", headers=auth(people, "bob")).headers["etag"]
    other = client.post(
        f"/api/v1/cases/{ref}/actions",
        json={"kind": "report-officials", "reason": "x"},
        headers=auth(people, "bob") | {"If-Match": etag},
    ).json()["action"]
    assert (
        client.post(f"/api/v1/actions/{other['id']}/reject", json={}, headers=auth(people, "carol")).status_code == 409
    )
    r = client.post(f"/api/v1/actions/{other['id']}/reject", json={"reason": "no"}, headers=auth(people, "carol"))
    assert r.json()["action"]["status"] == "rejected"


def test_triage_inventory_audit_policy(client: TestClient, runtime: Runtime, people: People) -> None:
    from abusedesk.intake.service import IntakeService

    accepted = IntakeService(runtime).accept(b"\x00\x01 not a report", channel="http", reporter="x@example.net")
    IntakeService(runtime).parse(accepted.raw.id)
    h = auth(people, "alice")
    items = client.get("/api/v1/triage", headers=h).json()["items"]
    assert [i["id"] for i in items if i["type"] == "raw"] == [accepted.raw.id]
    r = client.get(f"/api/v1/triage/raw/{accepted.raw.id}/content", headers=h)
    assert r.content == b"\x00\x01 not a report"
    assert r.headers["content-disposition"].startswith("attachment")
    r = client.post(f"/api/v1/triage/raw/{accepted.raw.id}/release", headers=h)
    assert r.json()["result"]["status"] == "quarantined"
    from abusedesk.store.tables.inventory import ProjectRow, ServiceRow
    from tests.support.identities import ensure_customers

    ensure_customers(runtime, "cust-a")
    with runtime.sessions() as s, s.begin():
        s.add(ProjectRow(id="proj-a", customer_id="cust-a", name="a"))
        s.flush()
        s.add(ServiceRow(id="svc-a1", project_id="proj-a", kind="vm", name="a1"))
    r = client.post(
        f"/api/v1/triage/{accepted.raw.id}/promote",
        json={"clause": "1.8", "service_id": "svc-a1", "reason": "reporter phoned: it is a scan"},
        headers=h,
    )
    assert r.status_code == 201, r.json()
    [ref] = r.json()["cases"]
    timeline = client.get(f"/api/v1/cases/{ref}", headers=h).json()["case"]["timeline"]
    assert timeline[0]["actor"] == people["alice"].id
    r = client.get("/api/v1/inventory/whois?ip=192.0.2.1", headers=h)
    assert r.status_code == 200 and r.json()["ours"] is False
    assert client.get("/api/v1/inventory/whois?ip=banana", headers=h).status_code == 400
    assert client.get("/api/v1/audit/verify", headers=h).status_code == 403  # analysts do not audit
    r = client.get("/api/v1/audit/verify?unsigned=true", headers=auth(people, "audrey"))
    assert r.json()["intact"] is True and r.json()["entries"] > 0
    r = client.get("/api/v1/audit/verify", headers=auth(people, "audrey"))
    assert r.json()["intact"] is False  # no signing key yet: an unsigned log is not shown intact
    assert "no signed checkpoint" in r.json()["problem"]
    checkpoints.generate_key(checkpoints.key_path(runtime.settings))
    runtime.checkpointer.record_head()
    r = client.get("/api/v1/audit/verify", headers=auth(people, "audrey"))
    assert r.json()["intact"] is True and r.json()["entries"] > 0
    assert r.json()["signed_seq"] == r.json()["entries"]
    body = client.get("/api/v1/policy", headers=h).json()
    assert body["actions"]["suspend-service"]["asserts"] == "restricted"


def test_health_metrics_openapi_and_local_docs(client: TestClient, runtime: Runtime, people: People) -> None:
    CaseEngine(runtime).ingest([finding(runtime.policy, 0)])
    assert client.get("/healthz").json() == {"ok": True}
    assert client.get("/readyz").json()["ok"] is True
    assert client.get("/metrics").status_code == 401
    r = client.get("/metrics", headers=auth(people, "audrey"))
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in ("abusedesk_intake_inputs", "abusedesk_stage_backlog", "abusedesk_findings", "abusedesk_actions",
                 "abusedesk_notices", "abusedesk_cases"):  # fmt: skip
        assert f"# TYPE {name} gauge" in text
    assert 'abusedesk_findings{clause="1.8"} 1.0' in text
    assert 'abusedesk_actions{kind="request-to-cease",outcome="pending"} 1.0' in text
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token: `abusedesk token create`",
    }
    assert {"bearerAuth": []} in spec["paths"]["/api/v1/cases"]["get"]["security"]
    for page in ("/api/docs", "/api/redoc"):
        html = client.get(page).text
        assert "cdn" not in html.lower() and "unpkg" not in html.lower() and "googleapis" not in html.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        r = client.get(f"/api/docs-assets/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000
