"""The bus interface, the stage batch a handler works on, and the in-process bus.

Subjects (each message is a JSON-able dict; see ``abusedesk.stages`` for who reads what):

- ``raw.stored``        ``{"raw_id": ...}``: a raw input is durably stored; parse it
- ``events.parsed``     ``{"raw_id": ..., "events": [event dicts]}``: attribute them
- ``events.attributed`` ``{"events": [event dicts]}``: run the event detectors, reply to reporters
- ``findings.new``      ``{"findings": [finding dicts]}``: group into cases

**Durable hand-offs.** A stage never publishes after the fact: it *puts* its outputs into the outbox table in the
same transaction as its own writes and the consumption of its input (``StageBatch.emit``). A crash leaves
either all of it or none of it, so every input is handled once, on either bus:

- the in-process bus *is* the outbox: one row per consuming stage; ``drain`` takes a stage's rows in batches,
  runs the handler and deletes the rows it took, in one transaction;
- the NATS bus relays outbox rows to JetStream after the commit (``flush``; a row left by a crash is relayed by
  the next worker to start, with the same ``Nats-Msg-Id``, so JetStream drops a second copy), and records each
  message a stage handled in ``pipeline_ledger`` in the handler's transaction, so a redelivery of a message
  whose work was committed but not yet acked is skipped.
"""

from __future__ import annotations

import logging
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from abusedesk.domain.errors import Conflict
from abusedesk.store.tables.bus import OutboxRow

if TYPE_CHECKING:
    from abusedesk.clock import Clock

log = logging.getLogger(__name__)

RELAY = "@relay"  # the outbox consumer of rows that the NATS bus forwards to JetStream


class MessagesTaken(Conflict):
    """Another process consumed the messages this one was working on: its work is rolled back, nothing lost."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    subject: str
    message: dict[str, Any]
    error: str
    traceback: str
    stage: str | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message a stage hands on: subject, payload, and the partition key of stateful consumers."""

    subject: str
    payload: dict[str, Any]
    key: str | None = None


#: the list fields that carry a stage's items; a message's weight is their length
BATCH_KEYS = ("events", "findings")


def weight_of(payload: dict[str, Any]) -> int:
    """How many items (events, findings) a message carries; 1 for a message of another kind."""
    return max(1, sum(len(v) for k in BATCH_KEYS if isinstance(v := payload.get(k), list)))


class StageBatch:
    """What a stage handler works on: the messages it took, the open transaction, and where outputs go.

    ``emit`` queues an output; the runner writes the outputs in the same transaction as the handler's work.
    ``checkpoint`` commits the work so far (a long input cut into chunks: the handler records its progress so
    a resumed run skips what was committed) and opens the next transaction; the input stays unconsumed until
    the end.
    """

    def __init__(self, session: Session, messages: Sequence[dict[str, Any]], *, bus: Bus, stage: str) -> None:
        self.session = session
        self.messages = list(messages)
        self.bus = bus
        self.stage = stage
        self.outputs: list[Outgoing] = []
        self._post_commit: list[Callable[[], None]] = []

    def emit(self, subject: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        self.outputs.append(Outgoing(subject, payload, key))

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the batch's transaction committed (a counter outside the transaction, a wake-up)."""
        self._post_commit.append(fn)

    def write_outputs(self) -> None:
        if self.outputs:
            self.bus.put_many(self.session, self.outputs)
            self.outputs = []

    def checkpoint(self) -> None:
        """Commit the work and outputs so far, then go on in a new transaction."""
        self.write_outputs()
        self.session.commit()
        self.bus.flush()
        self.session.begin()

    def run_post_commit(self) -> None:
        for fn in self._post_commit:
            fn()
        self._post_commit.clear()


class StageHandler(Protocol):
    """A message stage: handle every message of ``batch`` inside ``batch.session``; emit outputs on the batch."""

    def handle(self, batch: StageBatch) -> None: ...


class Bus(ABC):
    """Where stages' outputs go (``put`` inside the writer's transaction) and how they are consumed."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, ...]] = {}
        self._sessions: sessionmaker[Session] | None = None
        self._clock: Clock | None = None

    def bind(self, sessions: sessionmaker[Session], clock: Clock, routes: dict[str, tuple[str, ...]]) -> None:
        """Give the bus the database and clock of its runtime, and the stage table's routes."""
        self._sessions, self._clock, self.routes = sessions, clock, dict(routes)

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            raise RuntimeError("the bus is not bound to a runtime (Runtime binds it)")
        return self._sessions

    def now(self) -> datetime:
        if self._clock is None:
            raise RuntimeError("the bus is not bound to a runtime (Runtime binds it)")
        return self._clock.now()

    @abstractmethod
    def consumers_of(self, subject: str) -> tuple[str, ...]:
        """The outbox consumers a message on ``subject`` is written for."""

    def put(self, session: Session, subject: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        """Hand a message on inside ``session``'s transaction: durable exactly when that transaction commits."""
        self.put_many(session, [Outgoing(subject, payload, key)])

    def put_many(self, session: Session, messages: Sequence[Outgoing]) -> None:
        now = self.now()
        rows = [
            {
                "consumer": consumer,
                "subject": m.subject,
                "partition_key": m.key if m.key is not None else m.payload.get("partition_key"),
                "payload": m.payload,
                "weight": weight_of(m.payload),
                "created_at": now,
                "attempts": 0,
            }
            for m in messages
            for consumer in self.consumers_of(m.subject)
        ]
        if rows:
            session.execute(insert(OutboxRow), rows)

    def put_to(self, session: Session, consumer: str, subject: str, payload: dict[str, Any]) -> None:
        """Hand a message to one consumer only (a dead letter back to the stage that failed on it)."""
        if consumer not in self.consumers_of(subject):
            self.put(session, subject, payload)
            return
        session.execute(
            insert(OutboxRow),
            [{"consumer": consumer, "subject": subject, "partition_key": payload.get("partition_key"),
              "payload": payload, "weight": weight_of(payload), "created_at": self.now(), "attempts": 0}],
        )  # fmt: skip

    def publish(self, subject: str, message: dict[str, Any], *, key: str | None = None) -> None:
        """Hand a message on in a transaction of its own (a replay, a re-published dead letter)."""
        with self.sessions.begin() as s:
            self.put(s, subject, message, key=key)
        self.flush()

    def flush(self) -> None:  # noqa: B027 - optional hook: the NATS bus relays its outbox here
        """After a commit that put messages: forward them where the bus needs it (nothing in process)."""

    def close(self) -> None:  # noqa: B027 - optional hook: buses with a connection close it here
        """Release connections; the in-process bus has none."""


class InProcessBus(Bus):
    """The outbox table as the queue: ``drain`` runs each stage over its rows, in batches, in table order.

    A batch whose handler raises is rolled back and its messages are run one at a time, so one bad message
    cannot hold back the others; a message that fails ``max_attempts`` times goes to the dead letters with its
    traceback (``on_dead_letter``), in the same transaction that removes it from the outbox.
    """

    def __init__(self, *, max_attempts: int = 3) -> None:
        super().__init__()
        self.max_attempts = max_attempts
        self.dead_letters: list[DeadLetter] = []
        # where dead letters are also kept, inside the removing transaction (bus/deadletters.py: the table)
        self.on_dead_letter: Callable[[Session, DeadLetter], None] | None = None

    def consumers_of(self, subject: str) -> tuple[str, ...]:
        consumers = self.routes.get(subject)
        if not consumers:
            log.warning("a message on %s has no stage to read it; it is not kept", subject)
            return ()
        return consumers

    def pending(self, consumer: str, limit: int, max_items: int | None = None) -> list[tuple[int, dict[str, Any]]]:
        """The oldest messages waiting for ``consumer`` — at most ``limit``, and no more than ``max_items``
        events or findings together (always at least one message): (seq, payload)."""
        with self.sessions() as s:
            heads = s.execute(
                select(OutboxRow.seq, OutboxRow.weight)
                .where(OutboxRow.consumer == consumer)
                .order_by(OutboxRow.seq)
                .limit(limit)
            ).all()
            seqs: list[int] = []
            total = 0
            for seq, weight in heads:
                if seqs and max_items is not None and total + int(weight or 1) > max_items:
                    break
                seqs.append(int(seq))
                total += int(weight or 1)
            if not seqs:
                return []
            rows = s.execute(
                select(OutboxRow.seq, OutboxRow.payload).where(OutboxRow.seq.in_(seqs)).order_by(OutboxRow.seq)
            ).all()
        return [(int(seq), dict(payload)) for seq, payload in rows]

    def consume(self, session: Session, consumer: str, seqs: Sequence[int]) -> None:
        """Remove the taken rows in the handler's transaction; fewer removed = another process took them."""
        result = session.execute(delete(OutboxRow).where(OutboxRow.consumer == consumer, OutboxRow.seq.in_(list(seqs))))
        removed = result.rowcount  # type: ignore[attr-defined]
        if removed != len(seqs):
            raise MessagesTaken(
                f"stage {consumer}: {len(seqs) - removed} of {len(seqs)} messages were taken by another process "
                "while this one worked on them; its work is rolled back"
            )

    def dead_letter(self, consumer: str, seq: int, subject: str, message: dict[str, Any], exc: BaseException) -> None:
        letter = DeadLetter(subject, message, repr(exc), "".join(traceback.format_exception(exc)), consumer)
        with self.sessions.begin() as s:
            if self.on_dead_letter is not None:
                self.on_dead_letter(s, letter)
            s.execute(delete(OutboxRow).where(OutboxRow.consumer == consumer, OutboxRow.seq == seq))
        self.dead_letters.append(letter)
        log.error("dead-lettered a message on %s for stage %s after %d attempts: %s", subject, consumer,
                  self.max_attempts, exc)  # fmt: skip


@dataclass(slots=True)
class Backlog:
    """What waits for one stage: messages, and the age of the oldest."""

    stage: str
    subject: str | None
    waiting: int = 0
    oldest: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
