"""Sign-in, sessions, TOTP and CSRF of the console, tried as a browser and as an attacker would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from abusedesk.clock import ManualClock
from abusedesk.identity.service import IdentityService
from abusedesk.identity.sessions import WebSessionService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.evidence import AuditRow
from abusedesk.store.tables.identity import UserRow, WebSessionRow
from tests.api.testclient import TestClient
from tests.support.identities import People
from tests.support.web import PASSWORD, WebUsers, csrf_of, sign_in


def _signin_form(client: TestClient) -> str:
    return csrf_of(client.get("/signin").text)


def _post_signin(client: TestClient, name: str, password: str, **extra: str) -> object:
    data = {"name": name, "password": password, "csrf_token": _signin_form(client)} | extra
    return client.post("/signin", data=data, follow_redirects=False)


def test_pages_redirect_to_signin_and_back(client: TestClient, users: WebUsers) -> None:
    r = client.get("/account?x=1", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/signin?next=/account%3Fx%3D1"
    # htmx asks for a redirect header, not a 303 it would swap into the page
    r = client.get("/account", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.headers["HX-Redirect"].startswith("/signin?next=/account")
    r = _post_signin(client, "alice", PASSWORD, next="/account")
    assert r.status_code == 303 and r.headers["location"] == "/account"
    page = client.get("/account")
    assert page.status_code == 200 and "alice" in page.text and "analyst" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_session_cookie_flags_and_fresh_id(client: TestClient, users: WebUsers, runtime: Runtime) -> None:
    client.cookies.set("abusedesk_session", "planted-by-an-attacker")
    r = _post_signin(client, "alice", PASSWORD)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in this test: a Secure cookie would never come back
    token = r.cookies["abusedesk_session"]
    assert token != "planted-by-an-attacker" and len(token) >= 40
    with runtime.sessions() as s:
        rows = list(s.scalars(select(WebSessionRow)))
    assert [r.id for r in rows] == [IdentityService(runtime).digest(token)]  # only the keyed hash is kept


def test_secure_cookie_over_tls(runtime: Runtime, users: WebUsers) -> None:
    from abusedesk.api.app import create_app

    with TestClient(create_app(runtime), base_url="https://desk.test") as c:
        r = _post_signin(c, "alice", PASSWORD)
        assert "Secure" in r.headers["set-cookie"]


def test_wrong_password_unknown_user_and_disabled_user_read_alike(
    client: TestClient, users: WebUsers, runtime: Runtime, people: People
) -> None:
    IdentityService(runtime).disable_user(people["root"], "audrey")
    answers = [
        _post_signin(client, "alice", "not the password at all"),
        _post_signin(client, "nobody-here", PASSWORD),
        _post_signin(client, "audrey", PASSWORD),
    ]
    for r in answers:
        assert r.status_code == 401
        assert "wrong user name or password" in r.text
        assert "abusedesk_session" not in r.headers.get("set-cookie", "")


def test_signin_form_needs_its_own_token(client: TestClient, users: WebUsers) -> None:
    """Login CSRF: a post without the form's token (or with another browser's) signs nobody in."""
    r = client.post("/signin", data={"name": "alice", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    with TestClient(client.app, base_url="http://desk.test") as other:
        token = _signin_form(other)
    r = client.post(
        "/signin", data={"name": "alice", "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 403 and "abusedesk_session" not in r.headers.get("set-cookie", "")


def test_next_is_never_another_site(client: TestClient, users: WebUsers) -> None:
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        client.cookies.clear()
        r = _post_signin(client, "alice", PASSWORD, next=evil)
        assert r.headers["location"] == "/", evil


def test_signout_needs_csrf_and_ends_the_session(client: TestClient, users: WebUsers, runtime: Runtime) -> None:
    token = sign_in(client, users, "alice")
    assert client.post("/signout", follow_redirects=False).status_code == 403  # no token
    assert client.post("/signout", data={"csrf_token": "x" * 43}, follow_redirects=False).status_code == 403
    r = client.post(
        "/signout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}, follow_redirects=False
    )
    assert r.status_code == 403 and "evil.example" in r.text
    assert client.get("/account", follow_redirects=False).status_code == 200  # still signed in
    r = client.post("/signout", headers={"X-CSRF-Token": token}, follow_redirects=False)  # as htmx sends it
    assert r.status_code == 303
    assert client.get("/account", follow_redirects=False).status_code == 303
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(WebSessionRow)) == 0
        actions = list(s.scalars(select(AuditRow.action).where(AuditRow.action.like("session.%"))))
    assert actions == ["session.signed_in", "session.signed_out"]


def test_idle_and_absolute_expiry(client: TestClient, users: WebUsers, clock: ManualClock) -> None:
    sign_in(client, users, "alice")
    clock.advance(timedelta(minutes=29))
    assert client.get("/account", follow_redirects=False).status_code == 200  # use keeps it alive
    clock.advance(timedelta(minutes=29))
    assert client.get("/account", follow_redirects=False).status_code == 200
    clock.advance(timedelta(minutes=31))  # idle past 30 minutes
    assert client.get("/account", follow_redirects=False).status_code == 303
    sign_in(client, users, "alice")
    for _ in range(12 * 4):  # busy all along, yet over 12 hours after sign-in
        clock.advance(timedelta(minutes=15))
        status = client.get("/account", follow_redirects=False).status_code
    assert status == 303


def test_approver_must_give_a_totp_code(
    client: TestClient, users: WebUsers, runtime: Runtime, clock: ManualClock
) -> None:
    r = _post_signin(client, "bob", PASSWORD, next="/account")
    assert r.status_code == 303 and r.headers["location"] == "/signin/totp?next=/account"
    # the password alone opens no page
    assert client.get("/account", follow_redirects=False).headers["location"].startswith("/signin")
    page = client.get("/signin/totp?next=/account")
    token = csrf_of(page.text)
    r = client.post("/signin/totp", data={"code": "000000", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 401 and "not right" in r.text
    pending = client.cookies["abusedesk_session"]
    code = users.code("bob")
    r = client.post(
        "/signin/totp", data={"code": code, "csrf_token": token, "next": "/account"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert client.cookies["abusedesk_session"] != pending  # a new session id at the second step too
    assert client.get("/account").status_code == 200
    # the same code cannot be used again (a code seen over a shoulder), in another browser
    with TestClient(client.app, base_url="http://desk.test") as other:
        _post_signin(other, "bob", PASSWORD)
        token = csrf_of(other.get("/signin/totp").text)
        r = other.post("/signin/totp", data={"code": code, "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 401
        clock.advance(timedelta(seconds=30))
        r = other.post("/signin/totp", data={"code": users.code("bob"), "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303


def test_approver_without_second_factor_is_refused(
    client: TestClient, users: WebUsers, runtime: Runtime, people: People
) -> None:
    with runtime.sessions() as s, s.begin():
        s.get(UserRow, people["carol"].id).totp_secret = None  # type: ignore[union-attr]
    r = _post_signin(client, "carol", PASSWORD)
    assert r.status_code == 409 and "abusedesk user totp carol" in r.text


def test_totp_secret_is_sealed_in_the_table(users: WebUsers, runtime: Runtime, people: People) -> None:
    with runtime.sessions() as s:
        sealed = s.get(UserRow, people["bob"].id).totp_secret  # type: ignore[union-attr]
    assert sealed and users.totp["bob"] not in sealed


def test_password_change_ends_sessions(client: TestClient, users: WebUsers, runtime: Runtime, people: People) -> None:
    sign_in(client, users, "alice")
    data = IdentityService(runtime).set_password(people["root"], "alice", "another long password")
    assert data["sessions_ended"] == 1
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_passwords_are_argon2id_and_rules_hold(users: WebUsers, runtime: Runtime, people: People) -> None:
    from abusedesk.domain.errors import Conflict, Forbidden

    with runtime.sessions() as s:
        stored = s.get(UserRow, people["alice"].id).password_hash  # type: ignore[union-attr]
    assert stored and stored.startswith("$argon2id$") and PASSWORD not in stored
    ident = IdentityService(runtime)
    with pytest.raises(Conflict, match="at least 12"):
        ident.set_password(people["root"], "alice", "short")
    with pytest.raises(Forbidden):  # an analyst sets no one else's password
        ident.set_password(people["alice"], "bob", "a long enough password")
    ident.set_password(people["alice"], "alice", "her own new password")  # but her own


def test_signin_attempts_are_rate_limited(client: TestClient, users: WebUsers, runtime: Runtime) -> None:
    runtime.settings.web.signin_burst = 3  # read when the limiter is first built, on the first attempt
    statuses = [_post_signin(client, "alice", "wrong wrong wrong").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    r = _post_signin(client, "alice", PASSWORD)  # even the right password waits now
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_signin_limit_per_user_name_spans_addresses(runtime: Runtime, users: WebUsers) -> None:
    """Guessing one user's password from many addresses hits the per-name bucket."""
    from abusedesk.api.app import create_app

    runtime.settings.web.signin_burst = 3
    app = create_app(runtime)
    statuses = []
    for i in range(4):
        with TestClient(app, base_url="http://desk.test", client=(f"198.51.100.{i}", 5000)) as c:
            statuses.append(_post_signin(c, "alice", "wrong wrong wrong").status_code)
    assert statuses == [401, 401, 401, 429]


def test_service_purges_expired_sessions(runtime: Runtime, users: WebUsers, clock: ManualClock) -> None:
    service = WebSessionService(runtime)
    service.sign_in("alice", PASSWORD)
    clock.advance(timedelta(hours=13))
    assert service.purge() == 1
    service.sign_in("alice", PASSWORD)
    clock.advance(timedelta(hours=13))
    service.sign_in("alice", PASSWORD)  # a sign-in clears what expired
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(WebSessionRow)) == 1


def test_errors_are_pages_for_browsers_and_problems_for_scripts(client: TestClient, users: WebUsers) -> None:
    r = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in r.text
    r = client.get("/no/such/page")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = client.get("/api/v1/cases", headers={"Accept": "text/html"})  # the API answers JSON whatever is asked
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"


def test_totp_roles_must_be_roles() -> None:
    from abusedesk.config import WebSettings

    with pytest.raises(ValueError, match="'aprover' are not roles"):
        WebSettings(totp_roles=["aprover"])
