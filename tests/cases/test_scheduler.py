"""Section 4 closed loop driven by the manual clock: ceased → resolved; continued → escalated with a proposal."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import abusedesk.policy
from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.scheduler import Scheduler
from abusedesk.cases.service import CaseService
from abusedesk.policy.loader import load_policy_text
from abusedesk.runtime import Runtime
from tests.cases.support import finding
from tests.support.identities import People


def test_no_findings_after_notice_resolves_as_ceased(runtime: Runtime, clock, people: People) -> None:  # type: ignore[no-untyped-def]
    ref = CaseEngine(runtime).ingest([finding(runtime.policy, -30)]).opened[0]
    sched = Scheduler(runtime)
    clock.advance(timedelta(hours=23))
    assert sched.tick().resolved == []
    clock.advance(timedelta(hours=1))
    report = sched.tick()
    assert report.resolved == [ref]
    case = CaseService(runtime).get(ref, people["alice"])
    assert case["state"] == "resolved"
    assert case["timeline"][-1]["text"].startswith("ceased: no findings since the request to cease")
    assert sched.tick().resolved == []  # nothing left to do


def test_late_report_of_earlier_activity_is_not_repetition(runtime: Runtime, clock) -> None:  # type: ignore[no-untyped-def]
    p = runtime.policy
    engine = CaseEngine(runtime)
    ref = engine.ingest([finding(p, -30)]).opened[0]
    clock.advance(timedelta(hours=5))
    engine.ingest([finding(p, -10)])  # arrives after the notice, but happened before it
    clock.advance(timedelta(hours=20))
    assert Scheduler(runtime).tick().resolved == [ref]


def test_findings_after_notice_escalate_and_propose_suspension(runtime: Runtime, clock, people: People) -> None:  # type: ignore[no-untyped-def]
    p = runtime.policy
    engine = CaseEngine(runtime)
    ref = engine.ingest([finding(p, -30)]).opened[0]
    clock.advance(timedelta(hours=3))
    engine.ingest([finding(p, 180)])  # still scanning three hours after the request
    clock.advance(timedelta(hours=21))
    report = Scheduler(runtime).tick()
    assert report.escalated == [ref]
    svc = CaseService(runtime)
    case = svc.get(ref, people["alice"])
    assert case["state"] == "escalated"
    [proposal] = [a for a in case["actions"] if a["status"] == "proposed"]
    assert proposal["kind"] == "suspend-service"
    assert proposal["proposed_by"] == "svc:scheduler"
    svc.approve(proposal["id"], by=people["bob"])
    assert svc.approve(proposal["id"], by=people["carol"])["status"] == "pending"  # restricted once carried out


def test_reminder_after_the_renotify_delay_once(runtime: Runtime, clock, people: People) -> None:  # type: ignore[no-untyped-def]
    ref = CaseEngine(runtime).ingest([finding(runtime.policy, -30)]).opened[0]
    sched = Scheduler(runtime)
    clock.advance(timedelta(hours=11))
    assert sched.tick().renotified == []
    clock.advance(timedelta(hours=1))
    assert sched.tick().renotified == [ref]
    clock.advance(timedelta(hours=6))
    assert sched.tick().renotified == []  # repeat: 1
    actions = CaseService(runtime).get(ref, people["alice"])["actions"]
    assert [a["kind"] for a in actions] == ["request-to-cease", "renotify"]
    assert actions[1]["deadline"] == "2026-03-02T10:00:00Z"


def test_escalation_asks_for_as_many_persons_as_the_playbook_says(runtime: Runtime, clock, people: People) -> None:  # type: ignore[no-untyped-def]
    policy_file = Path(abusedesk.policy.__file__).parent / "data" / "aup-2025-06-10.yaml"
    text = policy_file.read_text(encoding="utf-8")
    assert "approvals: 2" in text
    three = load_policy_text(text.replace("approvals: 2", "approvals: 3"), source="three-persons.yaml")
    p = runtime.policy
    engine = CaseEngine(runtime)
    ref = engine.ingest([finding(p, -30)]).opened[0]
    clock.advance(timedelta(hours=3))
    engine.ingest([finding(p, 180)])
    clock.advance(timedelta(hours=21))
    assert Scheduler(runtime, three).tick().escalated == [ref]
    svc = CaseService(runtime)
    [proposal] = [a for a in svc.get(ref, people["alice"])["actions"] if a["status"] == "proposed"]
    assert proposal["approvals_needed"] == 3
    assert svc.approve(proposal["id"], by=people["bob"])["status"] == "proposed"
    assert svc.approve(proposal["id"], by=people["carol"])["status"] == "proposed"  # the scheduler is not a person
    assert svc.approve(proposal["id"], by=people["root"])["status"] == "pending"
