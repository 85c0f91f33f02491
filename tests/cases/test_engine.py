"""The case engine: grouping, duplicates, reopening, repetition, out-of-order findings, playbooks, proof."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.service import CaseService
from abusedesk.detectors.reported import ReportedAbuseDetector
from abusedesk.domain.records import Event
from abusedesk.domain.timeutil import iso
from abusedesk.evidence import audit
from abusedesk.runtime import Runtime
from abusedesk.stages import FINDINGS_NEW
from abusedesk.store.tables.cases import ActionRow, CaseRow, CaseTransitionRow, FindingRow
from abusedesk.store.tables.evidence import AuditRow
from tests.cases.support import finding
from tests.conftest import T0
from tests.support.identities import People


def _cases(rt: Runtime) -> list[CaseRow]:
    with rt.sessions() as s:
        return list(s.scalars(select(CaseRow).order_by(CaseRow.opened_at, CaseRow.id)))


def _count(rt: Runtime, table: type) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_first_finding_opens_case_requests_cease_and_leaves_proof(runtime: Runtime) -> None:
    policy = runtime.policy
    report = CaseEngine(runtime).ingest([finding(policy, 0)])
    assert report.stored == 1
    assert len(report.opened) == 1
    [case] = _cases(runtime)
    assert case.clause == "1.8"
    assert case.state == "awaiting-customer"
    assert case.policy_version == policy.version
    assert case.deadline == T0 + timedelta(hours=24)  # network-abuse, medium: request-to-cease 24h
    assert case.notified_at == T0
    with runtime.sessions() as s:
        [action] = s.scalars(select(ActionRow))
        steps = [
            (t.from_state, t.to_state) for t in s.scalars(select(CaseTransitionRow).order_by(CaseTransitionRow.id))
        ]
        assert action.kind == "request-to-cease"
        assert action.status == "pending"
        assert action.payload["case_ref"] == case.ref
        assert action.payload["clause"] == "1.8"
        assert action.payload["cites"] == ["1.8", "4"]
        assert action.payload["deadline"] == "2026-03-02T10:00:00Z"
        assert action.payload["findings"][0]["summary"].startswith("scan from ip:192.0.2.10")
        assert steps == [(None, "new"), ("new", "notified"), ("notified", "awaiting-customer")]
        actions = [a for (a,) in s.execute(select(AuditRow.action).order_by(AuditRow.seq))]
        assert audit.verify(s).ok
    assert actions[0] == "case.opened"
    assert actions.count("case.transition") == 2
    assert "action.pending" in actions
    assert "case.findings" in actions


def test_duplicates_never_count_twice(runtime: Runtime) -> None:
    policy = runtime.policy
    engine = CaseEngine(runtime)
    a, b = finding(policy, 0), finding(policy, 5)
    first = engine.ingest([a, a, b])
    assert (first.stored, first.duplicates) == (2, 1)
    again = engine.ingest([a, b])
    assert (again.stored, again.duplicates) == (0, 2)
    runtime.bus.publish(FINDINGS_NEW, {"findings": [a.to_dict() | {"policy_version": policy.version}]})
    runtime.drain()  # the cases stage over the bus: the same finding again is a duplicate there too
    [case] = _cases(runtime)
    assert case.finding_count == 2
    assert _count(runtime, FindingRow) == 2
    assert _count(runtime, ActionRow) == 1


def test_large_batches_with_overlap_store_each_finding_once(runtime: Runtime) -> None:
    p = runtime.policy
    engine = CaseEngine(runtime)
    first = [finding(p, i, key=f"ip:203.0.113.{i % 4}") for i in range(400)]
    second = first[200:] + [finding(p, i, key=f"ip:203.0.113.{i % 4}") for i in range(400, 700)]
    assert engine.ingest(first).stored == 400
    report = engine.ingest(second)
    assert (report.stored, report.duplicates) == (300, 200)
    cases = _cases(runtime)
    assert sorted(c.finding_count for c in cases) == [175] * 4
    with runtime.sessions() as s:
        row = s.get(FindingRow, first[0].id)
        assert row is not None
        assert row.clauses == ["1.8"]
        assert row.window_end == first[0].window_end
        assert row.case_id in {c.id for c in cases}


def test_unattributed_finding_opens_no_case(runtime: Runtime) -> None:
    report = CaseEngine(runtime).ingest([finding(runtime.policy, 0, customer=None, service=None)])
    assert report.unattributed == 1
    assert report.stored == 0
    assert _cases(runtime) == []
    assert _count(runtime, FindingRow) == 0


def test_grouping_by_customer_service_clause_and_key(runtime: Runtime) -> None:
    p = runtime.policy
    CaseEngine(runtime).ingest(
        [
            finding(p, 0),
            finding(p, 1),  # same case
            finding(p, 2, key="ip:192.0.2.11"),  # other group key
            finding(p, 3, service="svc-a2"),  # other service
            finding(p, 4, customer="cust-b", service="svc-b1"),  # other customer
            finding(p, 5, kind="spam"),  # other clause (1.11)
        ]
    )
    cases = _cases(runtime)
    assert len(cases) == 5
    assert sorted(c.finding_count for c in cases) == [1, 1, 1, 1, 2]


def test_complaint_and_telemetry_about_one_address_share_a_case(runtime: Runtime) -> None:
    """The reported detector keys by "ip:<addr>"; telemetry detectors use the same scheme (documented)."""
    p = runtime.policy
    event = Event.create(
        kind="scan", time=T0, feed="xarf", reporter="abuse@example.net", source_ip="192.0.2.10",
        customer_id="cust-a", project_id="proj-cust-a", service_id="svc-a1",
    )  # fmt: skip
    [reported] = ReportedAbuseDetector(p).detect([event])
    telemetry = finding(p, 3, detector="portscan")
    assert reported.group_key == telemetry.group_key == "ip:192.0.2.10"
    engine = CaseEngine(runtime)
    engine.ingest([reported])
    engine.ingest([telemetry])
    [case] = _cases(runtime)
    assert case.finding_count == 2


def test_finding_citing_several_clauses_opens_one_case_under_the_primary(runtime: Runtime) -> None:
    p = runtime.policy
    f = finding(p, 0, kind="crawling", key="ip:192.0.2.20")
    assert len(f.clauses) > 1
    CaseEngine(runtime).ingest([f])
    [case] = _cases(runtime)
    assert case.clause == f.clauses[0] == p.primary_clause("crawling").id


def test_repetition_raises_severity_and_critical_proposes_suspension(runtime: Runtime) -> None:
    p = runtime.policy  # network-abuse: every 5 findings within 24h raise one level
    engine = CaseEngine(runtime)
    engine.ingest([finding(p, i) for i in range(4)])
    assert _cases(runtime)[0].severity == "medium"
    engine.ingest([finding(p, 4)])
    assert _cases(runtime)[0].severity == "high"
    engine.ingest([finding(p, i) for i in range(5, 10)])
    [case] = _cases(runtime)
    assert case.severity == "critical"
    assert case.state == "escalated"
    with runtime.sessions() as s:
        kinds = {(a.kind, a.status, a.proposed_by) for a in s.scalars(select(ActionRow))}
    assert ("suspend-service", "proposed", "svc:engine") in kinds
    assert ("request-to-cease", "pending", "svc:engine") in kinds


def test_findings_spread_beyond_the_repeat_window_do_not_raise(runtime: Runtime) -> None:
    p = runtime.policy
    engine = CaseEngine(runtime)
    for day in range(6):  # one finding a day: never 5 within 24h
        engine.ingest([finding(p, day * 24 * 60)])
    assert _cases(runtime)[0].severity == "medium"


def test_reopen_within_window_late_news_and_beyond_window(runtime: Runtime, clock, people: People) -> None:  # type: ignore[no-untyped-def]
    p = runtime.policy
    engine, service = CaseEngine(runtime), CaseService(runtime)
    engine.ingest([finding(p, 0)])
    [case] = _cases(runtime)
    clock.advance(timedelta(hours=1))
    service.transition(case.ref, "resolved", by=people["alice"], reason="customer fixed it")
    closed_at = T0 + timedelta(hours=1)

    late = engine.ingest([finding(p, 30)])  # window ended before the case was resolved
    assert late.reopened == []
    [case] = _cases(runtime)
    assert case.state == "resolved"
    assert case.finding_count == 2

    clock.advance(timedelta(days=2))
    again = engine.ingest([finding(p, 2 * 24 * 60)])
    assert again.reopened == [case.ref]
    [case] = _cases(runtime)
    assert case.state == "awaiting-customer"
    assert case.reopen_count == 1
    assert case.severity == "high"  # on_reopen: 1
    assert case.deadline == clock.now() + timedelta(hours=4)  # the high playbook of the new round

    service.transition(case.ref, "resolved", by=people["alice"], reason="fixed again")
    far = closed_at + p.reopen_window + timedelta(days=5)
    clock.set(far)
    beyond = engine.ingest([finding(p, int((far - T0).total_seconds() // 60))])
    assert len(beyond.opened) == 1
    assert len(_cases(runtime)) == 2


def test_out_of_order_findings_move_nothing_backwards(runtime: Runtime, clock) -> None:  # type: ignore[no-untyped-def]
    p = runtime.policy
    engine = CaseEngine(runtime)
    engine.ingest([finding(p, 120)])
    [case] = _cases(runtime)
    deadline, last = case.deadline, case.last_finding_at
    clock.advance(timedelta(hours=2))
    engine.ingest([finding(p, 10)])  # older window, arriving later
    [case] = _cases(runtime)
    assert case.deadline == deadline
    assert case.last_finding_at == last
    assert case.finding_count == 2
    assert case.reopen_count == 0


def test_triage_playbook_leaves_case_to_a_person(runtime: Runtime) -> None:
    p = runtime.policy
    CaseEngine(runtime).ingest([finding(p, 0, kind="illegal-content", key="host:files.example.net")])
    [case] = _cases(runtime)
    assert case.state == "triaged"
    assert case.deadline is None
    assert _count(runtime, ActionRow) == 0


def test_pipeline_wiring_delivers_findings_over_the_bus(runtime: Runtime) -> None:
    f = finding(runtime.policy, 0)
    runtime.bus.publish(FINDINGS_NEW, {"findings": [f.to_dict() | {"policy_version": runtime.policy.version}]})
    runtime.drain()
    [case] = _cases(runtime)
    assert case.state == "awaiting-customer"


def test_stored_findings_keep_every_character_and_field(runtime: Runtime) -> None:
    """300 findings take PostgreSQL's COPY path: text with tabs, newlines, backslashes, ``\\N`` and non-ASCII,
    zoned times and nested evidence come back from the database exactly as they went in."""
    p = runtime.policy
    awkward = ["tab\there", "line\nbreak\r\nend", "back\\slash \\N \\t", "\\N", "nul-like \\0 é 日本 \u2028", ""]
    batch = []
    for i in range(300):
        text = awkward[i % len(awkward)]
        evidence = ({"reporter": f"rep\t{i}", "note": text, "nested": {"n": i, "list": [text, None, 1.5]}},)
        base = finding(p, i, key=f"host:{text or 'empty'}.example", event_ids=(f"ev_{i:032d}",), evidence=evidence)
        batch.append(replace(base, summary=f"{text} #{i}", policy_version="v-test", confidence=0.1 + i / 1000))
    report = CaseEngine(runtime).ingest(batch)
    assert report.stored == 300
    with runtime.sessions() as s:
        rows = {r.id: r for r in s.scalars(select(FindingRow))}
    assert len(rows) == 300
    for f in batch:
        row = rows[f.id]
        assert (row.summary, row.group_key, row.kind, row.detector) == (f.summary, f.group_key, f.kind, f.detector)
        assert (row.window_start, row.window_end) == (f.window_start, f.window_end)
        assert row.confidence == f.confidence and row.clauses == list(f.clauses)
        assert (row.subject_ip, row.customer_id, row.project_id, row.service_id) == (
            f.subject_ip, f.customer_id, f.project_id, f.service_id,
        )  # fmt: skip
        assert row.data == {"event_ids": list(f.event_ids), "evidence": list(f.evidence), "policy_version": "v-test"}
        assert row.case_id is not None


def test_severity_rising_to_a_shorter_deadline_sends_a_new_request_with_it(runtime: Runtime, clock) -> None:  # type: ignore[no-untyped-def]
    p = runtime.policy  # network-abuse: medium asks to cease within 24h, high within 4h
    engine = CaseEngine(runtime)
    engine.ingest([finding(p, i) for i in range(4)])
    [case] = _cases(runtime)
    first_deadline = case.deadline
    assert first_deadline == clock.now() + timedelta(hours=24)
    clock.advance(timedelta(hours=1))
    engine.ingest([finding(p, 4)])  # the fifth within 24h: high
    [case] = _cases(runtime)
    assert (case.severity, case.state) == ("high", "awaiting-customer")
    assert case.deadline == clock.now() + timedelta(hours=4)
    with runtime.sessions() as s:
        requests = list(
            s.scalars(select(ActionRow).where(ActionRow.kind == "request-to-cease").order_by(ActionRow.created_at))
        )
        changes = list(s.scalars(select(AuditRow).where(AuditRow.action == "case.deadline")))
    assert len(requests) == 2
    assert requests[1].payload["deadline"] == iso(clock.now() + timedelta(hours=4))
    assert requests[1].payload["replaces_deadline"] == iso(first_deadline)
    assert len(changes) == 1
    engine.ingest([finding(p, 5)])  # still high: no third request
    clock.advance(timedelta(hours=1))
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ActionRow).where(ActionRow.kind == "request-to-cease")) == 2
