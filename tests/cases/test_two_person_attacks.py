"""Attempts to break the two-person rule (issue 10): spellings, self-approval, direct moves, service accounts."""

from __future__ import annotations

import pytest

from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.service import CaseService
from abusedesk.domain.actions import ASSERTED_STATES
from abusedesk.domain.errors import Conflict, Forbidden, Unauthenticated
from abusedesk.domain.identity import ENGINE, SCHEDULER, SERVICE_ACCOUNTS, Principal, Role
from abusedesk.identity.service import IdentityService
from abusedesk.runtime import Runtime
from tests.cases.support import finding
from tests.support.identities import People


@pytest.fixture
def ref(runtime: Runtime) -> str:
    return CaseEngine(runtime).ingest([finding(runtime.policy, 0)]).opened[0]


@pytest.mark.parametrize("spelling", ["Bob", "BOB", " bob", "bob ", "\u0392ob", "ｂｏｂ"])
def test_another_spelling_of_a_user_is_not_another_user(runtime: Runtime, people: People, spelling: str) -> None:
    ident = IdentityService(runtime)
    if spelling == "\u0392ob":  # a Greek capital beta: a different name, not a spelling of bob; still one user
        ident.add_user(people["root"], spelling, "approver")
        return
    with pytest.raises(Conflict, match="exists already"):
        ident.add_user(people["root"], spelling, "approver")


def test_proposer_never_approves_own_action_with_any_token(runtime: Runtime, ref: str, people: People) -> None:
    svc, ident = CaseService(runtime), IdentityService(runtime)
    proposed = svc.propose(ref, "suspend-service", by=people["bob"], reason="scanning goes on")
    second_token = ident.create_token(people["root"], "BOB ").token  # another token of the same user
    again = ident.authenticate(second_token)
    assert again.id == people["bob"].id
    with pytest.raises(Forbidden, match="two-person rule"):
        svc.approve(proposed["id"], by=again)
    forged = Principal(id=people["bob"].id, name="robert", role=Role.ADMIN)  # a name is not an identity
    with pytest.raises(Forbidden, match="two-person rule"):
        svc.approve(proposed["id"], by=forged)


@pytest.mark.parametrize("state", sorted(s.value for s in ASSERTED_STATES))
def test_asserting_states_are_not_reachable_by_hand(runtime: Runtime, ref: str, people: People, state: str) -> None:
    svc = CaseService(runtime)
    svc.transition(ref, "escalated", by=people["alice"], reason="still scanning")
    for who in ("alice", "bob", "root"):
        with pytest.raises((Forbidden, Conflict)) as err:
            svc.transition(ref, state, by=people[who], reason="because")
        if state != "reinstated":  # escalated -> reinstated is no move at all (Conflict); the others are refused
            assert isinstance(err.value, Forbidden)
            assert "carried out" in err.value.message
    assert svc.get(ref, people["alice"])["state"] == "escalated"


@pytest.mark.parametrize("account", sorted(SERVICE_ACCOUNTS))
def test_service_accounts_cannot_propose_or_approve_or_get_tokens(
    runtime: Runtime, ref: str, people: People, account: str
) -> None:
    svc, ident = CaseService(runtime), IdentityService(runtime)
    proposed = svc.propose(ref, "suspend-service", by=people["alice"], reason="x")
    machine = SERVICE_ACCOUNTS[account]
    with pytest.raises(Forbidden):
        svc.approve(proposed["id"], by=machine)
    with pytest.raises(Forbidden):
        svc.propose(ref, "report-officials", by=machine, reason="x")
    name = account.removeprefix("svc:")
    for taken in (account, f"svc:{name.upper()}"):
        with pytest.raises(Conflict, match="reserved"):
            ident.add_user(people["root"], taken, "admin")
    with pytest.raises(Unauthenticated):
        ident.authenticate(account)


def test_the_role_a_playbook_step_asks_for_is_enforced(runtime: Runtime, ref: str, people: People) -> None:
    svc = CaseService(runtime)
    proposed = svc.propose(ref, "disable-data-access", by=people["alice"], reason="x")
    with runtime.sessions() as s, s.begin():
        from abusedesk.store.tables.cases import ActionRow

        row = s.get(ActionRow, proposed["id"])
        assert row is not None
        row.payload = {**row.payload, "approver_role": "admin"}  # as a step with ``role: admin`` writes it
    with pytest.raises(Forbidden, match="must be approved by an admin"):
        svc.approve(proposed["id"], by=people["bob"])
    assert svc.approve(proposed["id"], by=people["root"])["status"] == "pending"


def test_roles_without_the_capability_are_refused(runtime: Runtime, ref: str, people: People) -> None:
    svc = CaseService(runtime)
    with pytest.raises(Forbidden, match=r"may not action\.propose"):
        svc.propose(ref, "notify", by=people["audrey"], reason="x")  # an auditor changes nothing
    ident = IdentityService(runtime)
    read_only = ident.authenticate(ident.create_token(people["root"], "bob", scopes=("read",)).token)
    with pytest.raises(Forbidden, match="read scope"):
        svc.transition(ref, "escalated", by=read_only, reason="x")
    assert svc.get(ref, read_only)["ref"] == ref


def test_tokens_expire_revoke_and_die_with_their_user(runtime: Runtime, people: People, clock) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    ident = IdentityService(runtime)
    new = ident.create_token(people["root"], "alice", days=1)
    assert ident.authenticate(new.token).id == people["alice"].id
    with runtime.sessions() as s:
        from abusedesk.store.tables.identity import ApiTokenRow

        stored = s.get(ApiTokenRow, new.id)
        assert stored is not None and new.token not in stored.digest and len(stored.digest) == 64
    clock.advance(timedelta(days=1, seconds=1))
    with pytest.raises(Unauthenticated, match="expired"):
        ident.authenticate(new.token)
    other = ident.create_token(people["root"], "alice")
    ident.revoke_token(people["root"], other.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        ident.authenticate(other.token)
    ident.disable_user(people["root"], "alice")
    with pytest.raises(Unauthenticated, match="disabled"):
        ident.authenticate(people.tokens["alice"])
    with pytest.raises(Unauthenticated):
        ident.authenticate(people.tokens["alice"][:-1] + "x")
    with pytest.raises(Conflict, match="an admin exists"):
        ident.bootstrap("mallory")


def test_audit_entries_of_people_name_user_ids(runtime: Runtime, ref: str, people: People) -> None:
    from sqlalchemy import select

    from abusedesk.evidence.audit import AuditRow

    CaseService(runtime).note(ref, "looked at it", by=people["alice"])
    with runtime.sessions() as s:
        actors = set(s.scalars(select(AuditRow.actor)))
    assert people["alice"].id in actors
    people_ids = {p.id for p in people.by_name.values()}
    machine = {ENGINE.id, SCHEDULER.id}
    assert all(
        a in people_ids or a in machine or a.startswith(("svc:", "stage:", "channel:")) or a == "bootstrap"
        for a in actors
    )
