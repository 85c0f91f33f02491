"""The worker loop: one pipeline stage per process (``abusedesk worker --stage STAGE``), and pipeline recovery.

Message stages read their subject from NATS JetStream and run the same handler ``abusedesk serve`` runs in
process:

==========  ======================  ==========================================
stage       subject                 handler
==========  ======================  ==========================================
parse       ``raw.stored``          ``IntakeService.handle_stored``
attribute   ``events.parsed``       ``AttributeStage.handle``
detect      ``events.attributed``   ``DetectStage.handle``
cases       ``findings.new``        ``CaseEngine.handle``
==========  ======================  ==========================================

Timer stages tick instead: ``scheduler`` calls ``Scheduler(rt).tick()`` (case deadlines) and ``actions`` calls
``ActionRunner(rt).run_pending(now)``, every ``tick_interval`` seconds.

A handler that raises is retried with backoff and dead-lettered after the bus's ``max_attempts``; a
``ConfigError`` stops the worker (the message goes back to the stream for a fixed worker). The broad
``except Exception`` of the whole stage pipeline lives here and nowhere else.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from abusedesk.bus.base import Handler, InProcessBus
from abusedesk.domain.errors import ConfigError, SourceUnavailable

if TYPE_CHECKING:
    from abusedesk.bus.nats import NatsBus, Partition
    from abusedesk.runtime import Runtime

log = logging.getLogger(__name__)

MESSAGE_STAGES: dict[str, str] = {
    "parse": "raw.stored",
    "attribute": "events.parsed",
    "detect": "events.attributed",
    "cases": "findings.new",
}
TIMER_STAGES = ("scheduler", "actions")
MAX_ERRORS = 100  # a long-running worker keeps only the latest errors in its stats
RECONNECT_PAUSE = 1.0  # seconds between fetches while NATS is unreachable
STAGES: tuple[str, ...] = (*MESSAGE_STAGES, *TIMER_STAGES)


@dataclass(slots=True)
class WorkerStats:
    stage: str
    handled: int = 0
    retried: int = 0
    dead_lettered: int = 0
    ticks: int = 0
    recovered: int = 0
    errors: list[str] = field(default_factory=list)  # the last MAX_ERRORS, newest last

    def note_error(self, text: str) -> None:
        self.errors.append(text)
        del self.errors[:-MAX_ERRORS]


def stage_handler(rt: Runtime, stage: str) -> tuple[str, Handler]:
    """The (subject, handler) of a message stage, built over ``rt``."""
    if stage == "parse":
        from abusedesk.intake.service import IntakeService

        return MESSAGE_STAGES[stage], IntakeService(rt).handle_stored
    if stage == "attribute":
        from abusedesk.pipeline import AttributeStage

        return MESSAGE_STAGES[stage], AttributeStage(rt).handle
    if stage == "detect":
        from abusedesk.pipeline import DetectStage

        return MESSAGE_STAGES[stage], DetectStage(rt).handle
    if stage == "cases":
        try:
            from abusedesk.cases.engine import CaseEngine
        except ImportError as exc:
            raise ConfigError(f"stage 'cases' needs abusedesk.cases.engine, which cannot be imported: {exc}") from exc
        return MESSAGE_STAGES[stage], CaseEngine(rt).handle
    raise ConfigError(f"stage {stage!r} is not a message stage; choose one of {', '.join(MESSAGE_STAGES)}")


def timer_tick(rt: Runtime, stage: str) -> Callable[[], Any]:
    """The periodic call of a timer stage; a ConfigError when its module is not there."""
    if stage == "scheduler":
        try:
            from abusedesk.cases.scheduler import Scheduler
        except ImportError as exc:
            raise ConfigError(f"stage 'scheduler' needs abusedesk.cases.scheduler: {exc}") from exc
        scheduler = Scheduler(rt)
        return lambda: scheduler.tick()
    if stage == "actions":
        try:
            from abusedesk.actions.runner import ActionRunner
        except ImportError as exc:
            raise ConfigError(f"stage 'actions' needs abusedesk.actions.runner: {exc}") from exc
        from abusedesk.actions.runner import NoticeDispatcher

        runner = ActionRunner(rt)
        dispatcher = NoticeDispatcher(rt)

        def run_actions() -> None:
            # actions first: a notice action files its notice, which may be due at once (critical clauses)
            now = rt.clock.now()
            runner.run_pending(now)
            dispatcher.send_due(now)

        return run_actions
    raise ConfigError(f"stage {stage!r} is not a timer stage; choose one of {', '.join(TIMER_STAGES)}")


def check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}", field="stage")


def run_worker(
    rt: Runtime,
    stage: str,
    stop_event: threading.Event,
    *,
    once: bool = False,
    partition: Partition | None = None,
    batch: int = 10,
    wait: float = 1.0,
    tick_interval: float = 30.0,
) -> WorkerStats:
    """Run one stage until ``stop_event`` is set (or, with ``once``, until its subject is empty / one tick).

    Raises ConfigError (the worker must stop: a bad setting, a missing module, the wrong bus).
    """
    check_stage(stage)
    stats = WorkerStats(stage)
    if stage in TIMER_STAGES:
        tick = timer_tick(rt, stage)
        while not stop_event.is_set():
            try:
                tick()
                stats.ticks += 1
            except ConfigError:
                raise
            except Exception as exc:  # the worker loop: log, keep ticking
                log.exception("stage %s: tick failed", stage)
                stats.note_error(f"{type(exc).__name__}: {exc}")
            if once:
                break
            stop_event.wait(tick_interval)
        return stats

    from abusedesk.bus.nats import NatsBus

    bus = rt.bus
    if not isinstance(bus, NatsBus):
        raise ConfigError(
            f"abusedesk worker --stage {stage} reads from NATS JetStream, but setting 'bus' is not 'nats'; "
            "with the in-process bus `abusedesk serve` runs every stage",
            field="bus",
        )
    subject, handler = stage_handler(rt, stage)
    bus.connect()  # the first connection fails fast (SourceUnavailable); after it, the client reconnects for ever
    if stage == "parse":
        stats.recovered = republish_unparsed(rt)
    while not stop_event.is_set():
        try:
            deliveries = bus.fetch(subject, partition=partition, batch=batch, wait=wait)
            if not deliveries and once:
                break
            for delivery in deliveries:
                if stop_event.is_set():
                    delivery.release()
                    continue
                _handle(bus, stage, handler, delivery, stats)
        except SourceUnavailable as exc:
            # NATS is restarting or unreachable: the client reconnects; unacked messages come back later
            log.warning("stage %s: %s; trying again in %.0fs", stage, exc.message, RECONNECT_PAUSE)
            stats.note_error(exc.message)
            stop_event.wait(RECONNECT_PAUSE)
    return stats


def _handle(bus: NatsBus, stage: str, handler: Handler, delivery: Any, stats: WorkerStats) -> None:
    try:
        with delivery.working():
            handler(delivery.message)
    except ConfigError:
        delivery.release()
        raise
    except Exception as exc:  # the worker loop: retry with backoff, then dead-letter
        error = f"{type(exc).__name__}: {exc}"
        stats.note_error(error)
        if delivery.is_last_attempt:
            delivery.dead_letter(error, traceback.format_exc())
            stats.dead_lettered += 1
        else:
            delay = delivery.retry()
            stats.retried += 1
            log.warning(
                "stage %s: attempt %d of %d failed (%s); redelivery in %.1fs",
                stage,
                delivery.attempt,
                bus.max_attempts,
                error,
                delay,
            )
        return
    delivery.ack()
    stats.handled += 1


# -- recovery -----------------------------------------------------------------------------------------------------


def unparsed_raw_ids(rt: Runtime, *, older_than: timedelta = timedelta(0)) -> list[str]:
    """Raw inputs stored but never parsed (a crash between storing and parsing), oldest first."""
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
    """Publish ``raw.stored`` again for every stored-but-unparsed input; parsing is idempotent, so it is safe."""
    raw_ids = unparsed_raw_ids(rt, older_than=older_than)
    for raw_id in raw_ids:
        rt.bus.publish(MESSAGE_STAGES["parse"], {"raw_id": raw_id})
    if raw_ids:
        log.info("re-published raw.stored for %d stored but unparsed input(s)", len(raw_ids))
    return len(raw_ids)


def replay_raw(rt: Runtime, raw_ids: list[str] | None = None, *, since: datetime | None = None) -> int:
    """Run raw inputs through the whole pipeline again (every stage is idempotent): recovery after a crash
    anywhere past parsing. ``raw_ids`` None = every parsed input received since ``since`` (all if None)."""
    from abusedesk.store.tables.intake import RawInputRow

    if raw_ids is None:
        with rt.sessions() as s:
            stmt = select(RawInputRow.id).where(RawInputRow.status.in_(("stored", "parsed")))
            if since is not None:
                stmt = stmt.where(RawInputRow.received_at >= since)
            raw_ids = list(s.scalars(stmt.order_by(RawInputRow.received_at, RawInputRow.id)))
    # the replay mark gives the message a new id, so NATS's duplicate window does not swallow it; what the
    # parse stage then publishes is the same as before, so it is de-duplicated downstream, as it should be
    mark = rt.clock.now().isoformat()
    for raw_id in raw_ids:
        rt.bus.publish(MESSAGE_STAGES["parse"], {"raw_id": raw_id, "replay": mark})
    if isinstance(rt.bus, InProcessBus):
        rt.bus.drain()
    return len(raw_ids)


def run_embedded(
    rt: Runtime,
    stop_event: threading.Event,
    *,
    drain_interval: float = 0.5,
    tick_interval: float = 30.0,
    max_loops: int | None = None,
) -> WorkerStats:
    """``abusedesk serve``'s background loop: drain the in-process bus, and tick the timer stages.

    The caller wires the stages first (``pipeline.wire``). A timer stage whose module is not installed is left
    out with one warning; ``max_loops`` bounds the loop for tests.
    """
    stats = WorkerStats("embedded")
    if not isinstance(rt.bus, InProcessBus):
        raise ConfigError("the embedded pipeline loop needs setting 'bus' = 'inprocess'", field="bus")
    ticks: list[tuple[str, Callable[[], Any]]] = []
    for stage in TIMER_STAGES:
        try:
            ticks.append((stage, timer_tick(rt, stage)))
        except ConfigError as exc:
            log.warning("serve: timer stage %s is not running: %s", stage, exc.message)
    stats.recovered = republish_unparsed(rt)
    next_tick = 0.0
    loops = 0
    while not stop_event.is_set():
        try:
            stats.handled += rt.bus.drain()
        except Exception as exc:  # the worker loop: a dead-letter sink failing must not stop serve
            log.exception("serve: draining the in-process bus failed")
            stats.note_error(f"{type(exc).__name__}: {exc}")
        if time.monotonic() >= next_tick:
            for stage, tick in ticks:
                try:
                    tick()
                    stats.ticks += 1
                except ConfigError:
                    raise
                except Exception as exc:  # the worker loop: log, keep serving
                    log.exception("serve: stage %s tick failed", stage)
                    stats.note_error(f"{stage}: {type(exc).__name__}: {exc}")
            next_tick = time.monotonic() + tick_interval
        loops += 1
        if max_loops is not None and loops >= max_loops:
            break
        stop_event.wait(drain_interval)
    stats.dead_lettered = len(rt.bus.dead_letters)
    return stats
