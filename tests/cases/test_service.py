"""Analysts' operations: transitions (legal and not), two-person approvals, notes, the timeline, listing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.service import CaseService
from abusedesk.domain.errors import Conflict, Forbidden, NotFound
from abusedesk.evidence import audit
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow
from tests.cases.support import finding


@pytest.fixture
def ref(runtime: Runtime) -> str:
    report = CaseEngine(runtime).ingest([finding(runtime.policy, 0)])
    return report.opened[0]


def test_illegal_transition_refused_naming_allowed_targets(runtime: Runtime, ref: str) -> None:
    svc = CaseService(runtime)
    with pytest.raises(Conflict) as err:
        svc.transition(ref, "reinstated", actor="alice", reason="x")
    msg = err.value.message
    assert f"case {ref} cannot move from 'awaiting-customer' to 'reinstated'" in msg
    assert "notified, resolved, escalated, dismissed, appealed" in msg
    assert svc.get(ref)["state"] == "awaiting-customer"  # nothing changed


def test_dismiss_needs_reason_and_is_recorded(runtime: Runtime, ref: str, clock) -> None:  # type: ignore[no-untyped-def]
    svc = CaseService(runtime)
    with pytest.raises(Conflict, match="without a reason"):
        svc.transition(ref, "dismissed", actor="alice")
    clock.advance(timedelta(minutes=5))
    out = svc.transition(ref, "dismissed", actor="alice", reason="reporter confused victim and attacker")
    assert out["state"] == "dismissed"
    assert out["closed_at"] == "2026-03-01T10:05:00Z"
    last = svc.get(ref)["timeline"][-1]
    assert (last["type"], last["actor"], last["to"]) == ("transition", "alice", "dismissed")
    assert last["text"] == "reporter confused victim and attacker"
    with runtime.sessions() as s:
        row = s.scalars(select(audit.AuditRow).order_by(audit.AuditRow.seq.desc())).first()
        assert row is not None
        assert (row.actor, row.action, row.payload["to"]) == ("alice", "case.transition", "dismissed")


def test_two_person_rule(runtime: Runtime, ref: str) -> None:
    svc = CaseService(runtime)
    proposed = svc.propose(ref, "suspend-service", actor="alice", reason="scanning goes on")
    assert proposed["status"] == "proposed"
    assert proposed["case_state"] == "escalated"
    with pytest.raises(Forbidden, match=r"alice proposed action .* a different person must approve it"):
        svc.approve(proposed["id"], actor="alice")
    with pytest.raises(Forbidden, match="the system"):
        svc.approve(proposed["id"], actor="engine")
    done = svc.approve(proposed["id"], actor="bob")
    assert (done["status"], done["approved_by"], done["approvals_missing"]) == ("pending", "bob", 0)
    assert done["case_state"] == "restricted"
    with pytest.raises(Conflict, match="is pending, not proposed"):
        svc.approve(proposed["id"], actor="carol")
    with runtime.sessions() as s:
        action = s.get(ActionRow, proposed["id"])
        assert action is not None
        assert action.payload["cites"] == ["1.8", "3"]
    reinstated = svc.propose(ref, "reinstate", actor="carol", reason="customer removed the scanner")
    assert (reinstated["status"], reinstated["case_state"]) == ("pending", "reinstated")
    assert svc.transition(ref, "closed", actor="carol")["state"] == "closed"
    with runtime.sessions() as s:
        assert audit.verify(s).ok  # engine batch entries and analysts' single entries form one chain


def test_engine_proposal_needs_two_people(runtime: Runtime) -> None:
    p = runtime.policy
    CaseEngine(runtime).ingest([finding(p, i, key="ip:192.0.2.30") for i in range(10)])  # critical: propose
    svc = CaseService(runtime)
    [case] = svc.list(state="escalated")
    [proposal] = [a for a in svc.get(case["ref"])["actions"] if a["status"] == "proposed"]
    first = svc.approve(proposal["id"], actor="alice")
    assert (first["status"], first["approvals_missing"]) == ("proposed", 1)
    with pytest.raises(Forbidden, match="already approved"):
        svc.approve(proposal["id"], actor="alice")
    second = svc.approve(proposal["id"], actor="bob")
    assert (second["status"], second["case_state"]) == ("pending", "restricted")


def test_report_to_officials_moves_case_to_reported(runtime: Runtime, ref: str) -> None:
    svc = CaseService(runtime)
    a = svc.propose(ref, "report-officials", actor="alice", reason="phishing kit")
    assert svc.approve(a["id"], actor="bob")["case_state"] == "reported"


def test_unknown_action_case_and_actor(runtime: Runtime, ref: str) -> None:
    svc = CaseService(runtime)
    with pytest.raises(Conflict, match="'delete-customer' is not an action"):
        svc.propose(ref, "delete-customer", actor="alice")
    with pytest.raises(NotFound, match="does not exist"):
        svc.get("AD-0000000000")
    with pytest.raises(NotFound):
        svc.approve("ac_nope", actor="bob")
    with pytest.raises(Conflict, match="actor"):
        svc.note(ref, "x", actor=" ")


def test_notes_timeline_list_and_summary(runtime: Runtime, ref: str, clock) -> None:  # type: ignore[no-untyped-def]
    p = runtime.policy
    CaseEngine(runtime).ingest([finding(p, 1, kind="spam", key="ip:192.0.2.40", customer="cust-b", service="svc-b1")])
    svc = CaseService(runtime)
    clock.advance(timedelta(minutes=1))
    svc.note(ref, "called the customer; they are looking", actor="alice")
    shown = svc.get(ref.lower())
    assert [e["type"] for e in shown["timeline"]] == ["transition", "transition", "transition", "action", "note"]
    assert shown["findings"]["by_kind"] == {"scan": 1}
    assert [c["ref"] for c in svc.list(customer="cust-b")] != [ref]
    assert len(svc.list(clause="1.8")) == 1
    assert len(svc.list(state="awaiting-customer")) == 2
    s = svc.summary()
    assert s["total"] == 2
    assert s["by_state"] == {"awaiting-customer": 2}
    assert s["by_customer"] == {"cust-a": 1, "cust-b": 1}
    assert s["by_clause"] == {"1.11": 1, "1.8": 1}
    assert s["findings"] == 2


def test_stale_version_refused(runtime: Runtime, ref: str) -> None:
    svc = CaseService(runtime)
    seen = svc.get(ref)["version"]
    svc.note(ref, "notes do not change the case", actor="alice")
    svc.transition(ref, "escalated", actor="alice", reason="still scanning", expected_version=seen)
    with pytest.raises(Conflict, match="changed since you read it"):
        svc.transition(ref, "resolved", actor="bob", reason="x", expected_version=seen)


def test_outcomes_count_for_the_reporter(runtime: Runtime) -> None:
    from abusedesk.intake.reporters import reporter_stats

    p = runtime.policy
    engine = CaseEngine(runtime)
    rep = {"evidence": ({"reporter": "abuse@example.net", "event": "ev_1"},)}
    bad = engine.ingest([finding(p, 0, key="ip:192.0.2.50", **rep)]).opened[0]
    good = engine.ingest([finding(p, 0, key="ip:192.0.2.51", **rep)]).opened[0]
    svc = CaseService(runtime)
    svc.transition(bad, "dismissed", actor="alice", reason="the reported address was the victim")
    svc.transition(good, "resolved", actor="alice", reason="customer removed the scanner")
    svc.transition(good, "closed", actor="alice")  # closing a resolved case is not a second confirmation
    stats = reporter_stats(runtime, "abuse@example.net")
    assert stats is not None
    assert (stats["confirmed_cases"], stats["dismissed_cases"]) == (1, 1)
