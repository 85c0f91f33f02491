"""Dead letters: messages a stage failed on after every retry, kept with payload, error and traceback.

Two homes, one shape (``StoredDeadLetter``): the in-process bus writes them to the ``dead_letters`` table
(``DeadLetterTable``); the NATS bus publishes them to ``abusedesk.dlq.<subject>`` in the JetStream stream
(``NatsBus.dead_letters``). ``abusedesk dlq show|replay`` reads whichever the settings select.

The id of a dead letter is deterministic: the same message failing again updates its row instead of adding one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from abusedesk.bus.base import DeadLetter
from abusedesk.domain.ids import stable_id
from abusedesk.store.tables.bus import DeadLetterRow

if TYPE_CHECKING:
    from abusedesk.runtime import Runtime


def dead_letter_id(subject: str, message: dict[str, Any]) -> str:
    """The id of a dead letter: the same subject and message always give the same id."""
    return stable_id("dl", subject, message)


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    id: str
    subject: str
    message: dict[str, Any]
    error: str
    traceback: str
    attempts: int
    failed_at: datetime | None
    # where it lives: "table" (in-process bus) or "nats:<stream sequence>"
    location: str = "table"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subject": self.subject,
            "error": self.error,
            "attempts": self.attempts,
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
            "location": self.location,
            "message": self.message,
            "traceback": self.traceback,
        } | ({"extra": self.extra} if self.extra else {})


class DeadLetterTable:
    """The in-process bus's dead letters in the database."""

    def __init__(self, rt: Runtime, *, attempts: int = 0) -> None:
        self.rt = rt
        self.attempts = attempts

    def record(self, letter: DeadLetter, session: Session | None = None) -> None:
        """Keep one dead letter (in ``session``'s transaction when given); the same message dead-lettered again
        counts up instead of adding a row."""
        if session is None:
            with self.rt.sessions.begin() as s:
                self._record(s, letter)
        else:
            self._record(session, letter)

    def _record(self, s: Session, letter: DeadLetter) -> None:
        now = self.rt.clock.now()
        letter_id = dead_letter_id(letter.subject, letter.message)
        row = s.get(DeadLetterRow, letter_id)
        if row is None:
            s.add(
                DeadLetterRow(
                    id=letter_id,
                    subject=letter.subject,
                    message=letter.message,
                    error=letter.error,
                    traceback=letter.traceback,
                    attempts=self.attempts,
                    first_failed_at=now,
                    last_failed_at=now,
                    times_dead_lettered=1,
                    stage=letter.stage,
                )
            )
        else:
            row.error = letter.error
            row.traceback = letter.traceback
            row.last_failed_at = now
            row.attempts += self.attempts
            row.times_dead_lettered += 1

    def list(self, ids: list[str] | None = None) -> list[StoredDeadLetter]:
        with self.rt.sessions() as s:
            stmt = select(DeadLetterRow).order_by(DeadLetterRow.first_failed_at, DeadLetterRow.id)
            if ids is not None:
                stmt = stmt.where(DeadLetterRow.id.in_(ids))
            return [
                StoredDeadLetter(
                    id=r.id,
                    subject=r.subject,
                    message=dict(r.message),
                    error=r.error,
                    traceback=r.traceback,
                    attempts=r.attempts,
                    failed_at=r.last_failed_at,
                    extra={"times_dead_lettered": r.times_dead_lettered, "first_failed_at": r.first_failed_at}
                    | ({"stage": r.stage} if r.stage else {}),
                )
                for r in s.scalars(stmt)
            ]

    def remove(self, letter_id: str, session: Session | None = None) -> None:
        if session is None:
            with self.rt.sessions.begin() as s:
                s.execute(delete(DeadLetterRow).where(DeadLetterRow.id == letter_id))
        else:
            session.execute(delete(DeadLetterRow).where(DeadLetterRow.id == letter_id))
