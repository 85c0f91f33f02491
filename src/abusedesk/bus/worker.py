"""The worker loops: one stage per process over NATS (``abusedesk worker --stage STAGE``), every stage in one
process over the in-process bus (``abusedesk serve``), and pipeline recovery.

Which stages exist, what they read and which class handles them is the stage table (``abusedesk.stages``); both
loops run the handlers of that table through ``StageRunner`` (``bus/runner.py``), so the two modes run the same
code. Timer stages (``scheduler``, ``actions``) tick every ``tick_interval`` seconds instead.

On NATS a batch of deliveries is handled in one transaction that also records the messages in the stage's
ledger (``pipeline_ledger``); then the outputs are relayed and the deliveries acked. A redelivery of a message
the ledger has is acked without running the handler again. A failing batch is run message by message; a
message that fails is nak'ed with backoff and dead-lettered after ``max_attempts``. A ``ConfigError`` stops the
worker. The broad ``except Exception`` of the pipeline lives here and in ``bus/runner.py`` and nowhere else.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from abusedesk.bus.base import InProcessBus, MessagesTaken, weight_of
from abusedesk.bus.runner import StageRunner
from abusedesk.domain.errors import ConfigError, SourceUnavailable
from abusedesk.stages import RAW_STORED, STAGES, StageSpec, stage, timer_stages
from abusedesk.store.tables.bus import StageLedgerRow

if TYPE_CHECKING:
    from abusedesk.bus.nats import Delivery, NatsBus, Partition
    from abusedesk.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ERRORS = 100  # a long-running worker keeps only the latest errors in its stats
RECONNECT_PAUSE = 1.0  # seconds between fetches while NATS is unreachable
RELAY_INTERVAL = 5.0  # seconds between looks for outbox rows a crashed process left unrelayed
LEDGER_KEEP = timedelta(days=7)  # how long a handled message id is remembered (redeliveries come within ack_wait)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


@dataclass(slots=True)
class WorkerStats:
    stage: str
    handled: int = 0
    retried: int = 0
    dead_lettered: int = 0
    skipped: int = 0  # redeliveries of messages the ledger had: acked, not handled again
    ticks: int = 0
    recovered: int = 0
    errors: list[str] = field(default_factory=list)  # the last MAX_ERRORS, newest last

    def note_error(self, text: str) -> None:
        self.errors.append(text)
        del self.errors[:-MAX_ERRORS]


def check_stage(name: str) -> None:
    stage(name)


def run_worker(
    rt: Runtime,
    name: str,
    stop_event: threading.Event,
    *,
    once: bool = False,
    partition: Partition | None = None,
    batch: int | None = None,
    wait: float = 1.0,
    tick_interval: float = 30.0,
) -> WorkerStats:
    """Run one stage until ``stop_event`` is set (or, with ``once``, until its subject is empty / one tick).

    Raises ConfigError (the worker must stop: a bad setting, a broken module, the wrong bus).
    """
    spec = stage(name)
    stats = WorkerStats(name)
    if spec.is_timer:
        ticker = spec.build(rt)
        while not stop_event.is_set():
            _tick(name, ticker, stats)
            if once:
                break
            stop_event.wait(tick_interval)
        return stats

    from abusedesk.bus.nats import NatsBus

    bus = rt.bus
    if not isinstance(bus, NatsBus):
        raise ConfigError(
            f"abusedesk worker --stage {name} reads from NATS JetStream, but setting 'bus' is not 'nats'; "
            "with the in-process bus `abusedesk serve` runs every stage",
            field="bus",
        )
    runner = StageRunner(rt, spec)
    bus.connect()  # the first connection fails fast (SourceUnavailable); after it, the client reconnects for ever
    stats.recovered = bus.relay_pending()
    size = batch or spec.batch
    next_relay = time.monotonic() + RELAY_INTERVAL
    while not stop_event.is_set():
        try:
            deliveries = bus.fetch(
                spec.subject or "", name=spec.name, partition=partition if spec.partitioned else None,
                batch=size, wait=wait,
            )  # fmt: skip
            if not deliveries and once:
                break
            if deliveries:
                if stop_event.is_set():
                    for d in deliveries:
                        d.release()
                    continue
                for group in by_items(deliveries, spec.max_items):
                    handle_deliveries(rt, bus, runner, group, stats)
            if time.monotonic() >= next_relay:
                stats.recovered += bus.relay_pending()
                prune_ledger(rt)
                next_relay = time.monotonic() + RELAY_INTERVAL
        except SourceUnavailable as exc:
            # NATS is restarting or unreachable: the client reconnects; unacked messages come back later
            log.warning("stage %s: %s; trying again in %.0fs", name, exc.message, RECONNECT_PAUSE)
            stats.note_error(exc.message)
            stop_event.wait(RECONNECT_PAUSE)
    return stats


def by_items(deliveries: Sequence[Delivery], max_items: int) -> list[list[Delivery]]:
    """Deliveries cut into batches of at most ``max_items`` events or findings (at least one delivery each)."""
    groups: list[list[Delivery]] = []
    total = max_items + 1
    for d in deliveries:
        w = weight_of(d.message)
        if total + w > max_items:
            groups.append([])
            total = 0
        groups[-1].append(d)
        total += w
    return groups


def _tick(name: str, ticker: Any, stats: WorkerStats) -> None:
    try:
        ticker.tick()
        stats.ticks += 1
    except ConfigError:
        raise
    except Exception as exc:  # the worker loop: log, keep ticking
        log.exception("stage %s: tick failed", name)
        stats.note_error(f"{name}: {type(exc).__name__}: {exc}")


def _ledger(stage_name: str, deliveries: Sequence[Delivery], now: datetime) -> Any:
    def consume(session: Session) -> None:
        session.execute(
            insert(StageLedgerRow),
            [{"stage": stage_name, "message_id": d.message_id, "done_at": now} for d in deliveries],
        )

    return consume


def handle_deliveries(
    rt: Runtime, bus: NatsBus, runner: StageRunner, deliveries: Sequence[Delivery], stats: WorkerStats
) -> None:
    """One batch of NATS deliveries: skip what the ledger has, handle the rest in one transaction, ack."""
    ids = [d.message_id for d in deliveries]
    with rt.sessions() as s:
        done = set(
            s.scalars(
                select(StageLedgerRow.message_id).where(
                    StageLedgerRow.stage == runner.name, StageLedgerRow.message_id.in_(ids)
                )
            )
        )
    fresh: list[Delivery] = []
    for d in deliveries:
        if d.message_id in done or any(f.message_id == d.message_id for f in fresh):
            d.ack()  # its work is committed: a crash came between the commit and the ack
            stats.skipped += 1
        else:
            fresh.append(d)
    if not fresh:
        return
    try:
        with _working(fresh):
            runner.run([d.message for d in fresh], _ledger(runner.name, fresh, rt.clock.now()))
    except ConfigError:
        for d in fresh:
            d.release()
        raise
    except Exception as exc:  # the worker loop: isolate the bad message
        if len(fresh) == 1:
            _failed(bus, runner.name, fresh[0], exc, stats)
            return
        log.warning("stage %s: a batch of %d failed (%s); handling its messages one by one", runner.name,
                    len(fresh), exc)  # fmt: skip
        for d in fresh:
            try:
                with d.working():
                    runner.run([d.message], _ledger(runner.name, [d], rt.clock.now()))
            except ConfigError:
                d.release()
                raise
            except Exception as one:  # the worker loop: retry with backoff, then dead-letter
                _failed(bus, runner.name, d, one, stats)
                continue
            d.ack()
            stats.handled += 1
        return
    for d in fresh:
        d.ack()
    stats.handled += len(fresh)


class _working:
    """Keep every delivery of a batch "in progress" while its handler runs."""

    def __init__(self, deliveries: Sequence[Delivery]) -> None:
        self.deliveries = deliveries

    def __enter__(self) -> None:
        self._stop = threading.Event()
        first = self.deliveries[0]
        interval = max(first.bus.ack_wait / 3, 0.05)

        def beat() -> None:
            while not self._stop.wait(interval):
                for d in self.deliveries:
                    try:
                        d.in_progress()
                    except SourceUnavailable as exc:
                        log.warning("in-progress signal on %s failed: %s", d.subject, exc.message)

        self._thread = threading.Thread(target=beat, name="abusedesk-nats-progress", daemon=True)
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.deliveries[0].bus.timeout)


def _failed(bus: NatsBus, name: str, delivery: Delivery, exc: Exception, stats: WorkerStats) -> None:
    error = f"{type(exc).__name__}: {exc}"
    stats.note_error(error)
    if isinstance(exc, MessagesTaken):
        return
    if delivery.is_last_attempt:
        delivery.dead_letter(error, "".join(traceback.format_exception(exc)))
        stats.dead_lettered += 1
    else:
        delay = delivery.retry()
        stats.retried += 1
        log.warning("stage %s: attempt %d of %d failed (%s); redelivery in %.1fs", name, delivery.attempt,
                    bus.max_attempts, error, delay)  # fmt: skip


def prune_ledger(rt: Runtime) -> int:
    """Forget handled message ids older than ``LEDGER_KEEP``."""
    cutoff = rt.clock.now() - LEDGER_KEEP
    with rt.sessions.begin() as s:
        result = s.execute(delete(StageLedgerRow).where(StageLedgerRow.done_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- recovery -----------------------------------------------------------------------------------------------------


def unparsed_raw_ids(rt: Runtime, *, older_than: timedelta = timedelta(0)) -> list[str]:
    """Raw inputs stored but not parsed yet, oldest first."""
    from abusedesk.store.tables.intake import RawInputRow

    cutoff: datetime = rt.clock.now() - older_than
    with rt.sessions() as s:
        return list(
            s.scalars(
                select(RawInputRow.id)
                .where(RawInputRow.status == "stored", RawInputRow.received_at <= cutoff)
                .order_by(RawInputRow.received_at, RawInputRow.id)
            )
        )


def republish_unparsed(rt: Runtime, *, older_than: timedelta = timedelta(0)) -> int:
    """Hand ``raw.stored`` on again for every stored-but-unparsed input (parsing is idempotent, so it is safe).

    With durable hand-offs no input is stranded this way; this is for a database written before them, or an
    operator's ``pipeline resume --stored``.
    """
    raw_ids = unparsed_raw_ids(rt, older_than=older_than)
    if raw_ids:
        with rt.sessions.begin() as s:
            for raw_id in raw_ids:
                rt.bus.put(s, RAW_STORED, {"raw_id": raw_id})
        rt.bus.flush()
        log.info("handed raw.stored on again for %d stored but unparsed input(s)", len(raw_ids))
    return len(raw_ids)


def replay_raw(rt: Runtime, raw_ids: list[str] | None = None, *, since: datetime | None = None) -> int:
    """Run raw inputs through the whole pipeline again (every stage is idempotent): after a parser fix, or to
    check a change. ``raw_ids`` None = every stored or parsed input received since ``since`` (all if None)."""
    from abusedesk.store.tables.intake import RawInputRow

    if raw_ids is None:
        with rt.sessions() as s:
            stmt = select(RawInputRow.id).where(RawInputRow.status.in_(("stored", "parsed")))
            if since is not None:
                stmt = stmt.where(RawInputRow.received_at >= since)
            raw_ids = list(s.scalars(stmt.order_by(RawInputRow.received_at, RawInputRow.id)))
    mark = rt.clock.now().isoformat()
    with rt.sessions.begin() as s:
        for raw_id in raw_ids:
            rt.bus.put(s, RAW_STORED, {"raw_id": raw_id, "replay": mark})
    rt.bus.flush()
    rt.drain()
    return len(raw_ids)


def run_embedded(
    rt: Runtime,
    stop_event: threading.Event,
    *,
    drain_interval: float = 0.5,
    tick_interval: float = 30.0,
    max_loops: int | None = None,
    wake: threading.Event | None = None,
) -> WorkerStats:
    """``abusedesk serve``'s background loop: drain the in-process pipeline, and tick the timer stages.

    ``wake`` (set by the door after an accept) cuts the wait short, so a report does not wait for the next
    interval; ``max_loops`` bounds the loop for tests.
    """
    stats = WorkerStats("embedded")
    if not isinstance(rt.bus, InProcessBus):
        raise ConfigError("the embedded pipeline loop needs setting 'bus' = 'inprocess'", field="bus")
    tickers: list[tuple[StageSpec, Any]] = [(spec, spec.build(rt)) for spec in timer_stages()]
    pipeline = rt.pipeline
    next_tick = 0.0
    loops = 0
    while not stop_event.is_set():
        try:
            stats.handled += pipeline.drain()
        except ConfigError:
            raise
        except Exception as exc:  # the worker loop: a failing dead-letter sink must not stop serve
            log.exception("serve: draining the in-process pipeline failed")
            stats.note_error(f"{type(exc).__name__}: {exc}")
        if time.monotonic() >= next_tick:
            for spec, ticker in tickers:
                _tick(spec.name, ticker, stats)
            next_tick = time.monotonic() + tick_interval
        loops += 1
        if max_loops is not None and loops >= max_loops:
            break
        if wake is not None:
            wake.wait(drain_interval)
            wake.clear()
        else:
            stop_event.wait(drain_interval)
    stats.dead_lettered = len(rt.bus.dead_letters)
    return stats
