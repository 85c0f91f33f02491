"""The append-only, hash-chained audit log.

Entry n stores ``hash = SHA-256(prev_hash || canonical JSON of (seq, at, actor, action, subject, payload))`` with
``prev_hash`` the hash of entry n-1 (64 zeros for the first). Editing, inserting or deleting any entry breaks
the chain from that point on, and ``verify`` names the first entry where it breaks and how.

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by its single writer.
The entry is written in the caller's transaction, so an audit entry exists exactly when the change it records
was committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from abusedesk.domain.ids import canonical_json
from abusedesk.domain.timeutil import iso
from abusedesk.store.tables.evidence import AuditRow

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x61756469  # "audi"


def entry_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    payload: dict[str, Any],
) -> str:
    body = canonical_json([seq, iso(at), actor, action, subject_type, subject_id, payload])
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def append(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    payload: dict[str, Any] | None = None,
) -> AuditRow:
    """Add one entry to the chain inside the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    last = session.execute(select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    body = dict(payload or {})
    row = AuditRow(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=body,
        prev_hash=prev,
        hash=entry_hash(prev, seq, at, actor, action, subject_type, subject_id, body),
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""
    head_hash: str = GENESIS


def _rows(session: Session, batch: int = 5000) -> Iterator[AuditRow]:
    last = 0
    while True:
        rows = session.scalars(select(AuditRow).where(AuditRow.seq > last).order_by(AuditRow.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(session: Session) -> VerifyResult:
    """Walk the chain; name the first altered, inserted or deleted entry."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    for row in _rows(session):
        count += 1
        if row.seq != expected_seq:
            gap = "deleted" if row.seq > expected_seq else "inserted"
            return VerifyResult(
                False,
                count,
                expected_seq,
                f"entry {expected_seq} is missing (next is {row.seq}): an entry was {gap}",
                prev,
            )
        if row.prev_hash != prev:
            return VerifyResult(
                False,
                count,
                row.seq,
                f"entry {row.seq} does not link to entry {row.seq - 1}: an entry before it was "
                "altered, inserted or deleted",
                prev,
            )
        recomputed = entry_hash(
            prev, row.seq, row.at, row.actor, row.action, row.subject_type, row.subject_id, row.payload
        )
        if recomputed != row.hash:
            return VerifyResult(
                False,
                count,
                row.seq,
                f"entry {row.seq} ({row.action} {row.subject_type} {row.subject_id}) was altered: "
                "its content no longer matches its hash",
                prev,
            )
        prev = row.hash
        expected_seq += 1
    return VerifyResult(True, count, head_hash=prev)


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditRow)) or 0)
