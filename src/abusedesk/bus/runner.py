"""Running stages: one batch of messages, one transaction; the in-process drain loop over the stage table.

``StageRunner.run`` is the one place a stage's handler is called, on either bus: it opens the transaction, lets
the handler do its work and emit its outputs, lets the bus record the consumption of the input (delete the
outbox rows, or write the NATS ledger), writes the outputs, and commits. Then the bus may forward the outputs
(NATS) and the batch's after-commit hooks run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from abusedesk.bus.base import InProcessBus, MessagesTaken, StageBatch, StageHandler
from abusedesk.domain.errors import ConfigError, Conflict
from abusedesk.stages import StageSpec, message_stages

if TYPE_CHECKING:
    from abusedesk.runtime import Runtime

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 5


class StageRunner:
    """One message stage over a runtime: ``run`` handles a batch in one transaction."""

    def __init__(self, rt: Runtime, spec: StageSpec, handler: StageHandler | None = None) -> None:
        self.rt = rt
        self.spec = spec
        self.handler: StageHandler = handler if handler is not None else spec.build_handler(rt)

    @property
    def name(self) -> str:
        return self.spec.name

    def run(self, messages: Sequence[dict[str, Any]], consume: Callable[[Session], None]) -> None:
        """Handle ``messages``; ``consume(session)`` records, in the same transaction, that they were handled.

        A Conflict (another worker changed the same rows) retries the whole batch a few times before it counts
        as a failure.
        """
        for attempt in range(1, CONFLICT_RETRIES + 1):
            try:
                self._run_once(messages, consume)
                return
            except MessagesTaken:
                raise
            except Conflict:
                if attempt == CONFLICT_RETRIES:
                    raise
                log.info("stage %s: a batch of %d conflicted with another worker; retrying", self.name, len(messages))

    def _run_once(self, messages: Sequence[dict[str, Any]], consume: Callable[[Session], None]) -> None:
        bus = self.rt.bus
        with self.rt.sessions() as session:
            session.begin()
            batch = StageBatch(session, messages, bus=bus, stage=self.name)
            try:
                self.handler.handle(batch)
                consume(session)
                batch.write_outputs()
                session.commit()
            except BaseException:
                session.rollback()
                raise
        bus.flush()
        batch.run_post_commit()


class InProcessPipeline:
    """Every message stage of the table over the runtime's in-process bus."""

    def __init__(self, rt: Runtime, stages: Sequence[StageSpec] | None = None) -> None:
        if not isinstance(rt.bus, InProcessBus):
            raise ConfigError("the in-process pipeline needs setting 'bus' = 'inprocess'", field="bus")
        self.rt = rt
        self.bus: InProcessBus = rt.bus
        specs = list(stages) if stages is not None else list(message_stages())
        self.runners = [StageRunner(rt, spec) for spec in specs]

    def drain(self, *, max_rounds: int | None = None) -> int:
        """Run every stage until no message waits; returns the number of messages handled."""
        handled = 0
        rounds = 0
        while True:
            progressed = 0
            for runner in self.runners:
                try:
                    progressed += self.step(runner)
                except MessagesTaken as exc:  # another process drains the same database: it has these
                    log.info("%s", exc.message)
                    progressed += 1
            handled += progressed
            rounds += 1
            if not progressed or (max_rounds is not None and rounds >= max_rounds):
                return handled

    def step(self, runner: StageRunner) -> int:
        """One batch of one stage; a failing batch is split so that only the bad message is retried."""
        rows = self.bus.pending(runner.name, runner.spec.batch, runner.spec.max_items)
        if not rows:
            return 0
        seqs = [seq for seq, _ in rows]
        try:
            runner.run([p for _, p in rows], lambda s: self.bus.consume(s, runner.name, seqs))
            return len(rows)
        except (ConfigError, MessagesTaken):
            raise
        except Exception as exc:  # the worker loop: isolate the bad message, retry, then dead-letter
            if len(rows) == 1:
                self._retry_one(runner, rows[0], exc)
                return 1
            log.warning("stage %s: a batch of %d failed (%s); running its messages one by one",
                        runner.name, len(rows), exc)  # fmt: skip
        for row in rows:
            try:
                self._run_one(runner, row)
            except (ConfigError, MessagesTaken):
                raise
            except Exception as exc:  # the worker loop
                self._retry_one(runner, row, exc)
        return len(rows)

    def _run_one(self, runner: StageRunner, row: tuple[int, dict[str, Any]]) -> None:
        seq, payload = row
        runner.run([payload], lambda s: self.bus.consume(s, runner.name, [seq]))

    def _retry_one(self, runner: StageRunner, row: tuple[int, dict[str, Any]], first: Exception) -> None:
        seq, payload = row
        error: Exception = first
        for _ in range(2, self.bus.max_attempts + 1):
            try:
                self._run_one(runner, row)
                return
            except (ConfigError, MessagesTaken):
                raise
            except Exception as exc:  # the worker loop
                error = exc
        assert runner.spec.subject is not None
        self.bus.dead_letter(runner.name, seq, runner.spec.subject, payload, error)
