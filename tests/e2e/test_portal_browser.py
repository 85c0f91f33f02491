"""In a real browser: the customer signs in, sees its notice, replies, and the analyst sees the reply; an approver
signs in with a TOTP code; axe-core finds no serious accessibility violation on these pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from abusedesk.clock import ManualClock
from abusedesk.runtime import Runtime
from tests.support.identities import People
from tests.support.web import PASSWORD, REPORTER, Desk, portal_desk

pytestmark = pytest.mark.e2e

Shot = Callable[[Any, str], Path]
Axe = Callable[[Any, str], list[dict[str, Any]]]


@pytest.fixture
def desk(runtime: Runtime, people: People, clock: ManualClock) -> Desk:
    return portal_desk(runtime, people, clock)


def _sign_in(page: Any, base: str, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/signin")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_customer_signs_in_sees_its_notice_and_replies(
    page: Any, server: str, desk: Desk, people: People, shot: Shot, axe_check: Axe
) -> None:
    page.goto(f"{server}/portal")
    assert "/signin?next=/portal" in page.url
    shot(page, "signin")
    axe_check(page, "sign-in page")
    page.get_by_label("User name").fill("cora")
    page.get_by_label("Password").fill("not her password at all")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "wrong user name or password"
    axe_check(page, "sign-in page with an error")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server}/portal")
    assert page.get_by_role("heading", level=1).inner_text() == "Cases about your services"
    assert page.get_by_role("link", name=desk.ref_a).is_visible()
    assert page.get_by_role("link", name=desk.ref_b).count() == 0
    shot(page, "portal home")
    axe_check(page, "portal home")

    page.get_by_role("link", name=desk.ref_a).click()
    page.wait_for_url(f"{server}/portal/cases/{desk.ref_a}")
    body = page.locator("main").inner_text()
    assert "Acceptable Use Policy, clause" in body
    assert "a third party" in body and REPORTER not in page.content()
    notice = page.locator("details", has_text=desk.ref_a).first
    notice.locator("summary").click()
    assert desk.ref_a in notice.inner_text()
    shot(page, "portal case")
    axe_check(page, "portal case page")

    page.get_by_label("Your reply (what you found, what you did)").fill("We closed SSH to the world; sorry.")
    page.get_by_role("button", name="Send reply").click()
    page.wait_for_url(f"{server}/portal/cases/{desk.ref_a}?sent=reply#messages")
    assert page.get_by_role("status").inner_text() == "Your reply was sent to the abuse desk."
    assert "We closed SSH to the world" in page.locator("ol.timeline").inner_text()
    shot(page, "portal case after reply")

    # the analyst sees the reply, through the API of the same server
    got = httpx.get(
        f"{server}/api/v1/cases/{desk.ref_a}", headers={"Authorization": f"Bearer {people.tokens['alice']}"}, timeout=10
    )
    messages = got.json()["case"]["messages"]
    assert [(m["kind"], m["author_name"], m["text"]) for m in messages] == [
        ("reply", "cora", "We closed SSH to the world; sorry.")
    ]

    page.get_by_role("link", name="Test consents").click()
    page.wait_for_url(f"{server}/portal/consents")
    shot(page, "portal consents")
    axe_check(page, "portal consents page")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server}/signin")
    page.goto(f"{server}/portal/cases/{desk.ref_a}")
    assert "/signin" in page.url  # the session is over on the server, not only in the browser


def test_approver_signs_in_with_a_totp_code(
    page: Any, server: str, desk: Desk, runtime: Runtime, shot: Shot, axe_check: Axe
) -> None:
    import base64
    import time

    from abusedesk.identity import secondfactor

    _sign_in(page, server, "bob")
    page.wait_for_url(f"{server}/signin/totp?next=/")
    shot(page, "totp")
    axe_check(page, "second factor page")
    secret = desk.users.totp["bob"]
    code = secondfactor.totp_code(base64.b32decode(secret + "=" * (-len(secret) % 8)), time.time())
    page.get_by_label("Code from your authenticator app").fill(code)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(lambda url: "/signin" not in url)
    page.goto(f"{server}/account")
    assert "approver" in page.locator("main").inner_text()
    shot(page, "account")
    axe_check(page, "account page")


def test_portal_works_without_javascript(browser: Any, server: str, desk: Desk, artifacts: Path) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        _sign_in(page, server, "cora")
        page.wait_for_url(f"{server}/portal")
        page.goto(f"{server}/portal/cases/{desk.ref_a}")
        page.get_by_role("button", name="Acknowledge: we have seen this").click()
        page.wait_for_url(f"{server}/portal/cases/{desk.ref_a}?sent=acknowledge#messages")
        assert page.get_by_role("status").inner_text() == "You acknowledged this case."
        page.screenshot(path=str(artifacts / "no-js-acknowledged.png"), full_page=True)
    finally:
        context.close()
