"""Real users with real API tokens for tests: each principal comes from authenticating its token."""

from __future__ import annotations

from dataclasses import dataclass

from abusedesk.domain.identity import Principal
from abusedesk.identity.service import IdentityService
from abusedesk.runtime import Runtime

#: name -> (role, customer); customers need their customer in the inventory (see :func:`ensure_customers`)
STAFF = {"root": "admin", "alice": "analyst", "bob": "approver", "carol": "approver", "audrey": "auditor"}


@dataclass
class People:
    """Principals by name, and the token each one authenticated with."""

    by_name: dict[str, Principal]
    tokens: dict[str, str]

    def __getitem__(self, name: str) -> Principal:
        return self.by_name[name]


def ensure_customers(rt: Runtime, *ids: str) -> None:
    from abusedesk.store.tables.inventory import CustomerRow

    with rt.sessions() as s, s.begin():
        for cid in ids:
            if s.get(CustomerRow, cid) is None:
                s.add(CustomerRow(id=cid, name=cid, contact_email=f"abuse@{cid}.example"))


def make_people(rt: Runtime, customers: dict[str, str] | None = None) -> People:
    """The staff of :data:`STAFF` plus customer users (name -> customer id), each with a token."""
    ident = IdentityService(rt)
    _, root_token = ident.bootstrap("root")
    root = ident.authenticate(root_token.token)
    tokens = {"root": root_token.token}
    if customers:
        ensure_customers(rt, *customers.values())
    for name, role in STAFF.items():
        if name != "root":
            ident.add_user(root, name, role)
    for name, cid in (customers or {}).items():
        ident.add_user(root, name, "customer", cid)
    for name in [*STAFF, *(customers or {})]:
        # ten years: the CLI runs on the real clock, the tests' clock is in 2026
        tokens[name] = ident.create_token(root, name, days=3650).token
    return People({n: ident.authenticate(t) for n, t in tokens.items()}, tokens)


def people_of(rt: Runtime) -> People:
    """The :func:`make_people` of ``rt``, made on first use (for helpers that get only the runtime)."""
    made: People | None = getattr(rt, "_test_people", None)
    if made is None:
        made = make_people(rt)
        rt._test_people = made  # type: ignore[attr-defined]
    return made


def customer_token(rt: Runtime, people: People, name: str, customer_id: str) -> str:
    """A customer's user (its customer made if missing) with a token; returns the token."""
    ensure_customers(rt, customer_id)
    ident = IdentityService(rt)
    ident.add_user(people["root"], name, "customer", customer_id)
    token = ident.create_token(people["root"], name, days=3650).token
    people.tokens[name] = token
    people.by_name[name] = ident.authenticate(token)
    return token
