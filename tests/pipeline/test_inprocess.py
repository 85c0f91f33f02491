"""The proof of the spine on the in-process bus (``abusedesk serve``): input → finding, replays, crashes."""

from __future__ import annotations

import threading

import pytest
from typer.testing import CliRunner

from abusedesk.bus.base import InProcessBus, StageBatch
from abusedesk.bus.deadletters import DeadLetterTable
from abusedesk.bus.worker import replay_raw, republish_unparsed, run_embedded
from abusedesk.cli.main import app
from abusedesk.intake.service import IntakeService
from abusedesk.pipeline import AttributeStage, DetectStage
from abusedesk.runtime import Runtime
from tests.pipeline.spine import (
    SPAM_IP,
    arf_report,
    assert_no_duplicate_audit,
    assert_replay_audit_only,
    counts,
    last_audit_seq,
    the_finding,
)

ONE_EACH = {"raw_inputs": 1, "events": 1, "findings": 1, "cases": 1}


def core(c: dict[str, int]) -> dict[str, int]:
    return {k: c[k] for k in ONE_EACH}


def test_a_raw_report_becomes_a_stored_finding_citing_a_clause(spine_rt: Runtime) -> None:
    intake = IntakeService(spine_rt)
    accepted = intake.accept(arf_report(), channel="test")
    spine_rt.drain()
    finding = the_finding(spine_rt)
    assert finding.clauses[0] == "1.11"  # spam: the policy's clause for unsolicited mail
    assert finding.kind == "spam"
    assert finding.subject_ip == SPAM_IP
    assert (finding.customer_id, finding.service_id) == ("cus_acme", "svc_acme_mx")
    assert finding.case_id is not None
    assert core(counts(spine_rt)) == ONE_EACH
    assert isinstance(spine_rt.bus, InProcessBus)
    assert spine_rt.bus.dead_letters == []
    assert accepted.raw.id in str(finding.data)  # the finding cites the raw input it came from
    assert_no_duplicate_audit(spine_rt)


def test_replaying_the_same_input_changes_nothing(spine_rt: Runtime) -> None:
    intake = IntakeService(spine_rt)
    accepted = intake.accept(arf_report(), channel="test")
    spine_rt.drain()
    before = counts(spine_rt)
    seq = last_audit_seq(spine_rt)
    again = intake.accept(arf_report(), channel="test")  # the same bytes sent again
    assert again.duplicate
    spine_rt.drain()
    assert replay_raw(spine_rt, [accepted.raw.id]) == 1
    assert replay_raw(spine_rt) == 1  # everything since the beginning: the one input
    after = counts(spine_rt)
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items() if k != "audit_log"}
    assert after["audit_log"] == before["audit_log"] + 2  # the two re-parses, and nothing else
    assert_replay_audit_only(spine_rt, seq)
    assert_no_duplicate_audit(spine_rt)


def test_crash_after_storing_before_parsing_is_recovered_on_restart(spine_rt: Runtime) -> None:
    # the first process stores the input and dies before it drains: the hand-off waits in the outbox
    IntakeService(spine_rt).accept(arf_report(), channel="test")
    assert counts(spine_rt)["events"] == 0
    restarted = Runtime(spine_rt.settings, clock=spine_rt.clock, engine=spine_rt.engine)
    stats = run_embedded(restarted, threading.Event(), max_loops=1)  # what `abusedesk serve` runs on start
    assert stats.handled >= 4  # parse, attribute, detect + replies, cases
    assert core(counts(restarted)) == ONE_EACH
    the_finding(restarted)
    # another restart finds nothing to recover and changes nothing
    before = counts(restarted)
    again = Runtime(spine_rt.settings, clock=spine_rt.clock, engine=spine_rt.engine)
    assert republish_unparsed(again) == 0
    again.drain()
    assert counts(again) == before
    assert_no_duplicate_audit(again)


def test_handler_failing_after_it_stored_its_work_is_retried_without_duplicates(
    spine_rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = AttributeStage.handle
    calls: list[int] = []

    def crash_once_after_work(self: AttributeStage, batch: StageBatch) -> None:
        real(self, batch)  # events updated and events.attributed emitted ...
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("simulated crash after the attribute stage stored its work")  # ... then it dies

    monkeypatch.setattr(AttributeStage, "handle", crash_once_after_work)
    intake = IntakeService(spine_rt)
    intake.accept(arf_report(), channel="test")
    spine_rt.drain()
    assert len(calls) == 2  # run again once: the first run's writes and outputs were rolled back with it
    assert core(counts(spine_rt)) == ONE_EACH
    assert isinstance(spine_rt.bus, InProcessBus)
    assert spine_rt.bus.dead_letters == []
    assert_no_duplicate_audit(spine_rt)


def test_dead_letter_is_persisted_shown_and_replayed_after_the_fix(
    spine_rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = DetectStage.handle
    broken = [True]

    def detect(self: DetectStage, batch: StageBatch) -> None:
        if broken[0]:
            raise RuntimeError("detector bug: index out of range")
        real(self, batch)

    monkeypatch.setattr(DetectStage, "handle", detect)
    intake = IntakeService(spine_rt)
    intake.accept(arf_report(), channel="test")
    spine_rt.drain()
    assert counts(spine_rt)["findings"] == 0
    [letter] = DeadLetterTable(spine_rt).list()
    assert letter.subject == "events.attributed"
    assert "detector bug" in letter.error
    assert "RuntimeError" in letter.traceback
    assert letter.attempts == 3
    assert letter.message["events"][0]["source.ip"] == SPAM_IP or SPAM_IP in str(letter.message)

    cli = CliRunner()
    base = ["--data-dir", str(spine_rt.settings.data_dir), "--database-url", spine_rt.settings.sqlalchemy_url]
    shown = cli.invoke(app, [*base, "dlq", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    assert letter.id in shown.output and "detector bug" in shown.output
    assert cli.invoke(app, [*base, "dlq", "replay"]).exit_code == 2  # neither ids nor --all
    assert cli.invoke(app, [*base, "dlq", "replay", "dl_nope"]).exit_code == 1

    # still broken: the replay fails again, is dead-lettered again, and the command says so
    failed = cli.invoke(app, [*base, "dlq", "replay", letter.id])
    assert failed.exit_code == 1 and "failed again" in failed.output
    assert len(DeadLetterTable(spine_rt).list()) == 1

    broken[0] = False  # the fix is deployed
    fixed = cli.invoke(app, [*base, "dlq", "replay", "--all", "--json"])
    assert fixed.exit_code == 0, fixed.output
    assert DeadLetterTable(spine_rt).list() == []
    assert core(counts(spine_rt)) == ONE_EACH
    assert "no dead letters" in cli.invoke(app, [*base, "dlq", "show"]).output
    assert_no_duplicate_audit(spine_rt)


def test_an_event_of_ours_that_no_detector_claims_ends_in_triage(spine_rt: Runtime) -> None:
    """Below the reported detector's confidence: no finding, but not left 'attributed' either — an analyst's."""
    from datetime import UTC, datetime

    from abusedesk.domain.records import Event
    from abusedesk.intake.service import event_row
    from abusedesk.store.tables.intake import EventRow

    weak = Event.create(
        kind="spam", time=datetime(2026, 3, 1, 9, tzinfo=UTC), feed="test", source_ip=SPAM_IP, confidence=0.2
    )
    with spine_rt.sessions.begin() as s:
        s.add(EventRow(**event_row(weak)))
    spine_rt.bus.publish("events.parsed", {"events": [weak.to_dict()]})
    spine_rt.drain()
    with spine_rt.sessions() as s:
        row = s.get(EventRow, weak.id)
        assert row is not None
        assert (row.service_id, row.disposition) == ("svc_acme_mx", "triage")
    assert counts(spine_rt)["findings"] == 0


def test_drain_soon_from_many_threads_drains_everything_one_drain_at_a_time(spine_rt: Runtime) -> None:
    """The API asks for a drain after each accept: concurrent requests must not run concurrent drains (they took
    the same outbox rows and rolled each other back, issue 14), and no input may be left behind by the one that
    returned early because another thread was draining."""
    intake = IntakeService(spine_rt)
    pipeline = spine_rt.pipeline
    real_drain = pipeline.drain
    active, most, calls = [0], [0], [0]
    gate = threading.Lock()

    def counting_drain(**kwargs: object) -> int:  # the real drain, counted
        with gate:
            active[0] += 1
            calls[0] += 1
            most[0] = max(most[0], active[0])
        try:
            return real_drain(**kwargs)  # type: ignore[arg-type]
        finally:
            with gate:
                active[0] -= 1

    pipeline.drain = counting_drain  # type: ignore[method-assign]

    def request(n: int) -> None:
        intake.accept(arf_report(n, tag="soon"), channel="test")
        spine_rt.drain_soon()

    threads = [threading.Thread(target=request, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert most[0] == 1 and calls[0] >= 1
    c = counts(spine_rt)
    assert c["raw_inputs"] == c["events"] == c["findings"] == 8
    assert pipeline.drain() == 0  # nothing left waiting


def test_drain_soon_wakes_the_serve_loop_instead_of_draining(spine_rt: Runtime) -> None:
    wake = threading.Event()
    spine_rt.pipeline_wake = wake
    IntakeService(spine_rt).accept(arf_report(), channel="test")
    spine_rt.drain_soon()
    assert wake.is_set()
    assert counts(spine_rt)["events"] == 0  # left for the loop
    stop = threading.Event()
    run_embedded(spine_rt, stop, max_loops=1, wake=wake)
    assert counts(spine_rt)["events"] == 1
