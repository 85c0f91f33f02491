"""The pipeline's own tables: the outbox (durable hand-offs), the NATS ledger, detector state, dead letters.

Dead letters of the in-process bus are kept so ``abusedesk dlq show|replay`` works without NATS.

On NATS JetStream the dead letters are messages on ``abusedesk.dlq.<subject>`` in the stream itself; this table
is the embedded (``abusedesk serve``) twin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from abusedesk.store.base import Base


class DeadLetterRow(Base):
    """A message a handler failed on ``attempts`` times; ``id`` is deterministic (subject + message)."""

    __tablename__ = "dead_letters"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    message: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_failed_at: Mapped[datetime] = mapped_column()
    last_failed_at: Mapped[datetime] = mapped_column(index=True)
    times_dead_lettered: Mapped[int] = mapped_column(Integer, default=1)
    stage: Mapped[str | None] = mapped_column(String(60))  # the stage that failed on it (in-process bus)


class OutboxRow(Base):
    """A message waiting for its consumer: the durable hand-off between stages (docs/dev/pipeline.md).

    A stage writes its outputs here in the same transaction as its own work and the removal of its input, so a
    crash leaves either both or neither. ``consumer`` is the stage that will read the row (in-process bus, one row
    per consuming stage) or ``@relay`` (NATS bus: forwarded to JetStream after commit, then deleted).
    """

    __tablename__ = "pipeline_outbox"
    # AUTOINCREMENT on SQLite: a sequence number is never reused after its row is deleted (the NATS relay's message
    # ids are built from it, and JetStream drops a reused id within its duplicate window)
    __table_args__ = (Index("ix_pipeline_outbox_consumer", "consumer", "seq"), {"sqlite_autoincrement": True})
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(200))
    partition_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # items the payload carries (events, findings; 1 otherwise): a stage's batch is bounded by items, not messages
    weight: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)


class StageLedgerRow(Base):
    """A bus message a stage has handled (NATS): a redelivery after the commit but before the ack is skipped."""

    __tablename__ = "pipeline_ledger"
    stage: Mapped[str] = mapped_column(String(60), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    done_at: Mapped[datetime] = mapped_column(index=True)


class DetectorStateRow(Base):
    """The window state of one detector for one partition, checkpointed with the detect stage's progress."""

    __tablename__ = "detector_state"
    detector: Mapped[str] = mapped_column(String(80), primary_key=True)
    partition_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column()
