"""The console's readings over the store (web/console/queries.py) and its mass actions, on SQLite and PostgreSQL:
filters, sorts and keyset pages of the queue, a case's merged timeline, the evidence viewer, who had an address,
and the dashboard's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from abusedesk.cases.service import CaseService
from abusedesk.clock import ManualClock
from abusedesk.config import Settings
from abusedesk.domain.errors import ConfigError, Conflict, Forbidden, NotFound
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseRow
from abusedesk.store.tables.evidence import AuditRow
from abusedesk.web.console.actions import apply_to_selection
from abusedesk.web.console.queries import ConsoleViews, QueueFilters
from tests.pipeline.spine import add_allocation
from tests.support.identities import People, customer_token
from tests.web.console.support import SPAM_IP, make_cases, quarantined, reported_case


def all_pages(views: ConsoleViews, by, **filters: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Every ref the queue shows for ``filters``, page after page of 3."""
    seen: list[str] = []
    cursor = ""
    while True:
        page = views.queue(by, QueueFilters.from_query({**filters, "limit": "3", "cursor": cursor}))
        assert len(page["items"]) <= 3
        seen += [c["ref"] for c in page["items"]]
        cursor = page["next_cursor"] or ""
        if not cursor:
            return seen


def test_queue_pages_every_sort_without_repeats(runtime: Runtime, clock: ManualClock, people: People) -> None:
    refs = make_cases(runtime, clock, 8)
    other = make_cases(runtime, clock, 2, customer="cust-b", first=100)
    views = ConsoleViews(runtime)
    alice = people["alice"]
    newest_first = all_pages(views, alice)
    assert newest_first == list(reversed(refs + other))
    assert all_pages(views, alice, sort="opened") == refs + other  # oldest first
    assert all_pages(views, alice, customer="cust-b") == list(reversed(other))
    # a deadline on three cases only (the playbook's request to cease gave every case one): the deadline sort
    # shows those only, soonest first
    with runtime.sessions.begin() as s:
        s.execute(update(CaseRow).values(deadline=None))
        for hours, ref in ((5, refs[0]), (1, refs[3]), (30, refs[6])):
            s.execute(update(CaseRow).where(CaseRow.ref == ref).values(deadline=clock.now() + timedelta(hours=hours)))
    assert all_pages(views, alice, sort="deadline") == [refs[3], refs[0], refs[6]]
    assert all_pages(views, alice, deadline="24h") == [refs[3], refs[0]]  # newest change first
    page = views.queue(alice, QueueFilters.from_query({"deadline": "overdue"}))
    assert page["items"] == []
    clock.advance(timedelta(hours=2))
    page = views.queue(alice, QueueFilters.from_query({"deadline": "overdue"}))
    assert [(c["ref"], c["overdue"]) for c in page["items"]] == [(refs[3], True)]


def test_queue_filters_by_state_clause_severity_and_age(runtime: Runtime, clock: ManualClock, people: People) -> None:
    old = make_cases(runtime, clock, 2)
    clock.advance(timedelta(days=8))
    new = make_cases(runtime, clock, 2, first=50)
    views, alice = ConsoleViews(runtime), people["alice"]
    assert all_pages(views, alice, age="7d") == list(reversed(old))
    assert set(all_pages(views, alice, clause="1.8")) == set(old + new)
    assert all_pages(views, alice, clause="1.11") == []
    CaseService(runtime).transition(new[0], "dismissed", by=alice, reason="a test scan we ran")
    assert new[0] not in all_pages(views, alice)  # the default is open cases
    assert all_pages(views, alice, state="dismissed") == [new[0]]
    assert new[0] in all_pages(views, alice, state="")  # any state
    severity = views.queue(alice, QueueFilters.from_query({}))["items"][0]["severity"]
    assert set(all_pages(views, alice, severity=severity)) == set(old + new[1:])
    names = {c["customer_name"] for c in views.queue(alice, QueueFilters.from_query({}))["items"]}
    assert names == {None}  # cust-a is not in the inventory of this test


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("state", "nope"),
        ("sort", "severity; drop table"),
        ("age", "2d"),
        ("deadline", "1y"),
        ("limit", "0"),
        ("limit", "201"),
        ("limit", "x"),
        ("severity", "urgent"),
    ],
)
def test_queue_refuses_a_filter_the_form_never_offers(field: str, value: str) -> None:
    with pytest.raises(ConfigError, match=field):
        QueueFilters.from_query({field: value})


def test_a_cursor_is_read_only_under_its_own_sort(runtime: Runtime, clock: ManualClock, people: People) -> None:
    make_cases(runtime, clock, 3)
    views, alice = ConsoleViews(runtime), people["alice"]
    cursor = views.queue(alice, QueueFilters.from_query({"limit": "1", "sort": "opened"}))["next_cursor"]
    with pytest.raises(Conflict, match="sort 'updated'"):
        views.queue(alice, QueueFilters.from_query({"limit": "1", "cursor": cursor}))
    default = views.queue(alice, QueueFilters.from_query({"limit": "1"}))["next_cursor"]
    with pytest.raises(Conflict, match="sort 'opened'"):
        views.queue(alice, QueueFilters.from_query({"limit": "1", "sort": "opened", "cursor": default}))


def test_a_customer_reads_nothing_through_the_console(runtime: Runtime, clock: ManualClock, people: People) -> None:
    [ref] = make_cases(runtime, clock, 1)
    customer_token(runtime, people, "cindy", "cust-a")  # its own customer's case, still not through the console
    cindy, views = people["cindy"], ConsoleViews(runtime)
    for read in (
        lambda: views.queue(cindy, QueueFilters()),
        lambda: views.case(cindy, ref),
        lambda: views.triage(cindy),
        lambda: views.dashboard(cindy),
        lambda: views.who_had(cindy, "192.0.2.1"),
        lambda: apply_to_selection(runtime, cindy, [ref], "note", "", "hello"),
    ):
        with pytest.raises(Forbidden, match="for the provider's staff"):
            read()


def test_case_page_merges_events_findings_transitions_and_notes(
    runtime: Runtime, settings: Settings, clock: ManualClock, people: People
) -> None:
    rt, ref, raw_id = reported_case(runtime, settings, clock)
    alice = people["alice"]
    CaseService(rt).note(ref, "called the customer", by=alice)
    case = ConsoleViews(rt).case(alice, ref)
    assert case["clause_cited"]["id"] == "1.11" and "unsolicited" in case["clause_cited"]["text"].lower()
    assert case["customer"]["name"] == "Acme Analytics" and case["service"]["name"] == "mx-1"
    assert [i["id"] for i in case["inputs"]] == [raw_id]
    types = [e["type"] for e in case["timeline"]]
    assert {"event", "finding", "transition", "note"} <= set(types)
    assert types.index("event") < types.index("finding")  # the report came before what was concluded from it
    assert [e["at"] for e in case["timeline"]] == sorted(e["at"] for e in case["timeline"])
    [event] = [e for e in case["timeline"] if e["type"] == "event"]
    assert event["raw_id"] == raw_id and event["text"] == f"spam {SPAM_IP}"
    [note] = [e for e in case["timeline"] if e["type"] == "note"]
    assert note["actor"] == alice.id and note["actor_name"] == "alice"


def test_evidence_viewer_lists_headers_parts_and_cites_the_clause(
    runtime: Runtime, settings: Settings, clock: ManualClock, people: People
) -> None:
    rt, ref, raw_id = reported_case(runtime, settings, clock)
    alice, views = people["alice"], ConsoleViews(rt)
    ev = views.evidence(alice, raw_id, case_ref=ref)
    assert ev["is_mail"] is True
    assert ("Subject", "Abuse report 1") in ev["headers"]
    assert [p["content_type"] for p in ev["parts"]] == ["text/plain", "message/feedback-report", "text/rfc822-headers"]
    assert ev["clause_cited"]["id"] == "1.11" and ev["clause_cited"]["case_ref"] == ref
    assert ev["raw"]["reporter"] == "fbl@mailbox.example.net"
    assert "abuse report about a message received from 198.51.100.25" in ev["text"]
    other = quarantined(rt)
    with pytest.raises(NotFound, match=f"not evidence of case {ref}"):
        views.evidence(alice, other, case_ref=ref)
    triage = views.evidence(alice, other)
    assert triage["is_mail"] is False and triage["clause_cited"] is None and "not a report" in triage["text"]
    assert triage["raw"]["status"] == "quarantined"


def test_triage_queue_and_promote_and_release_as_the_api_does(
    runtime: Runtime, settings: Settings, clock: ManualClock, people: People
) -> None:
    rt, _, _ = reported_case(runtime, settings, clock)
    raw_id = quarantined(rt)
    views = ConsoleViews(rt)
    queue = views.triage(people["alice"])
    assert [i["id"] for i in queue["items"] if i["type"] == "raw"] == [raw_id]
    assert {"id": "1.8", "title": rt.policy.clause("1.8").title} in queue["clauses"]
    assert all(c["id"] != "3" for c in queue["clauses"])  # a clause of rights and duties names no abuse


def test_who_had_the_address_lists_every_holder(runtime: Runtime, people: People) -> None:
    from abusedesk.store.tables.inventory import CustomerRow, ProjectRow, ServiceRow
    from tests.pipeline.spine import add_inventory

    add_inventory(runtime)  # 198.51.100.0/27 to Acme since 2026-01-01
    with runtime.sessions.begin() as s:
        s.add(CustomerRow(id="cus_old", name="Old Tenant", contact_email="o@example.org"))
        s.flush()
        s.add(ProjectRow(id="prj_old", customer_id="cus_old", name="legacy"))
        s.flush()
        s.add(ServiceRow(id="svc_old", project_id="prj_old", kind="vm", name="old-1"))
    with runtime.sessions.begin() as s:  # the old tenant held it in 2025
        from abusedesk.domain.ipnet import prefix_range
        from abusedesk.store.tables.inventory import AllocationRow

        first, last, plen = prefix_range("198.51.100.0/24")
        s.add(AllocationRow(service_id="svc_old", prefix="198.51.100.0/24", first_hex=f"{first:032x}",
                            last_hex=f"{last:032x}", prefixlen=plen, valid_from=datetime(2025, 1, 1, tzinfo=UTC),
                            valid_to=datetime(2026, 1, 1, tzinfo=UTC)))  # fmt: skip
    add_allocation(runtime, "203.0.113.0/24", datetime(2026, 1, 1, tzinfo=UTC))  # another prefix: not listed
    views, alice = ConsoleViews(runtime), people["alice"]
    now = views.who_had(alice, SPAM_IP)
    assert now["answer"]["customer"]["name"] == "Acme Analytics"
    assert [(h["customer_name"], h["current"]) for h in now["history"]] == [
        ("Old Tenant", False),
        ("Acme Analytics", True),
    ]
    then = views.who_had(alice, f"::ffff:{SPAM_IP}", datetime(2025, 6, 1, tzinfo=UTC))
    assert then["ip"] == SPAM_IP and then["answer"]["customer"]["name"] == "Old Tenant"
    assert [h["current"] for h in then["history"]] == [True, False]
    with pytest.raises(ConfigError, match="not an IPv4 or IPv6 address"):
        views.who_had(alice, "banana")


def test_dashboard_counts_findings_ages_resolution_and_reporters(
    runtime: Runtime, clock: ManualClock, people: People
) -> None:
    from abusedesk.intake.reporters import record_case_outcome

    old = make_cases(runtime, clock, 2)
    clock.advance(timedelta(days=10))
    new = make_cases(runtime, clock, 3, first=60)
    alice = people["alice"]
    clock.advance(timedelta(hours=6))
    CaseService(runtime).transition(new[0], "resolved", by=alice, reason="fixed")
    for confirmed in (True, True, False):
        record_case_outcome(runtime, "cert@cert.example.net", confirmed)
    d = ConsoleViews(runtime).dashboard(alice, days=30)
    assert d["findings_per_clause"]["series"] == {"1.8": [*([0] * 20), 2, *([0] * 9), 3]}
    assert len(d["findings_per_clause"]["dates"]) == 31
    ages = {a["label"]: a["count"] for a in d["open_by_age"]}
    assert ages == {"under 1 day": 2, "1-7 days": 0, "7-30 days": 2, "over 30 days": 0}
    [res] = d["resolution_hours"]
    assert res["clause"] == "1.8" and res["cases"] == 1 and 6 <= res["median"] <= 6.01
    [rep] = d["reporters"]
    assert rep["address"] == "cert@cert.example.net" and rep["accuracy"] == pytest.approx(2 / 3)
    assert old  # the old cases count in the age buckets above


def test_the_timeline_names_the_person_a_transition_reason_names_by_id(
    runtime: Runtime, clock: ManualClock, people: People
) -> None:
    """``CaseService.propose`` writes "us_… proposes …" into the transition it makes: the page shows the name,
    the stored transition keeps the id."""
    [ref] = make_cases(runtime, clock, 1)
    alice = people["alice"]
    assert alice.id.startswith("us_")
    CaseService(runtime).propose(ref, "suspend-service", by=alice, reason="keeps scanning")
    stranger = "us_" + "0" * 32  # an id no user has stays as it is
    CaseService(runtime).transition(ref, "awaiting-customer", by=alice, reason=f"asked {stranger}")
    timeline = ConsoleViews(runtime).case(alice, ref)["timeline"]
    texts = [e["text"] for e in timeline if e["type"] == "transition"]
    assert "alice proposes suspend-service" in texts and f"asked {stranger}" in texts
    assert not any(alice.id in (e["text"] or "") for e in timeline)
    stored = CaseService(runtime).get(ref, alice)["timeline"]
    assert f"{alice.id} proposes suspend-service" in [e["text"] for e in stored]


def test_dashboard_counts_a_new_finding_of_an_old_case_in_the_window(
    runtime: Runtime, clock: ManualClock, people: People
) -> None:
    """The findings of the window are read through the cases updated in it: a case opened long before the
    window that gets a finding in it is counted (the engine updates the case when it stores the finding)."""
    from abusedesk.cases.engine import CaseEngine
    from tests.cases.support import finding

    [ref] = make_cases(runtime, clock, 1)
    clock.advance(timedelta(days=60))
    report = CaseEngine(runtime).ingest(
        [finding(runtime.policy, 5, key="ip:192.0.2.10", customer="cust-a", service="svc-cust-a")]
    )
    assert report.updated == [ref]
    d = ConsoleViews(runtime).dashboard(people["alice"], days=7)
    assert d["findings_per_clause"]["series"] == {"1.8": [0] * 7 + [1]}
    assert (
        ConsoleViews(runtime).dashboard(people["alice"], days=90)["findings_per_clause"]["series"]["1.8"].count(1) == 2
    )


def test_queue_counts_up_to_a_cap_and_filters_by_customer_name(
    runtime: Runtime, clock: ManualClock, people: People
) -> None:
    from abusedesk.store.tables.inventory import CustomerRow

    make_cases(runtime, clock, 4, customer="cust-a")
    make_cases(runtime, clock, 2, customer="cust-b", first=80)
    with runtime.sessions.begin() as s:
        s.add_all([CustomerRow(id="cust-a", name="Acme Analytics"), CustomerRow(id="cust-b", name="Beta Hosting")])
    alice, views = people["alice"], ConsoleViews(runtime)
    page = views.queue(alice, QueueFilters.from_query({"limit": "3"}))
    assert (page["total"], page["more"]) == (6, False) and len(page["items"]) == 3
    for value in ("cust-a", "acme analytics", "Acme Analytics"):
        page = views.queue(alice, QueueFilters.from_query({"customer": value}))
        assert {c["customer_id"] for c in page["items"]} == {"cust-a"} and page["total"] == 4, value
    page = views.queue(alice, QueueFilters.from_query({"customer": "Nobody Ltd"}))
    assert page["items"] == [] and page["total"] == 0
    assert CaseService(runtime).count(alice, cap=5) == (5, True)
    [ended] = make_cases(runtime, clock, 1, first=90)
    CaseService(runtime).transition(ended, "dismissed", by=alice, reason="a duplicate")
    assert views.queue(alice, QueueFilters.from_query({}))["total"] == 6  # "open", the default, leaves it out
    assert views.queue(alice, QueueFilters.from_query({"state": "dismissed"}))["total"] == 1
    assert CaseService(runtime).count(alice, cap=5, customer="cust-b") == (2, False)
    # a customer's principal counts only its own cases, whatever it asks for
    customer_token(runtime, people, "cindy", "cust-b")
    cindy = people.by_name["cindy"]
    assert CaseService(runtime).count(cindy) == (2, False)
    assert CaseService(runtime).count(cindy, customer="cust-a") == (0, False)
    # a name two customers share names no one customer: refused, naming both ids
    with runtime.sessions.begin() as s:
        s.add(CustomerRow(id="cust-c", name="ACME analytics"))
    with pytest.raises(ConfigError, match="cust-a, cust-c"):
        views.queue(alice, QueueFilters.from_query({"customer": "Acme Analytics"}))


def test_mass_actions_go_through_the_case_service_as_the_signed_in_person(
    runtime: Runtime, clock: ManualClock, people: People
) -> None:
    refs = make_cases(runtime, clock, 3)
    alice = people["alice"]
    CaseService(runtime).transition(refs[2], "dismissed", by=alice, reason="duplicate")
    out = apply_to_selection(runtime, alice, refs, "transition", "notified", "")
    assert [(o.ref, o.ok) for o in out] == [(refs[0], True), (refs[1], True), (refs[2], False)]
    assert "dismissed" in out[2].message  # the lifecycle's refusal, naming the state
    out = apply_to_selection(runtime, alice, refs[:2], "propose", "suspend-service", "keeps scanning")
    assert all(o.ok and "proposed" in o.message for o in out)
    with runtime.sessions() as s:
        proposers = set(s.scalars(select(ActionRow.proposed_by).where(ActionRow.kind == "suspend-service")))
        notes = set(s.scalars(select(AuditRow.actor).where(AuditRow.action == "case.note")))
        states = set(s.scalars(select(CaseRow.state).where(CaseRow.ref.in_(refs[:2]))))
    assert states == {"escalated"}
    assert proposers == {alice.id} and notes == set()
    with pytest.raises(Conflict, match="is not an action"):
        apply_to_selection(runtime, alice, refs, "propose", "nuke", "")
    with pytest.raises(Conflict, match="select at least one case"):
        apply_to_selection(runtime, alice, [" "], "note", "", "x")
    with pytest.raises(Conflict, match="at most 200"):
        apply_to_selection(runtime, alice, [f"AD-{i}" for i in range(201)], "note", "", "x")
    # an auditor reads but changes nothing: each case says so
    out = apply_to_selection(runtime, people["audrey"], refs[:1], "note", "", "x")
    assert not out[0].ok and "may not case.change" in out[0].message


def test_discard_sets_a_quarantined_input_aside_with_a_reason(runtime: Runtime, people: People) -> None:
    from abusedesk.intake.triage import TriageService

    raw_id = quarantined(runtime)
    alice, triage = people["alice"], TriageService(runtime)
    with pytest.raises(Conflict, match="needs a reason"):
        triage.discard(alice, raw_id, reason="  ")
    with pytest.raises(Forbidden, match=r"may not triage\.change"):
        triage.discard(people["audrey"], raw_id, reason="spam to the abuse address")
    out = triage.discard(alice, raw_id, reason="spam to the abuse address")
    assert out["status"] == "discarded"
    assert ConsoleViews(runtime).triage(alice)["items"] == []
    with pytest.raises(Conflict, match="is discarded, not quarantined"):
        triage.discard(alice, raw_id, reason="again")
    with runtime.sessions() as s:
        entry = s.scalars(select(AuditRow).where(AuditRow.action == "raw.discarded")).one()
    assert entry.actor == alice.id and entry.payload["reason"] == "spam to the abuse address"
    assert triage.raw(alice, raw_id)[1] == b"\x00\x01 not a report"  # the bytes are kept
