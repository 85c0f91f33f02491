"""Helpers for page tests: sign a TestClient in through the real sign-in form, read a page's CSRF token.

``web_users(rt, people)`` gives the staff of ``tests.support.identities`` console passwords (and TOTP secrets for
the roles that need one); ``sign_in(client, name)`` then signs in as a browser would and returns the session's
CSRF token, to send with form posts (``data={"csrf_token": token, ...}``).
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from abusedesk.actions.runner import ActionRunner, NoticeDispatcher
from abusedesk.actions.smtp import EmailNotifyAction
from abusedesk.cases.engine import CaseEngine
from abusedesk.clock import ManualClock
from abusedesk.identity import secondfactor
from abusedesk.identity.service import IdentityService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import CaseRow
from tests.actions.support import seed_inventory, smtp_server
from tests.cases.support import finding
from tests.support.identities import People, customer_token

REPORTER = "cert@cert.example.net"
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class WebUsers:
    """Console passwords (one for all) and TOTP secrets (base32) by user name."""

    rt: Runtime
    password: str = PASSWORD
    totp: dict[str, str] = field(default_factory=dict)

    def code(self, name: str) -> str:
        secret = base64.b32decode(self.totp[name] + "=" * (-len(self.totp[name]) % 8))
        return secondfactor.totp_code(secret, self.rt.clock.now().timestamp())


@functools.cache
def _password_hash() -> str:
    """One argon2id hash of :data:`PASSWORD` per test process (a hash costs ~0.1-0.5 s on a loaded machine;
    ``IdentityService.set_password`` itself is tested in tests/web/test_signin.py)."""
    return secondfactor.hash_password(PASSWORD)


def web_users(rt: Runtime, people: People, names: list[str] | None = None) -> WebUsers:
    from abusedesk.store.tables.identity import UserRow

    ident = IdentityService(rt)
    out = WebUsers(rt)
    for name in names or list(people.by_name):
        with rt.sessions() as s, s.begin():
            row = s.get(UserRow, people[name].id)
            assert row is not None
            row.password_hash = _password_hash()
        if people[name].role.value in rt.settings.web.totp_roles:
            out.totp[name] = ident.enrol_totp(people["root"], name)["secret"]
    return out


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no csrf_token field"
    return found.group(1)


def sign_in(client: Any, users: WebUsers, name: str, *, next_path: str = "/") -> str:
    """Sign ``name`` in through the forms (password, then TOTP where owed); returns the session's CSRF token."""
    page = client.get("/signin")
    assert page.status_code == 200, page.text
    r = client.post(
        "/signin",
        data={"name": name, "password": users.password, "csrf_token": csrf_of(page.text), "next": next_path},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    if r.headers["location"].startswith("/signin/totp"):
        page = client.get(r.headers["location"])
        r = client.post(
            "/signin/totp",
            data={"code": users.code(name), "csrf_token": csrf_of(page.text), "next": next_path},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    return csrf_of(client.get("/account").text)


@dataclass
class Desk:
    users: WebUsers
    ref_a: str  # cust-a's case (cora's)
    ref_b: str  # cust-b's case (dave's)
    id_b: str


def _finding(rt: Runtime, customer: str, service: str, minute: int) -> object:
    facts = {"reporter": REPORTER, "source": "192.0.2.10", "target": "198.51.100.7", "target_port": 22,
             "transport": "tcp", "count": 1500, "count_unit": "attempts"}  # fmt: skip
    return finding(
        rt.policy, minute, kind="brute-force", key=f"ip:192.0.2.{10 + minute}", customer=customer, service=service,
        evidence=({"reporter": REPORTER, "facts": facts},),
    )  # fmt: skip


def portal_desk(runtime: Runtime, people: People, clock: ManualClock) -> Desk:
    """Customers cust-a (user cora) and cust-b (user dave), each with a brute-force case reported by a CERT and a
    notice sent by SMTP; every test person with the console password (tests/web, tests/e2e)."""
    seed_inventory(runtime)
    customer_token(runtime, people, "cora", "cust-a")
    customer_token(runtime, people, "dave", "cust-b")
    opened = (
        CaseEngine(runtime)
        .ingest(
            [_finding(runtime, "cust-a", "svc-a1", 0), _finding(runtime, "cust-b", "svc-b1", 1)]  # type: ignore[list-item]
        )
        .opened
    )
    with runtime.sessions() as s:
        rows = {c.customer_id: c for c in s.scalars(select(CaseRow).where(CaseRow.ref.in_(opened)))}
    with smtp_server() as smtp:
        ActionRunner(runtime).run_pending()
        clock.advance(timedelta(hours=2))
        mailer = EmailNotifyAction(EmailNotifyAction.Params(host="127.0.0.1", port=smtp.port, timeout=5))
        sent = NoticeDispatcher(runtime, mailer).send_due()
        assert sent and all(r.ok for r in sent)
    return Desk(web_users(runtime, people), rows["cust-a"].ref, rows["cust-b"].ref, rows["cust-b"].id)
