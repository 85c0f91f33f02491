"""The console's pages through the real app (TestClient, real sign-in, real sessions and CSRF tokens): each page
renders, each form does what the API would do as the signed-in person, and the role checks and the two-person rule
hold whatever is posted."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from abusedesk.clock import ManualClock
from abusedesk.config import Settings
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseRow
from abusedesk.store.tables.intake import RawInputRow
from tests.api.testclient import TestClient
from tests.support.identities import People, customer_token
from tests.support.web import WebUsers, sign_in
from tests.web.console.support import make_cases, quarantined, reported_case

REFS = re.compile(r'href="/console/cases/(AD-[0-9A-F]+)"')


def refs_on(html: str) -> list[str]:
    return list(dict.fromkeys(REFS.findall(html)))


def post(client: TestClient, path: str, csrf: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf, **data}, follow_redirects=False)


def test_pages_need_a_signed_in_member_of_staff(
    client: TestClient, runtime: Runtime, clock: ManualClock, people: People, users: WebUsers
) -> None:
    [ref] = make_cases(runtime, clock, 1)
    pages = ["/console", f"/console/cases/{ref}", "/console/triage", "/console/whois", "/console/dashboard"]
    for page in pages:
        r = client.get(page, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=/console"), page
    # a customer's user, even of the case's own customer, reaches no console page and no console form
    customer_token(runtime, people, "cindy", "cust-a")
    from tests.support.web import web_users

    web_users(runtime, people, ["cindy"])
    csrf = sign_in(client, users, "cindy")
    for page in pages:
        r = client.get(page)
        assert r.status_code == 403, page
        assert "192.0.2.10" not in r.text  # nothing of the case (its path may be named as the instance)
    for form in (f"/console/cases/{ref}/note", "/console/cases/mass"):
        r = post(client, form, csrf, text="hello", case=ref, do="note:", reason="hello")
        assert r.status_code == 403, form
    from abusedesk.store.tables.cases import CaseNoteRow

    with runtime.sessions() as s:
        assert s.scalars(select(CaseNoteRow)).all() == []


def test_queue_filters_sorts_and_pages(
    client: TestClient, runtime: Runtime, clock: ManualClock, people: People, users: WebUsers
) -> None:
    refs = make_cases(runtime, clock, 7)
    sign_in(client, users, "alice")
    first = client.get("/console?limit=3")
    assert first.status_code == 200
    assert refs_on(first.text) == list(reversed(refs))[:3]
    assert 'aria-label="Select ' in first.text and "<caption" in first.text
    assert "7 cases match these filters." in first.text
    seen = refs_on(first.text)
    page = first
    while (found := re.search(r'href="(/console\?[^"]*)" rel="next"', page.text)) is not None:
        page = client.get(found.group(1).replace("&amp;", "&") + "&limit=3")
        seen += refs_on(page.text)
    assert seen == list(reversed(refs))
    assert refs_on(client.get("/console?sort=opened").text) == refs
    assert refs_on(client.get("/console?clause=1.11").text) == []
    r = client.get("/console?sort=nope")
    assert r.status_code == 400 and "sort" in r.text
    # htmx asks for the results only: no page around them
    partial = client.get("/console?sort=opened", headers={"HX-Request": "true", "HX-Target": "queue-results"})
    assert partial.text.lstrip().startswith('<div id="queue-results">') and "<html" not in partial.text
    assert refs_on(partial.text) == refs


def test_mass_action_needs_the_csrf_token_and_reports_each_case(
    client: TestClient, runtime: Runtime, clock: ManualClock, people: People, users: WebUsers
) -> None:
    refs = make_cases(runtime, clock, 3)
    csrf = sign_in(client, users, "alice")
    r = client.post("/console/cases/mass", data={"case": refs, "do": "note:", "reason": "x"}, follow_redirects=False)
    assert r.status_code == 403  # no token: refused before anything runs
    r = post(client, "/console/cases/mass", "forged", case=refs, do="note:", reason="x")
    assert r.status_code == 403
    r = post(client, "/console/cases/mass", csrf, case=refs, do="transition:escalated", reason="all three")
    assert r.status_code == 200
    assert r.text.count('<span class="badge done">done</span>') == 3
    r = post(client, "/console/cases/mass", csrf, case=refs[:2], do="transition:new", reason="back")
    assert r.text.count("refused</span>") == 2 and "escalated" in r.text
    with runtime.sessions() as s:
        assert set(s.scalars(select(CaseRow.state).where(CaseRow.ref.in_(refs)))) == {"escalated"}


def _propose(client: TestClient, csrf: str, ref: str, kind: str = "suspend-service") -> str:
    page = client.get(f"/console/cases/{ref}").text
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    r = post(client, f"/console/cases/{ref}/propose", csrf, kind=kind, reason="keeps scanning",
             version=version.group(1))  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/console/cases/{ref}?done=proposed", r.text
    return r.headers["location"]


def _action_id(runtime: Runtime, ref: str, kind: str = "suspend-service") -> str:
    with runtime.sessions() as s:
        case_id = s.scalar(select(CaseRow.id).where(CaseRow.ref == ref))
        found = s.scalar(select(ActionRow.id).where(ActionRow.case_id == case_id, ActionRow.kind == kind))
    assert found
    return found


def test_two_person_rule_holds_through_the_pages(
    runtime: Runtime, clock: ManualClock, people: People, users: WebUsers
) -> None:
    from abusedesk.api.app import create_app

    [ref, other] = make_cases(runtime, clock, 2)
    app = create_app(runtime)
    with TestClient(app, base_url="http://desk.test") as alice_c, TestClient(app, base_url="http://desk.test") as bob_c:
        alice_csrf = sign_in(alice_c, users, "alice")
        bob_csrf = sign_in(bob_c, users, "bob")  # an approver: password and TOTP
        location = _propose(alice_c, alice_csrf, ref)
        page = alice_c.get(location).text
        assert "Action proposed" in page and "your proposal: another person approves it" in page
        action = _action_id(runtime, ref)
        # the proposer cannot approve (no button, and a forged post is refused by the service)
        r = post(alice_c, f"/console/actions/{action}/approve", alice_csrf, ref=ref, reason="me")
        assert r.status_code == 403 and "may not action.approve" in r.text
        # an approver approves; the same approver again is refused
        assert f"/console/actions/{action}/approve" in bob_c.get(f"/console/cases/{ref}").text
        r = post(bob_c, f"/console/actions/{action}/approve", bob_csrf, ref=ref, reason="seen the flows")
        assert r.status_code == 303 and r.headers["location"].endswith("done=approved")
        r = post(bob_c, f"/console/actions/{action}/approve", bob_csrf, ref=ref, reason="again")
        assert r.status_code == 409 and "not proposed" in r.text
        with runtime.sessions() as s:
            row = s.get(ActionRow, action)
            assert row is not None and row.status == "pending" and row.approved_by == people["bob"].id
            assert row.proposed_by == people["alice"].id
        # an approver's own proposal: not by itself, by another approver
        _propose(bob_c, bob_csrf, other)
        mine = _action_id(runtime, other)
        assert f"/console/actions/{mine}/approve" not in bob_c.get(f"/console/cases/{other}").text
        r = post(bob_c, f"/console/actions/{mine}/approve", bob_csrf, ref=other, reason="mine")
        assert r.status_code == 403 and "two-person rule" in r.text
        with TestClient(app, base_url="http://desk.test") as carol_c:
            carol_csrf = sign_in(carol_c, users, "carol")
            r = post(carol_c, f"/console/actions/{mine}/reject", carol_csrf, ref=other, reason="")
            assert r.status_code == 409 and "needs a reason" in r.text
            r = post(carol_c, f"/console/actions/{mine}/approve", carol_csrf, ref=other, reason="agreed")
            assert r.status_code == 303
        with TestClient(app, base_url="http://desk.test") as audrey_c:  # an auditor reads, changes nothing
            audrey_csrf = sign_in(audrey_c, users, "audrey")
            assert audrey_c.get(f"/console/cases/{ref}").status_code == 200
            r = post(audrey_c, f"/console/cases/{ref}/note", audrey_csrf, text="x")
            assert r.status_code == 403


def test_a_stale_form_is_refused(
    client: TestClient, runtime: Runtime, clock: ManualClock, people: People, users: WebUsers
) -> None:
    [ref] = make_cases(runtime, clock, 1)
    csrf = sign_in(client, users, "alice")
    page = client.get(f"/console/cases/{ref}").text
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    assert post(client, f"/console/cases/{ref}/note", csrf, text="first").status_code == 303
    r = post(client, f"/console/cases/{ref}/transition", csrf, to="escalated", reason="x", version=version.group(1))
    assert r.status_code == 303  # a note does not change the version
    r = post(client, f"/console/cases/{ref}/transition", csrf, to="resolved", reason="x", version=version.group(1))
    assert r.status_code == 412 and "changed since you read it" in r.text


def test_triage_pages_promote_release_and_discard(
    client: TestClient, runtime: Runtime, settings: Settings, clock: ManualClock, people: People, users: WebUsers
) -> None:
    rt, _, _ = reported_case(runtime, settings, clock)  # the inventory: svc_acme_mx
    one, two, three = (quarantined(rt, f"\x00 not a report {i}".encode()) for i in range(3))
    from abusedesk.api.app import create_app

    with TestClient(create_app(rt), base_url="http://desk.test") as c:
        csrf = sign_in(c, users, "alice")
        queue = c.get("/console/triage").text
        assert all(f"/console/triage/{r}" in queue for r in (one, two, three))
        page = c.get(f"/console/triage/{one}")
        assert page.status_code == 200 and "not a report 0" in page.text and "Promote to a case" in page.text
        r = post(c, f"/console/triage/{one}/promote", csrf, clause="9.99", service_id="svc_acme_mx", reason="x")
        assert r.status_code == 404 and "9.99" in r.text
        r = post(c, f"/console/triage/{one}/promote", csrf, clause="1.8", service_id="svc_acme_mx", reason="")
        assert r.status_code == 409 and "needs a reason" in r.text
        r = post(c, f"/console/triage/{one}/promote", csrf, clause="1.8", service_id="svc_acme_mx",
                 reason="the reporter phoned: a scan")  # fmt: skip
        assert r.status_code == 303 and r.headers["location"].endswith("done=promoted")
        case_page = c.get(r.headers["location"]).text
        assert "Promoted to a case" in case_page and "promoted by alice" in case_page
        r = post(c, f"/console/triage/{two}/release", csrf)
        assert r.status_code == 303 and r.headers["location"] == f"/console/triage/{two}?done=still"
        r = post(c, f"/console/triage/{three}/discard", csrf, reason="")
        assert r.status_code == 409
        r = post(c, f"/console/triage/{three}/discard", csrf, reason="a test mail")
        assert r.status_code == 303
        assert f"/console/triage/{three}" not in c.get("/console/triage").text
    with rt.sessions() as s:
        assert s.get(RawInputRow, three).status == "discarded"  # type: ignore[union-attr]


def test_case_page_and_evidence_viewer(
    runtime: Runtime, settings: Settings, clock: ManualClock, people: People, users: WebUsers
) -> None:
    rt, ref, raw_id = reported_case(runtime, settings, clock)
    from abusedesk.api.app import create_app

    with TestClient(create_app(rt), base_url="http://desk.test") as c:
        sign_in(c, users, "alice")
        page = c.get(f"/console/cases/{ref}").text
        assert "Clause 1.11" in page and "Acme Analytics" in page
        assert f"/console/cases/{ref}/evidence/{raw_id}" in page
        ev = c.get(f"/console/cases/{ref}/evidence/{raw_id}")
        assert ev.status_code == 200
        assert '<th scope="row">Subject</th><td>Abuse report 1</td>' in ev.text
        assert "message/feedback-report" in ev.text and "Clause 1.11" in ev.text
        raw = c.get(f"/console/raw/{raw_id}")
        assert raw.headers["content-disposition"].startswith("attachment")
        assert raw.headers["content-type"] == "application/octet-stream"
        assert raw.content.startswith(b"From: fbl@mailbox.example.net")
        other = quarantined(rt)
        assert c.get(f"/console/cases/{ref}/evidence/{other}").status_code == 404
        assert c.get("/console/cases/AD-0000000000").status_code == 404


@pytest.mark.parametrize("days", ["7", "30", "90"])
def test_dashboard_and_whois_pages(
    client: TestClient, runtime: Runtime, clock: ManualClock, people: People, users: WebUsers, days: str
) -> None:
    from abusedesk.cases.service import CaseService
    from abusedesk.intake.reporters import record_case_outcome

    refs = make_cases(runtime, clock, 2)
    CaseService(runtime).transition(refs[0], "resolved", by=people["alice"], reason="stopped")
    record_case_outcome(runtime, "cert@cert.example.net", True)
    sign_in(client, users, "audrey")  # an auditor reads the dashboard
    page = client.get(f"/console/dashboard?days={days}")
    assert page.status_code == 200
    assert page.text.count('<svg class="chart"') == 4 and "<desc>" in page.text
    assert "clause 1.8: 2" in page.text  # the findings chart states its figures
    assert "cert@cert.example.net: 100 %" in page.text
    assert client.get("/console/dashboard?days=5").status_code == 400
    r = client.get("/console/whois?ip=banana")
    assert r.status_code == 400 and "not an IPv4 or IPv6 address" in r.text
    r = client.get("/console/whois?ip=192.0.2.1&at=2026-03-01T10:00Z")
    assert r.status_code == 200 and "Not ours at that time" in r.text


def test_the_analyst_sees_the_customers_reply_on_the_case_page(
    client: TestClient, runtime: Runtime, clock: ManualClock, people: People, users: WebUsers
) -> None:
    from abusedesk.cases.service import CaseService

    [ref] = make_cases(runtime, clock, 1)
    customer_token(runtime, people, "cindy", "cust-a")
    CaseService(runtime).respond(ref, "reply", "We shut the scanner down at 11:00.", by=people["cindy"])
    sign_in(client, users, "alice")
    page = client.get(f"/console/cases/{ref}").text
    assert "<strong>reply</strong> from the customer: We shut the scanner down at 11:00." in page
    assert "by cindy" in page


def _triage_event(rt: Runtime, **source: str) -> str:
    """A spam event too weak for the reported detector, through the pipeline: it ends in triage; its id."""
    from datetime import UTC, datetime

    from abusedesk.domain.records import Event
    from abusedesk.intake.service import event_row
    from abusedesk.store.tables.intake import EventRow

    weak = Event.create(kind="spam", time=datetime(2026, 3, 1, 9, tzinfo=UTC), feed="test", confidence=0.2, **source)
    with rt.sessions.begin() as s:
        s.add(EventRow(**event_row(weak)))
    rt.bus.publish("events.parsed", {"events": [weak.to_dict()]})
    rt.drain()
    with rt.sessions() as s:
        assert s.get(EventRow, weak.id).disposition == "triage"  # type: ignore[union-attr]
    return weak.id


def test_a_triage_event_is_promoted_from_its_own_page(
    client: TestClient, runtime: Runtime, settings: Settings, clock: ManualClock, people: People, users: WebUsers
) -> None:
    from abusedesk.api.app import create_app
    from abusedesk.store.tables.intake import EventRow
    from tests.support.web import web_users
    from tests.web.console.support import SPAM_IP

    rt, _, _ = reported_case(runtime, settings, clock)  # the inventory: svc_acme_mx holds SPAM_IP
    placed = _triage_event(rt, source_ip=SPAM_IP)  # attribution found its service
    stray = _triage_event(rt)  # it names no subject: attribution found none
    customer_token(runtime, people, "cindy", "cust-a")
    web_users(runtime, people, ["cindy"])
    app = create_app(rt)
    form = {"clause": "1.8", "service_id": "svc_acme_mx", "reason": "spam, says the postmaster"}
    with TestClient(app, base_url="http://desk.test") as cindy:  # a customer reaches neither page nor form
        csrf = sign_in(cindy, users, "cindy")
        assert cindy.get(f"/console/triage/events/{placed}").status_code == 403
        assert post(cindy, f"/console/triage/events/{placed}/promote", csrf, **form).status_code == 403
    with TestClient(app, base_url="http://desk.test") as audrey:  # an auditor reads, is refused the form
        csrf = sign_in(audrey, users, "audrey")
        page = audrey.get(f"/console/triage/events/{placed}")
        assert page.status_code == 200 and "svc_acme_mx" in page.text and "Promote to a case" not in page.text
        assert post(audrey, f"/console/triage/events/{placed}/promote", csrf, **form).status_code == 403
    with TestClient(app, base_url="http://desk.test") as c:
        csrf = sign_in(c, users, "alice")
        assert f"/console/triage/events/{placed}" in c.get("/console/triage").text
        page = c.get(f"/console/triage/events/{stray}")
        assert page.status_code == 200 and "no service of ours found" in page.text and "Promote to a case" in page.text
        r = c.post(f"/console/triage/events/{stray}/promote", data=form, follow_redirects=False)  # no CSRF token
        assert r.status_code == 403
        r = post(c, f"/console/triage/events/{stray}/promote", csrf, clause="1.8", service_id="", reason="spam")
        assert r.status_code == 409 and "name the service" in r.text
        # attribution placed this one: the form may leave the service empty
        r = post(c, f"/console/triage/events/{placed}/promote", csrf, clause="1.8", service_id="", reason="spam")
        assert r.status_code == 303 and r.headers["location"].endswith("done=promoted")
        assert "promoted by alice" in c.get(r.headers["location"]).text
        r = post(c, f"/console/triage/events/{stray}/promote", csrf, **form)
        assert r.status_code == 303
        queue = c.get("/console/triage").text
        assert f"/console/triage/events/{placed}" not in queue and f"/console/triage/events/{stray}" not in queue
        assert c.get("/console/triage/events/nope").status_code == 404
    with rt.sessions() as s:
        assert {s.get(EventRow, i).disposition for i in (placed, stray)} == {"promoted"}  # type: ignore[union-attr]
        cases = s.scalars(select(CaseRow)).all()
        assert {c.service_id for c in cases} == {"svc_acme_mx"}
