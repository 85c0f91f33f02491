"""Running detectors as their interface promises: state per partition, windows flushed, state checkpointed.

The detect stage hands ``run`` the batch's events grouped by partition key (the service, else the source); the
flows stage hands it one flow frame per service (``telemetry/stage.py``). A
stateless detector (``new_state()`` is None) sees each partition's events once. A stateful one gets the state of
that (detector, partition) from ``detector_state`` — or a new one — then ``detect``, then ``flush`` up to the
partition's watermark (its newest event time), and its state is written back in the same transaction as the
stage's outputs and progress: a crash loses no open window and counts no event twice. ``finalize_all`` flushes
every open window (the end of a finite replay: ``abusedesk pipeline resume --finalize``).

Two transactions never update one (detector, partition) state at once: before a state is read, ``lock_states``
takes a transaction-scoped lock on it (PostgreSQL: one advisory lock per (detector, partition), taken in key
order; SQLite: the database's write lock, which serialises writers anyway but is otherwise taken only at the
first write, after the state was read). A second worker waits for the first one's commit and then reads the state
it wrote, so stages whose files hold the same partitions (``flows``) may run on several workers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import delete, false, select, text, tuple_, update
from sqlalchemy.orm import Session

from abusedesk.detectors.base import Detector
from abusedesk.domain.records import Event, Finding
from abusedesk.store.tables.bus import DetectorStateRow
from abusedesk.store.upsert import upsert

if TYPE_CHECKING:
    from abusedesk.runtime import Runtime


def watermark_of(batch: Sequence[Event] | pl.DataFrame) -> datetime:
    """The newest time in a batch: events' ``time``, a flow frame's newest ``time_end``, a weblog frame's newest
    ``time``."""
    if isinstance(batch, pl.DataFrame) and "time_end" not in batch.columns:  # a weblog frame: epoch seconds
        return datetime.fromtimestamp(float(batch["time"].max()), UTC)  # type: ignore[arg-type]
    if isinstance(batch, pl.DataFrame):
        newest = batch["time_end"].max()
        assert isinstance(newest, datetime)
        return newest
    return max(e.time for e in batch if isinstance(e, Event))


_PG_LOCK_IN_ORDER = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS s"
)


def state_lock_key(detector: str, partition: str) -> int:
    """The advisory lock key of one (detector, partition) state: a signed 64-bit hash."""
    digest = hashlib.blake2b(f"detector_state\0{detector}\0{partition}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_states(session: Session, pairs: Sequence[tuple[str, str]]) -> None:
    """Hold the (detector, partition) states until ``session``'s transaction ends, so that no other transaction
    reads them in between (see the module's docstring). Keys are locked in sorted order in one statement, so two
    transactions that each lock a set at once never deadlock."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        keys = sorted({state_lock_key(d, p) for d, p in pairs})
        session.execute(_PG_LOCK_IN_ORDER, {"keys": keys})
    else:  # SQLite: a write (of nothing) begins the transaction with the write lock, waiting for the holder's commit
        session.execute(update(DetectorStateRow).where(false()).values(updated_at=DetectorStateRow.updated_at))


class DetectorRunner:
    def __init__(self, rt: Runtime, detectors: Sequence[Detector]) -> None:
        self.rt = rt
        for detector in detectors:
            detector.bind(rt)
        self.stateless = [d for d in detectors if d.new_state() is None]
        self.stateful = [d for d in detectors if d.new_state() is not None]
        #: stateful detectors whose open windows may still claim an event (see Detector.holds_events)
        self.holding = [d for d in self.stateful if d.holds_events is not False]

    def run(self, session: Session, by_key: Mapping[str, Sequence[Event] | pl.DataFrame]) -> list[Finding]:
        return self.run_stream(session, [by_key])

    def run_stream(self, session: Session,
                   batches: Iterable[Mapping[str, Sequence[Event] | pl.DataFrame]]) -> list[Finding]:  # fmt: skip
        """``run`` over several batches in order inside one transaction (the chunks of one egress log): each
        (detector, partition) state is read once, carried from batch to batch in memory, and written once at the
        end, with the stage's outputs as ever."""
        findings: list[Finding] = []
        held: dict[tuple[str, str], Any] = {}
        had_row: set[tuple[str, str]] = set()
        by_name = {d.name: d for d in self.stateful}
        for by_key in batches:
            for key, events in by_key.items():
                for detector in self.stateless:
                    if detector.reads(key):
                        findings.extend(detector.detect(events, None))
            if not self.stateful or not by_key:
                continue
            wanted = [(d.name, key) for d in self.stateful for key in by_key if d.reads(key)]
            missing = [w for w in wanted if w not in held]
            if missing:
                lock_states(session, missing)
                for r in session.scalars(
                    select(DetectorStateRow).where(
                        tuple_(DetectorStateRow.detector, DetectorStateRow.partition_key).in_(missing)
                    )
                ):
                    held[(r.detector, r.partition_key)] = by_name[r.detector].load_state(dict(r.state))
                    had_row.add((r.detector, r.partition_key))
            for key, events in by_key.items():
                if len(events) == 0:
                    continue
                watermark = watermark_of(events)
                for detector in self.stateful:
                    if not detector.reads(key):
                        continue
                    state = held.get((detector.name, key))
                    if state is None:
                        state = held[(detector.name, key)] = detector.new_state()
                    findings.extend(detector.detect(events, state))
                    findings.extend(detector.flush(state, watermark))
        now = self.rt.clock.now()
        rows: list[dict[str, Any]] = []
        for (name, key), state in held.items():
            dumped = by_name[name].dump_state(state)
            if not dumped and (name, key) not in had_row:
                continue  # nothing to keep for this partition (e.g. no egress log request in it): no row
            rows.append({"detector": name, "partition_key": key, "state": dumped, "updated_at": now})
        if rows:
            upsert(session, DetectorStateRow.__table__, rows, ["state", "updated_at"])
        return findings

    def has_state(self, partition: str) -> bool:
        """Whether a stateful detector that holds events reads ``partition`` (its events may wait in an open
        window)."""
        return any(d.reads(partition) for d in self.holding)

    def finalize_all(self, session: Session) -> list[Finding]:
        """Every open window of every partition, flushed; the states are removed."""
        findings: list[Finding] = []
        by_name = {d.name: d for d in self.stateful}
        for row in session.scalars(select(DetectorStateRow).order_by(DetectorStateRow.detector,
                                                                      DetectorStateRow.partition_key)):  # fmt: skip
            detector = by_name.get(row.detector)
            if detector is not None:
                findings.extend(detector.finalize(detector.load_state(dict(row.state))))
        session.execute(delete(DetectorStateRow).where(DetectorStateRow.detector.in_(list(by_name))))
        return findings
