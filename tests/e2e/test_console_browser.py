"""In a real browser (issue 11 item 6, the analyst's side): an analyst signs in, triages a quarantined input into a
case, proposes a suspension; an approver signs in with a TOTP code and approves it; the proposer could not. axe-core
finds no serious violation on the queue, the case page, triage and the dashboard; the queue works without
JavaScript."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from abusedesk.identity import secondfactor
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseRow
from tests.pipeline.spine import add_inventory
from tests.support.identities import People
from tests.support.web import PASSWORD, WebUsers, portal_desk, web_users
from tests.web.console.support import make_cases, quarantined

pytestmark = pytest.mark.e2e

Shot = Callable[[Any, str], Path]
Axe = Callable[[Any, str], list[dict[str, Any]]]

#: a report no parser reads: it waits in quarantine for a person
ODD_REPORT = b"\x00\x01\x02 scan from 198.51.100.25 against our honeypot, 03:10 UTC \xff\xfe"


@pytest.fixture
def desk(runtime: Runtime, people: People) -> tuple[WebUsers, str]:
    """The small inventory (Acme's svc_acme_mx holds 198.51.100.0/27), a quarantined input, console passwords."""
    add_inventory(runtime)
    raw_id = quarantined(runtime, ODD_REPORT)
    return web_users(runtime, people), raw_id


def sign_in(page: Any, base: str, name: str, users: WebUsers, *, home: str = "/console") -> None:
    page.goto(f"{base}{home}")
    assert f"/signin?next={home}" in page.url
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if name in users.totp:
        page.wait_for_url(lambda url: "/signin/totp" in url)
        secret = users.totp[name]
        code = secondfactor.totp_code(base64.b32decode(secret + "=" * (-len(secret) % 8)), time.time())
        page.get_by_label("Code from your authenticator app").fill(code)
        page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{base}{home}")


def sign_out(page: Any, base: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/signin")


def triage_and_propose(page: Any, server: str, raw_id: str, service_id: str, shot: Shot, axe_check: Axe) -> str:
    """As the signed-in analyst: promote the quarantined input to a case of clause 1.8 against ``service_id`` and
    propose a suspension; the case's reference."""
    shot(page, "queue, empty")
    axe_check(page, "case queue")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Triage").click()
    page.wait_for_url(f"{server}/console/triage")
    shot(page, "triage")
    axe_check(page, "triage queue")
    page.get_by_role("link", name=f"input {raw_id[:12]}…").click()
    page.wait_for_url(f"{server}/console/triage/{raw_id}")
    assert "scan from 198.51.100.25" in page.locator("pre").inner_text()
    shot(page, "quarantined input")
    axe_check(page, "quarantined input")

    page.get_by_label("Clause").select_option("1.8")
    page.get_by_label("Service id").fill(service_id)
    page.locator("#pr-reason").fill("honeypot operator confirmed by phone: a scan from our VM")
    page.get_by_role("button", name="Promote").click()
    page.wait_for_url(lambda url: "/console/cases/AD-" in url and "done=promoted" in url)
    ref = page.url.split("/console/cases/", 1)[1].split("?", 1)[0]
    assert page.get_by_role("status").inner_text() == "Promoted to a case."
    assert "promoted by alice" in page.locator("ol.timeline").inner_text()
    shot(page, "case after promotion")
    axe_check(page, "case page")

    page.get_by_label("Action", exact=True).select_option("suspend-service")
    page.locator("#p-reason").fill("the scan goes on after the request to cease")
    page.get_by_role("button", name="Propose").click()
    page.wait_for_url(f"{server}/console/cases/{ref}?done=proposed")
    assert "your proposal: another person approves it" in page.locator("main").inner_text()
    assert page.get_by_role("button", name="Approve suspend-service").count() == 0
    shot(page, "case with the proposal")
    return ref


def approve_with_totp(page: Any, server: str, ref: str, users: WebUsers, shot: Shot, axe_check: Axe) -> None:
    sign_in(page, server, "bob", users)  # an approver: password, then the TOTP code
    page.get_by_role("link", name=ref).click()
    page.wait_for_url(f"{server}/console/cases/{ref}")
    page.locator("form[action$='/approve'] input[name=reason]").fill("flows checked: the scan continues")
    page.get_by_role("button", name="Approve suspend-service").click()
    page.wait_for_url(f"{server}/console/cases/{ref}?done=approved")
    assert page.get_by_role("status").inner_text() == "Approved."
    shot(page, "case after approval")
    axe_check(page, "case page after approval")


def assert_approved(runtime: Runtime, people: People, ref: str) -> None:
    with runtime.sessions() as s:
        case_id = s.scalar(select(CaseRow.id).where(CaseRow.ref == ref))
        action = s.scalars(
            select(ActionRow).where(ActionRow.case_id == case_id, ActionRow.kind == "suspend-service")
        ).one()
    assert action.proposed_by == people["alice"].id and action.approved_by == people["bob"].id
    assert action.status in ("pending", "running", "done")  # the server's runner may have carried it out


def test_analyst_triages_and_proposes_an_approver_approves_with_totp(
    page: Any, server: str, desk: tuple[WebUsers, str], runtime: Runtime, people: People, shot: Shot, axe_check: Axe
) -> None:
    users, raw_id = desk
    sign_in(page, server, "alice", users)
    ref = triage_and_propose(page, server, raw_id, "svc_acme_mx", shot, axe_check)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(f"{server}/console/dashboard")
    assert page.locator("svg.chart").count() >= 2
    shot(page, "dashboard")
    axe_check(page, "dashboard")
    sign_out(page, server)

    approve_with_totp(page, server, ref, users, shot, axe_check)
    assert_approved(runtime, people, ref)


def test_the_whole_flow_analyst_approver_customer_and_back(
    page: Any, server: str, runtime: Runtime, people: People, clock: Any, shot: Shot, axe_check: Axe
) -> None:
    """Item 6 end to end: the analyst triages and proposes, the approver approves with TOTP, the customer signs in,
    reads its notice and replies, and the analyst sees the reply on the console's case page."""
    desk = portal_desk(runtime, people, clock)  # cust-a (cora) has a case with a notice sent by SMTP
    raw_id = quarantined(runtime, ODD_REPORT)
    sign_in(page, server, "alice", desk.users)
    ref = triage_and_propose(page, server, raw_id, "svc-a1", shot, axe_check)
    sign_out(page, server)
    approve_with_totp(page, server, ref, desk.users, shot, axe_check)
    assert_approved(runtime, people, ref)
    sign_out(page, server)

    sign_in(page, server, "cora", desk.users, home="/portal")
    page.get_by_role("link", name=desk.ref_a).click()
    page.wait_for_url(f"{server}/portal/cases/{desk.ref_a}")
    notice = page.locator("details", has_text=desk.ref_a).first
    notice.locator("summary").click()
    assert desk.ref_a in notice.inner_text()
    page.get_by_label("Your reply (what you found, what you did)").fill("We closed SSH to the world; sorry.")
    page.get_by_role("button", name="Send reply").click()
    page.wait_for_url(f"{server}/portal/cases/{desk.ref_a}?sent=reply#messages")
    shot(page, "customer replied")
    sign_out(page, server)

    sign_in(page, server, "alice", desk.users)
    page.goto(f"{server}/console/cases/{desk.ref_a}")
    timeline = page.locator("ol.timeline").inner_text()
    assert "reply from the customer: We closed SSH to the world; sorry." in timeline
    assert "by cora" in timeline
    shot(page, "analyst sees the reply")
    axe_check(page, "case page with the customer's reply")


def test_queue_filters_and_pages_without_javascript(
    browser: Any, server: str, runtime: Runtime, people: People, clock: Any, artifacts: Path
) -> None:
    users = web_users(runtime, people, ["alice"])
    refs = make_cases(runtime, clock, 4)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        sign_in(page, server, "alice", users)
        page.get_by_label("Sort").select_option("opened")
        page.get_by_role("button", name="Apply", exact=True).click()
        page.wait_for_url(lambda url: "sort=opened" in url)
        shown = [a.inner_text() for a in page.locator("table.queue tbody a").all()]
        assert shown == refs
        page.get_by_label(f"Select {refs[0]}").check()
        page.get_by_label(f"Select {refs[1]}").check()
        page.get_by_label("What to do", exact=True).select_option("note:")
        page.get_by_label("Reason (or note)").fill("checked both with the customer")
        page.get_by_role("button", name="Apply to the selection").click()
        results = page.get_by_role("region", name="Result of the mass action").inner_text()
        assert results.count("note") == 2 and refs[0] in results and refs[1] in results
        page.screenshot(path=str(artifacts / "queue-without-js.png"), full_page=True)
    finally:
        context.close()
