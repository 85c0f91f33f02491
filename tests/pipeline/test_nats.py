"""The proof of the spine on NATS JetStream, one worker thread per stage (as ``abusedesk worker --stage``)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from abusedesk.bus.nats import Delivery, NatsBus, Partition
from abusedesk.bus.worker import WorkerStats, replay_raw, run_worker
from abusedesk.intake.service import IntakeService
from abusedesk.pipeline import AttributeStage
from abusedesk.runtime import Runtime
from abusedesk.stages import message_stages
from tests.pipeline.spine import (
    SPAM_IP,
    arf_report,
    assert_no_duplicate_audit,
    assert_replay_audit_only,
    counts,
    last_audit_seq,
    the_finding,
)

_streams = itertools.count()
ONE_EACH = {"raw_inputs": 1, "events": 1, "findings": 1, "cases": 1}


def core(c: dict[str, int]) -> dict[str, int]:
    return {k: c[k] for k in ONE_EACH}


@dataclass
class Cluster:
    """Worker threads, each with its own Runtime and NATS connection, over one database and one stream."""

    base: Runtime
    nats_url: str
    stream: str
    prefix: str
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    runtimes: list[Runtime] = field(default_factory=list)
    results: dict[str, list[Any]] = field(default_factory=dict)
    # stages read through partitioned consumers: the backlog is read from those (all slots: 0 of 1)
    partitions: dict[str, Partition] = field(default_factory=dict)

    def runtime(self) -> Runtime:
        bus = NatsBus(
            self.nats_url,
            stream=self.stream,
            prefix=self.prefix,
            max_attempts=3,
            backoff=(0.05, 0.1),
            ack_wait=2.0,
            timeout=5.0,
        )
        rt = Runtime(self.base.settings, clock=self.base.clock, bus=bus, engine=self.base.engine)
        self.runtimes.append(rt)
        return rt

    def start(self, stage: str, partition: Partition | None = None) -> threading.Thread:
        rt = self.runtime()

        def run() -> None:
            try:
                stats: WorkerStats | BaseException = run_worker(rt, stage, self.stop, wait=0.2, partition=partition)
            except BaseException as exc:  # a simulated crash ends the thread, as it would end the process
                stats = exc
            self.results.setdefault(stage, []).append(stats)

        thread = threading.Thread(target=run, name=f"worker-{stage}", daemon=True)
        thread.start()
        self.threads.append(thread)
        return thread

    def start_all(self) -> None:
        for spec in message_stages():
            self.start(spec.name)

    def backlog(self, probe: NatsBus) -> dict[str, int]:
        return {
            s.name: probe.backlog(s.subject or "", self.partitions.get(s.name), name=s.name) for s in message_stages()
        }

    def settle(self, done: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait until ``done()`` and every stage's consumer has nothing pending or unacked."""
        probe = self.runtimes[0].bus if self.runtimes else self.runtime().bus
        assert isinstance(probe, NatsBus)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done() and not any(self.backlog(probe).values()):
                return
            time.sleep(0.1)
        raise AssertionError(
            f"the pipeline did not settle in {timeout}s: {counts(self.base)}; backlog "
            f"{self.backlog(probe)}; workers ended with "
            f"{self.results}; dead letters {[(d.subject, d.error) for d in probe.dead_letters()]}"
        )

    def shutdown(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)
        for rt in self.runtimes:
            rt.bus.close()


@pytest.fixture
def cluster(spine_rt: Runtime, nats_url: str) -> Iterator[Cluster]:
    n = next(_streams)
    c = Cluster(spine_rt, nats_url, stream=f"PIPE{n}", prefix=f"pipe{n}")
    yield c
    c.shutdown()


def publisher(cluster: Cluster) -> IntakeService:
    return IntakeService(cluster.runtime())


def findings_are(n: int, rt: Runtime) -> Callable[[], bool]:
    return lambda: counts(rt)["findings"] == n


def test_a_raw_report_becomes_a_finding_across_stage_workers(cluster: Cluster) -> None:
    cluster.start_all()
    publisher(cluster).accept(arf_report(), channel="test")
    cluster.settle(findings_are(1, cluster.base))
    finding = the_finding(cluster.base)
    assert finding.clauses[0] == "1.11"
    assert finding.subject_ip == SPAM_IP
    assert finding.service_id == "svc_acme_mx"
    assert core(counts(cluster.base)) == ONE_EACH
    assert_no_duplicate_audit(cluster.base)


def test_replay_over_nats_changes_nothing(cluster: Cluster) -> None:
    cluster.start_all()
    door = publisher(cluster)
    accepted = door.accept(arf_report(), channel="test")
    cluster.settle(findings_are(1, cluster.base))
    before = counts(cluster.base)
    seq = last_audit_seq(cluster.base)
    assert door.accept(arf_report(), channel="test").duplicate
    assert replay_raw(door.rt, [accepted.raw.id]) == 1
    cluster.settle(lambda: counts(cluster.base)["audit_log"] > before["audit_log"])
    after = counts(cluster.base)
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items() if k != "audit_log"}
    assert after["audit_log"] == before["audit_log"] + 1  # the re-parse, and nothing else
    assert_replay_audit_only(cluster.base, seq)
    assert_no_duplicate_audit(cluster.base)


def test_crash_between_storing_and_publishing_is_recovered_by_the_parse_worker(cluster: Cluster) -> None:
    # stored and committed with its hand-off, but the process died before the relay to NATS
    lost = cluster.runtime()
    lost.bus.flush = lambda: None  # type: ignore[method-assign]
    IntakeService(lost).accept(arf_report(), channel="test")
    cluster.start_all()  # every worker relays what the outbox holds on start
    cluster.settle(findings_are(1, cluster.base))
    assert core(counts(cluster.base)) == ONE_EACH
    assert_no_duplicate_audit(cluster.base)


def test_worker_dying_after_its_commit_before_the_ack_is_redelivered_and_skipped(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = AttributeStage.handle
    real_ack = Delivery.ack
    calls: list[int] = []
    acks: list[int] = []

    def counted(self: AttributeStage, batch: Any) -> None:
        calls.append(1)
        real(self, batch)

    def die_at_first_ack(self: Delivery) -> None:
        if self.subject == "events.parsed" and not acks:
            acks.append(1)  # the work is committed and relayed; the process dies before its ack
            raise SystemExit("simulated crash of the attribute worker before its ack")
        real_ack(self)

    monkeypatch.setattr(AttributeStage, "handle", counted)
    monkeypatch.setattr(Delivery, "ack", die_at_first_ack)
    for stage in ("parse", "detect", "replies", "cases"):
        cluster.start(stage)
    first = cluster.start("attribute")
    publisher(cluster).accept(arf_report(), channel="test")
    first.join(20)
    assert not first.is_alive()
    assert isinstance(cluster.results["attribute"][0], SystemExit)
    cluster.start("attribute")  # the replacement worker gets the unacked message after ack_wait
    cluster.settle(lambda: counts(cluster.base)["findings"] == 1)
    cluster.shutdown()
    assert len(calls) == 1  # the ledger knew the redelivered message: acked, not handled again
    replacement = cluster.results["attribute"][1]
    assert isinstance(replacement, WorkerStats) and (replacement.skipped, replacement.handled) == (1, 0)
    assert core(counts(cluster.base)) == ONE_EACH
    assert_no_duplicate_audit(cluster.base)


def test_handler_raising_after_its_work_is_retried_then_dead_lettered_and_replayed(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = AttributeStage.handle
    calls: list[int] = []
    broken = [True]

    def raise_after_work(self: AttributeStage, message: Any) -> None:
        real(self, message)
        calls.append(1)
        if broken[0]:
            raise RuntimeError("attribute stage bug after storing")

    monkeypatch.setattr(AttributeStage, "handle", raise_after_work)
    cluster.start_all()
    door = publisher(cluster)
    door.accept(arf_report(), channel="test")
    bus = door.rt.bus
    assert isinstance(bus, NatsBus)
    cluster.settle(lambda: len(bus.dead_letters()) == 1)
    assert len(calls) == 3  # max_attempts deliveries, with backoff between them
    [letter] = bus.dead_letters()
    assert letter.subject == "events.parsed"
    assert "attribute stage bug" in letter.error and "RuntimeError" in letter.traceback
    # each attempt's work was rolled back with it: nothing went on
    assert counts(cluster.base)["findings"] == 0
    broken[0] = False
    bus.replay_dead_letters([letter.id])
    cluster.settle(lambda: len(calls) == 4)
    assert bus.dead_letters() == []
    assert core(counts(cluster.base)) == ONE_EACH
    cluster.shutdown()
    [stats] = cluster.results["attribute"]
    assert isinstance(stats, WorkerStats)
    assert (stats.retried, stats.dead_lettered, stats.handled) == (2, 1, 1)
    assert_no_duplicate_audit(cluster.base)


def test_partitioned_detect_workers_share_the_slots_without_duplicates(cluster: Cluster) -> None:
    for stage in ("parse", "attribute", "replies", "cases"):
        cluster.start(stage)
    cluster.partitions["detect"] = Partition(0, 1)  # every slot's durable, for the backlog
    cluster.start("detect", Partition(0, 2))
    cluster.start("detect", Partition(1, 2))
    door = publisher(cluster)
    for n in range(1, 7):  # six reports about the same sender, minutes apart
        door.accept(arf_report(n), channel="test")
    cluster.settle(findings_are(6, cluster.base))
    c = counts(cluster.base)
    assert (c["raw_inputs"], c["events"], c["findings"], c["cases"]) == (6, 6, 6, 1)
    cluster.shutdown()
    handled = [r.handled for r in cluster.results["detect"] if isinstance(r, WorkerStats)]
    assert len(handled) == 2 and sum(handled) >= 1  # batches of one partition key each
    assert_no_duplicate_audit(cluster.base)
