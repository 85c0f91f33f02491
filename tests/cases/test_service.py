"""Analysts' operations: transitions (legal and not), two-person approvals, notes, the timeline, listing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.service import CaseService
from abusedesk.domain.errors import Conflict, Forbidden, NotFound
from abusedesk.domain.identity import SCHEDULER
from abusedesk.evidence import audit
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow
from tests.cases.support import finding
from tests.support.identities import People


@pytest.fixture
def ref(runtime: Runtime) -> str:
    report = CaseEngine(runtime).ingest([finding(runtime.policy, 0)])
    return report.opened[0]


def test_illegal_transition_refused_naming_allowed_targets(runtime: Runtime, ref: str, people: People) -> None:
    svc = CaseService(runtime)
    with pytest.raises(Conflict) as err:
        svc.transition(ref, "reinstated", by=people["alice"], reason="x")
    msg = err.value.message
    assert f"case {ref} cannot move from 'awaiting-customer' to 'reinstated'" in msg
    assert "notified, resolved, escalated, dismissed, appealed" in msg
    assert svc.get(ref, people["alice"])["state"] == "awaiting-customer"  # nothing changed


def test_dismiss_needs_reason_and_is_recorded(runtime: Runtime, ref: str, clock, people: People) -> None:  # type: ignore[no-untyped-def]
    svc = CaseService(runtime)
    with pytest.raises(Conflict, match="without a reason"):
        svc.transition(ref, "dismissed", by=people["alice"])
    clock.advance(timedelta(minutes=5))
    out = svc.transition(ref, "dismissed", by=people["alice"], reason="reporter confused victim and attacker")
    assert out["state"] == "dismissed"
    assert out["closed_at"] == "2026-03-01T10:05:00Z"
    last = svc.get(ref, people["alice"])["timeline"][-1]
    assert (last["type"], last["actor"], last["actor_name"], last["to"]) == (
        "transition",
        people["alice"].id,
        "alice",
        "dismissed",
    )
    assert last["text"] == "reporter confused victim and attacker"
    with runtime.sessions() as s:
        row = s.scalars(select(audit.AuditRow).order_by(audit.AuditRow.seq.desc())).first()
        assert row is not None
        assert (row.actor, row.action, row.payload["to"]) == (people["alice"].id, "case.transition", "dismissed")


def carry_out(rt: Runtime) -> None:
    """What the action runner does: the control plane (its null twin) and the evidence bundle adapter."""
    from abusedesk.actions.export import ReportOfficialsAction
    from abusedesk.actions.runner import ActionRunner
    from abusedesk.actions.webhook import NullControlAction

    control = NullControlAction()
    ActionRunner(
        rt, {k: control for k in control.kinds} | {"report-officials": ReportOfficialsAction(runtime=rt)}
    ).run_pending()


def test_two_person_rule(runtime: Runtime, ref: str, people: People) -> None:
    svc = CaseService(runtime)
    proposed = svc.propose(ref, "suspend-service", by=people["carol"], reason="scanning goes on")
    assert proposed["status"] == "proposed"
    assert proposed["case_state"] == "escalated"
    with pytest.raises(Forbidden, match=r"carol .* proposed action .* a different person must approve it"):
        svc.approve(proposed["id"], by=people["carol"])
    with pytest.raises(Forbidden, match="role service"):
        svc.approve(proposed["id"], by=SCHEDULER)
    done = svc.approve(proposed["id"], by=people["bob"])
    assert (done["status"], done["approved_by"], done["approvals_missing"]) == ("pending", people["bob"].id, 0)
    assert done["case_state"] == "escalated"  # restricted only once the control plane has done it
    with pytest.raises(Conflict, match="is pending, not proposed"):
        svc.approve(proposed["id"], by=people["root"])
    with runtime.sessions() as s:
        action = s.get(ActionRow, proposed["id"])
        assert action is not None
        assert action.payload["cites"] == ["1.8", "3"]
    carry_out(runtime)
    assert svc.get(ref, people["alice"])["state"] == "restricted"
    reinstated = svc.propose(ref, "reinstate", by=people["carol"], reason="customer removed the scanner")
    assert (reinstated["status"], reinstated["case_state"]) == ("pending", "restricted")
    carry_out(runtime)
    assert svc.get(ref, people["alice"])["state"] == "reinstated"
    assert svc.transition(ref, "closed", by=people["carol"])["state"] == "closed"
    with runtime.sessions() as s:
        assert audit.verify(s).ok  # engine batch entries and analysts' single entries form one chain


def test_engine_proposal_needs_two_people(runtime: Runtime, people: People) -> None:
    p = runtime.policy
    CaseEngine(runtime).ingest([finding(p, i, key="ip:192.0.2.30") for i in range(10)])  # critical: propose
    svc = CaseService(runtime)
    [case] = svc.list(people["alice"], state="escalated")
    [proposal] = [a for a in svc.get(case["ref"], people["alice"])["actions"] if a["status"] == "proposed"]
    with pytest.raises(Forbidden, match=r"may not action\.approve"):
        svc.approve(proposal["id"], by=people["alice"])  # an analyst proposes; approvers approve
    first = svc.approve(proposal["id"], by=people["bob"])
    assert (first["status"], first["approvals_missing"]) == ("proposed", 1)  # the engine is no person
    with pytest.raises(Forbidden, match="already approved"):
        svc.approve(proposal["id"], by=people["bob"])
    second = svc.approve(proposal["id"], by=people["carol"])
    assert (second["status"], second["case_state"]) == ("pending", "escalated")


def test_report_to_officials_moves_case_to_reported(runtime: Runtime, ref: str, people: People) -> None:
    svc = CaseService(runtime)
    a = svc.propose(ref, "report-officials", by=people["alice"], reason="phishing kit")
    assert svc.approve(a["id"], by=people["bob"])["case_state"] == "escalated"
    carry_out(runtime)
    assert svc.get(ref, people["alice"])["state"] == "reported"


def test_unknown_action_case_and_actor(runtime: Runtime, ref: str, people: People) -> None:
    svc = CaseService(runtime)
    with pytest.raises(Conflict, match="'delete-customer' is not an action"):
        svc.propose(ref, "delete-customer", by=people["alice"])
    with pytest.raises(NotFound, match="does not exist"):
        svc.get("AD-0000000000", people["alice"])
    with pytest.raises(NotFound):
        svc.approve("ac_nope", by=people["bob"])
    with pytest.raises(Conflict, match="needs text"):
        svc.note(ref, " ", by=people["alice"])


def test_notes_timeline_list_and_summary(runtime: Runtime, ref: str, clock, people: People) -> None:  # type: ignore[no-untyped-def]
    p = runtime.policy
    CaseEngine(runtime).ingest([finding(p, 1, kind="spam", key="ip:192.0.2.40", customer="cust-b", service="svc-b1")])
    svc = CaseService(runtime)
    clock.advance(timedelta(minutes=1))
    svc.note(ref, "called the customer; they are looking", by=people["alice"])
    shown = svc.get(ref.lower(), people["alice"])
    assert [e["type"] for e in shown["timeline"]] == ["transition", "transition", "transition", "action", "note"]
    assert shown["findings"]["by_kind"] == {"scan": 1}
    assert [c["ref"] for c in svc.list(people["alice"], customer="cust-b")] != [ref]
    assert len(svc.list(people["alice"], clause="1.8")) == 1
    assert len(svc.list(people["alice"], state="awaiting-customer")) == 2
    s = svc.summary(people["alice"])
    assert s["total"] == 2
    assert s["by_state"] == {"awaiting-customer": 2}
    assert s["by_customer"] == {"cust-a": 1, "cust-b": 1}
    assert s["by_clause"] == {"1.11": 1, "1.8": 1}
    assert s["findings"] == 2


def test_stale_version_refused(runtime: Runtime, ref: str, people: People) -> None:
    svc = CaseService(runtime)
    seen = svc.get(ref, people["alice"])["version"]
    svc.note(ref, "notes do not change the case", by=people["alice"])
    svc.transition(ref, "escalated", by=people["alice"], reason="still scanning", expected_version=seen)
    with pytest.raises(Conflict, match="changed since you read it"):
        svc.transition(ref, "resolved", by=people["bob"], reason="x", expected_version=seen)


def test_outcomes_count_for_the_reporter(runtime: Runtime, people: People) -> None:
    from abusedesk.intake.reporters import reporter_stats

    p = runtime.policy
    engine = CaseEngine(runtime)
    rep = {"evidence": ({"reporter": "abuse@example.net", "event": "ev_1"},)}
    bad = engine.ingest([finding(p, 0, key="ip:192.0.2.50", **rep)]).opened[0]
    good = engine.ingest([finding(p, 0, key="ip:192.0.2.51", **rep)]).opened[0]
    svc = CaseService(runtime)
    svc.transition(bad, "dismissed", by=people["alice"], reason="the reported address was the victim")
    svc.transition(good, "resolved", by=people["alice"], reason="customer removed the scanner")
    svc.transition(good, "closed", by=people["alice"])  # closing a resolved case is not a second confirmation
    stats = reporter_stats(runtime, "abuse@example.net")
    assert stats is not None
    assert (stats["confirmed_cases"], stats["dismissed_cases"]) == (1, 1)
