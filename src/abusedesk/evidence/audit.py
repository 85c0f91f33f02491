"""The append-only, hash-chained audit log.

Entry n stores ``hash = SHA-256(prev_hash || canonical JSON of (seq, at, actor, action, subject, payload))`` with
``prev_hash`` the hash of entry n-1 (64 zeros for the first). Editing, inserting or deleting any entry breaks
the chain from that point on, and ``verify`` names the first entry where it breaks and how.

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by its single writer.
The entry is written in the caller's transaction, so an audit entry exists exactly when the change it records
was committed.

A chain alone cannot show that its *last* entries were deleted: the shorter chain is still a valid chain. So
after every commit that appended entries, the head (``seq`` and ``hash`` of the last entry) is written to an
**anchor** file, ``<data_dir>/audit-anchor`` (installed on the Runtime's session factory by
:func:`install_anchor`); ``verify`` then also checks that the log still reaches the anchored entry with the
anchored hash. An operator can keep the head elsewhere too (``abusedesk audit verify --json`` prints it) and
pass it back with ``--expect-head SEQ:HASH``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from abusedesk.domain.errors import ConfigError
from abusedesk.domain.ids import canonical_json
from abusedesk.domain.timeutil import iso
from abusedesk.store import bulk
from abusedesk.store.tables.evidence import AuditRow

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x61756469  # "audi"
ANCHOR_FILE = "audit-anchor"
_SEEN_WINDOW = 10_000
_INFO_PENDING = "abusedesk.audit_pending_head"


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
    _remember_head(session, seq, row.hash)
    return row


def append_many(session: Session, entries: list[dict[str, Any]]) -> int:
    """Add several entries (each the keyword arguments of :func:`append`) in order, in one insert.

    Same chain and lock as :func:`append`; for writers that record many steps in one transaction (the case engine
    ingesting a batch of findings). Returns the number of entries added.
    """
    if not entries:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    last = session.execute(select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).first()
    seq, prev = (last[0], last[1]) if last else (0, GENESIS)
    rows = []
    for e in entries:
        seq += 1
        body = dict(e.get("payload") or {})
        digest = entry_hash(prev, seq, e["at"], e["actor"], e["action"], e["subject_type"], e["subject_id"], body)
        rows.append(
            {
                "seq": seq,
                "at": e["at"],
                "actor": e["actor"],
                "action": e["action"],
                "subject_type": e["subject_type"],
                "subject_id": e["subject_id"],
                "payload": body,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    bulk.copy_rows(session, AuditRow.__table__, rows)  # one COPY on PostgreSQL
    _remember_head(session, seq, prev)
    return len(rows)


@dataclass(frozen=True, slots=True)
class Anchor:
    """The head of the chain as last seen: entry ``seq`` had hash ``hash``."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text_value: str, *, where: str = "--expect-head") -> Anchor:
        """``SEQ:HASH`` (as printed by ``audit verify``) or the anchor file's JSON."""
        value = text_value.strip()
        try:
            if value.startswith("{"):
                data = json.loads(value)
                seq, digest = int(data["seq"]), str(data["hash"])
            else:
                seq_text, _, digest = value.partition(":")
                seq = int(seq_text)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{where}: {value!r} is not SEQ:HASH or an anchor JSON object ({exc})") from None
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or seq < 0:
            raise ConfigError(f"{where}: {value!r} needs a sequence number >= 0 and a 64-hex-digit hash")
        return cls(seq, digest)


def install_anchor(sessions: sessionmaker[Session], path: Path) -> None:
    """Have every session of ``sessions`` write the chain head to ``path`` after a commit that appended."""

    def before_commit(session: Session) -> None:
        # read the head inside the transaction: an append in a rolled-back savepoint is not part of it
        if session.info.get(_INFO_PENDING) is not None:
            last = session.execute(select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).first()
            session.info[_INFO_PENDING] = (last[0], last[1]) if last else None

    def after_commit(session: Session) -> None:
        pending = session.info.pop(_INFO_PENDING, None)
        if pending is not None:
            write_anchor(path, Anchor(*pending))

    def after_rollback(session: Session) -> None:
        session.info.pop(_INFO_PENDING, None)

    event.listen(sessions, "before_commit", before_commit)
    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_rollback", after_rollback)


def read_anchor(path: Path) -> Anchor | None:
    try:
        text_value = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return Anchor.parse(text_value, where=str(path))


def write_anchor(path: Path, head: Anchor) -> bool:
    """Durably record ``head`` unless the file already anchors a later entry; True when written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        current = read_anchor(path)
        if current is not None and current.seq >= head.seq:
            return False
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-anchor-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"seq": head.seq, "hash": head.hash}) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return True


def _remember_head(session: Session, seq: int, digest: str) -> None:
    session.info[_INFO_PENDING] = (seq, digest)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""
    head_hash: str = GENESIS
    anchor_seq: int | None = None  # the anchored entry checked, if any

    @property
    def head(self) -> str:
        """``SEQ:HASH`` of the last good entry, the form ``--expect-head`` takes."""
        return f"{self.entries if self.ok else max((self.first_bad_seq or 1) - 1, 0)}:{self.head_hash}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "head": self.head}


def _rows(session: Session, batch: int = 5000) -> Iterator[AuditRow]:
    last = 0
    while True:
        rows = session.scalars(select(AuditRow).where(AuditRow.seq > last).order_by(AuditRow.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(session: Session, *, anchors: tuple[Anchor, ...] = ()) -> VerifyResult:
    """Walk the chain; name the first altered, inserted or deleted entry.

    Each of ``anchors`` (the anchor file, ``--expect-head``) must still be in the chain with its hash, which is
    how deleting the last entries is caught.
    """
    prev = GENESIS
    expected_seq = 1
    count = 0
    want = {a.seq: a.hash for a in anchors if a.seq > 0}
    seen: OrderedDict[str, int] = OrderedDict({GENESIS: 0})  # recent hashes, to tell an insertion apart
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
            linked = seen.get(row.prev_hash)
            if linked is not None:  # it links to an earlier entry: the ones between were put in
                return VerifyResult(
                    False,
                    count,
                    linked + 1,
                    f"entry {row.seq} links to entry {linked}, so entries {linked + 1}..{row.seq - 1} were inserted",
                    prev,
                )
            return VerifyResult(
                False,
                count,
                row.seq,
                f"entry {row.seq} does not link to entry {row.seq - 1}: entries were deleted, replaced or "
                "reordered here",
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
        if row.seq in want and want[row.seq] != row.hash:
            return VerifyResult(
                False,
                count,
                row.seq,
                f"entry {row.seq} has hash {row.hash[:12]}… but the anchor recorded {want[row.seq][:12]}…: "
                "the log from this entry on was replaced",
                prev,
                row.seq,
            )
        prev = row.hash
        seen[prev] = row.seq
        if len(seen) > _SEEN_WINDOW:
            seen.popitem(last=False)
        expected_seq += 1
    if want and max(want) > count:
        last = max(want)
        return VerifyResult(
            False,
            count,
            count + 1,
            f"the log ends at entry {count} but the anchor recorded entry {last}: entries {count + 1}..{last} "
            "were deleted from the end",
            prev,
            last,
        )
    return VerifyResult(True, count, head_hash=prev, anchor_seq=max(want) if want else None)


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditRow)) or 0)
