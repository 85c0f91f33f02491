"""Dead letters of the in-process bus, kept so ``abusedesk dlq show|replay`` works without NATS.

On NATS JetStream the dead letters are messages on ``abusedesk.dlq.<subject>`` in the stream itself; this table
is the embedded (``abusedesk serve``) twin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
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
