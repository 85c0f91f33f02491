"""The append-only, hash-chained audit log, and its signed checkpoints.

Entry n stores ``hash = SHA-256(prev_hash ‖ leaf)`` with ``leaf = SHA-256(canonical JSON of (seq, at, actor,
action, subject, payload))``, both as hex text, and ``prev_hash`` the hash of entry n-1 (64 zeros for the first).
Editing, inserting or deleting any entry breaks the chain from that point on, and ``verify`` names the first entry
where it breaks and how. The leaf digest lets an evidence bundle show that its entries are in a signed head
without carrying any other entry's content (:func:`inclusion_links`).

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by its single writer.
The entry is written in the caller's transaction, so an audit entry exists exactly when the change it records
was committed.

A chain alone cannot show that its last entries were deleted, nor that someone who can write the database did not
rewrite it with recomputed hashes. So after every commit that appended entries (a commit group: one per batch on
the hot path), the head is appended to the checkpoint log outside the database, signed with the desk's Ed25519 key
(:mod:`abusedesk.evidence.checkpoints`, installed on the Runtime's session factory by
:func:`install_checkpointer`), and only once the previous checkpoint is shown to be a prefix of the chain.
``verify`` checks every checkpoint's signature and that the chain still holds each checkpointed head.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from abusedesk.clock import Clock
from abusedesk.config import Settings
from abusedesk.domain.errors import ConfigError
from abusedesk.domain.ids import canonical_json
from abusedesk.domain.timeutil import iso
from abusedesk.evidence import checkpoints
from abusedesk.store import bulk
from abusedesk.store.tables.evidence import AuditRow

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x61756469  # "audi"
_SEEN_WINDOW = 10_000
_INFO_PENDING = "abusedesk.audit_pending_head"
_Head = tuple[int, str]
log = logging.getLogger(__name__)


def leaf_digest(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    payload: Any,
) -> str:
    """SHA-256 of one entry's content: what an inclusion path carries instead of the content of other entries."""
    return hashlib.sha256(canonical_json([seq, iso(at), actor, action, subject_type, subject_id, payload])).hexdigest()


def link(prev_hash: str, leaf: str) -> str:
    """An entry's hash: SHA-256 over the previous entry's hash and its own leaf digest, both as hex text."""
    return hashlib.sha256((prev_hash + leaf).encode()).hexdigest()


def entry_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    payload: Any,
) -> str:
    return link(prev_hash, leaf_digest(seq, at, actor, action, subject_type, subject_id, payload))


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})


def _head(session: Session) -> _Head | None:
    last = session.execute(select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).first()
    return (int(last[0]), str(last[1])) if last else None


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
    _lock(session)
    start = _head(session) or (0, GENESIS)
    seq, prev = start[0] + 1, start[1]
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
    _remember_head(session, start, (seq, row.hash))
    return row


def append_many(session: Session, entries: list[dict[str, Any]]) -> int:
    """Add several entries (each the keyword arguments of :func:`append`) in order, in one insert.

    Same chain and lock as :func:`append`; for writers that record many steps in one transaction (the case engine
    ingesting a batch of findings). Returns the number of entries added.
    """
    if not entries:
        return 0
    _lock(session)
    start = _head(session) or (0, GENESIS)
    seq, prev = start
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
    _remember_head(session, start, (seq, prev))
    return len(rows)


def _remember_head(session: Session, start: _Head, end: _Head) -> None:
    # the first append of the transaction fixes where it started; every append moves the end
    pending = session.info.get(_INFO_PENDING)
    session.info[_INFO_PENDING] = (pending[0] if pending else start, end)


class Checkpointer:
    """Writes a checkpoint of the chain's head after each commit that appended (one per commit group).

    Before a new head is written, the last checkpoint must still be a prefix of the chain: when this transaction's
    appends started right at that checkpoint, the hashes this process computed itself show it; otherwise (another
    process wrote in between, or an append was rolled back to a savepoint) the entries after the checkpoint are
    read back and re-hashed. A chain that no longer extends the checkpoint is not signed over: the error is
    logged and ``audit verify`` names the damage.
    """

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, clock: Clock | None = None) -> None:
        self.sessions = sessions
        self.path = checkpoints.log_path(settings)
        self.key_path = checkpoints.key_path(settings)
        self.interval = settings.audit.checkpoint_interval
        self.clock = clock or Clock()
        self._key: Ed25519PrivateKey | None = None
        self._key_mtime: float | None = None
        self._last_written = float("-inf")  # time.monotonic() of this process's last checkpoint

    def key(self) -> Ed25519PrivateKey | None:
        """The signing key, re-read when its file changes (``audit keygen`` while workers run)."""
        try:
            mtime = self.key_path.stat().st_mtime
        except FileNotFoundError:
            self._key, self._key_mtime = None, None
            return None
        if mtime != self._key_mtime:
            self._key, self._key_mtime = checkpoints.load_private_key(self.key_path), mtime
        return self._key

    def record(
        self, end: _Head, start: _Head | None = None, *, at: str = "", force: bool = True
    ) -> checkpoints.Checkpoint | None:
        """Append a checkpoint of head ``end`` unless one at or past it exists; None when nothing was written.

        ``start``: the head this process's own appends started from (their hashes it computed itself).
        ``force=False`` (after a commit) skips it while ``audit.checkpoint_interval`` has not passed since this
        process's last one; the next commit, :meth:`record_head` or closing the Runtime covers the head then.
        """
        if not force and time.monotonic() - self._last_written < self.interval:
            self._pending = True
            return None
        with checkpoints.locked(self.path):
            log_ = checkpoints.read_last(self.path, GENESIS)
            if log_.problem:
                log.error("audit checkpoint for entry %s not written: %s (%s)", end[0], log_.problem, self.path)
                return None
            last = log_.last
            prev: _Head = (last.seq, last.hash) if last else (0, GENESIS)
            if prev[0] > end[0]:
                return None
            # the same head again only to start a log, or to sign a head checkpointed before there was a key
            if prev[0] == end[0] and last is not None and (last.sig is not None or self.key() is None):
                return None
            if start != prev:
                with self.sessions() as s:
                    problem = extends(s, prev, end)
                if problem:
                    log.error(
                        "audit checkpoint for entry %s not written: the chain no longer extends checkpoint %s "
                        "(entry %s): %s; run `abusedesk audit verify`",
                        end[0],
                        last.n if last else 0,
                        prev[0],
                        problem,
                    )
                    return None
            cp = checkpoints.make_checkpoint(last, end[0], end[1], at or iso(self.clock.now()), self.key(), GENESIS)
            checkpoints.append_line(self.path, cp)
            self._last_written, self._pending = time.monotonic(), False
            return cp

    _pending = False

    def flush(self) -> None:
        """Checkpoint the head if a commit's checkpoint was put off by ``audit.checkpoint_interval``."""
        if self._pending:
            self.record_head()

    def record_head(self) -> checkpoints.Checkpoint | None:
        """Checkpoint the chain's current head now (``audit checkpoint``, before an export)."""
        with self.sessions() as s:
            head = _head(s) or (0, GENESIS)
        return self.record(head)


def install_checkpointer(
    sessions: sessionmaker[Session], settings: Settings, clock: Clock | None = None
) -> Checkpointer:
    """Have every session of ``sessions`` checkpoint the chain head after a commit that appended."""
    checkpointer = Checkpointer(sessions, settings, clock)

    def before_commit(session: Session) -> None:
        # read the head inside the transaction: an append in a rolled-back savepoint is not part of it
        pending = session.info.get(_INFO_PENDING)
        if pending is not None:
            head = _head(session)
            session.info[_INFO_PENDING] = None if head is None else (pending[0] if head == pending[1] else None, head)

    def after_commit(session: Session) -> None:
        pending = session.info.pop(_INFO_PENDING, None)
        if pending is not None:
            checkpointer.record(pending[1], pending[0], force=False)

    def after_rollback(session: Session) -> None:
        session.info.pop(_INFO_PENDING, None)

    event.listen(sessions, "before_commit", before_commit)
    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_rollback", after_rollback)
    return checkpointer


@dataclass(frozen=True, slots=True)
class Anchor:
    """The head of the chain as last seen: entry ``seq`` had hash ``hash`` (``--expect-head``)."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text_value: str, *, where: str = "--expect-head") -> Anchor:
        """``SEQ:HASH`` (as printed by ``audit verify``) or a JSON object with ``seq`` and ``hash``."""
        value = text_value.strip()
        try:
            if value.startswith("{"):
                data = json.loads(value)
                seq, digest = int(data["seq"]), str(data["hash"])
            else:
                seq_text, _, digest = value.partition(":")
                seq = int(seq_text)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{where}: {value!r} is not SEQ:HASH or a JSON object ({exc})") from None
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or seq < 0:
            raise ConfigError(f"{where}: {value!r} needs a sequence number >= 0 and a 64-hex-digit hash")
        return cls(seq, digest)


@dataclass(frozen=True, slots=True)
class RawEntry:
    """An audit row as stored, before any type is trusted: what verify reads, so a malformed row cannot crash it."""

    seq: Any
    at: Any
    actor: Any
    action: Any
    subject_type: Any
    subject_id: Any
    payload: Any
    prev_hash: Any
    hash: Any

    def leaf(self) -> str:
        """The leaf digest; ValueError naming the field when the row cannot be hashed as an entry."""
        at = self.at
        if isinstance(at, str):
            try:
                at = datetime.fromisoformat(at)
            except ValueError:
                raise ValueError(f"its time {self.at!r} is not a timestamp") from None
            if at.tzinfo is None:  # SQLite keeps UTC times without their zone
                at = at.replace(tzinfo=UTC)
        if not isinstance(at, datetime):
            raise ValueError(f"its time is {type(at).__name__}, not a timestamp")
        payload = self.payload
        if isinstance(payload, str | bytes):
            try:
                payload = json.loads(payload)
            except ValueError:
                raise ValueError(f"its payload is not JSON: {str(payload)[:60]!r}") from None
        for name in ("actor", "action", "subject_type", "subject_id"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"its {name} is {type(getattr(self, name)).__name__}, not text")
        return leaf_digest(self.seq, at, self.actor, self.action, self.subject_type, self.subject_id, payload)


_RAW_SELECT = (
    "SELECT seq, at, actor, action, subject_type, subject_id, payload, prev_hash, hash FROM audit_log "
    "WHERE seq > :last ORDER BY seq LIMIT :n"
)


def raw_entries(session: Session, *, after: int = 0, upto: int | None = None, batch: int = 5000) -> Iterator[RawEntry]:
    """The rows in ``seq`` order as stored: plain SQL, no type conversion that could raise on a tampered row."""
    last: Any = after
    while True:
        rows = session.execute(text(_RAW_SELECT), {"last": last, "n": batch}).all()
        if not rows:
            return
        for r in rows:
            entry = RawEntry(*r)
            if upto is not None and isinstance(entry.seq, int) and entry.seq > upto:
                return
            yield entry
        last = rows[-1][0]
        if not isinstance(last, int):
            return  # a seq that is not a number ends the walk: verify names it


def extends(session: Session, old: _Head, new: _Head) -> str | None:
    """Why the chain does not lead from head ``old`` to head ``new``, or None when it does (entries re-hashed)."""
    prev = old[1]
    if old[0] > 0:
        row = session.execute(select(AuditRow.hash).where(AuditRow.seq == old[0])).first()
        if row is None or row[0] != old[1]:
            return f"entry {old[0]} is {'gone' if row is None else 'replaced'}"
    expected = old[0] + 1
    for e in raw_entries(session, after=old[0], upto=new[0]):
        if e.seq != expected:
            return f"entry {expected} is missing"
        try:
            digest = link(prev, e.leaf())
        except ValueError as exc:
            return f"entry {e.seq} is malformed: {exc}"
        if e.hash != digest or e.prev_hash != prev:
            return f"entry {e.seq} does not hash to its place in the chain"
        prev = digest
        expected += 1
    if expected - 1 != new[0] or prev != new[1]:
        return f"the chain ends at entry {expected - 1}, not at entry {new[0]} with the committed hash"
    return None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""
    head_hash: str = GENESIS
    anchor_seq: int | None = None  # the newest checkpointed or expected entry checked, if any
    checkpoints: int = 0  # checkpoints that were checked against the chain
    signed_seq: int | None = None  # the newest entry covered by a signed checkpoint
    key_ids: tuple[str, ...] = ()

    @property
    def head(self) -> str:
        """``SEQ:HASH`` of the last good entry, the form ``--expect-head`` takes."""
        return f"{self.entries if self.ok else max((self.first_bad_seq or 1) - 1, 0)}:{self.head_hash}"

    @property
    def unsigned_tail(self) -> int:
        """Entries after the newest signed checkpoint (written since, or never signed)."""
        return self.entries - (self.signed_seq or 0)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "key_ids": list(self.key_ids), "head": self.head, "unsigned_tail": self.unsigned_tail}


def verify(
    session: Session,
    *,
    anchors: tuple[Anchor, ...] = (),
    checkpoint_log: checkpoints.CheckpointLog | None = None,
    public_keys: tuple[Ed25519PublicKey, ...] = (),
    require_signed: bool = False,
) -> VerifyResult:
    """Walk the chain; name the first altered, inserted, deleted or malformed entry. Never raises on a bad row.

    Every checkpoint of ``checkpoint_log`` and each of ``anchors`` (``--expect-head``) must still be in the chain
    with its hash: a cut tail, or a rewrite with recomputed hashes, is caught there. With ``public_keys`` each
    checkpoint's signature is checked; ``require_signed`` makes a log without a signed checkpoint (an empty one
    included) not intact.
    """
    keys = {checkpoints.key_id(k): k for k in public_keys}
    cps = checkpoint_log.checkpoints if checkpoint_log is not None else ()
    signed: int | None = None
    want: dict[int, tuple[str, str]] = {}  # seq -> (hash, what recorded it)
    for cp in cps:
        # unsigned checkpoints before the first signed one are the history from before the key was made
        if (keys or require_signed) and (cp.sig is not None or signed is not None):
            problem = checkpoints.signature_problem(cp, keys)
            if problem:
                return VerifyResult(False, 0, cp.seq or None, problem, checkpoints=len(cps))
            signed = cp.seq
        want[cp.seq] = (cp.hash, f"signed checkpoint {cp.n}" if cp.sig is not None else f"checkpoint {cp.n}")
    if checkpoint_log is not None and checkpoint_log.problem:
        return VerifyResult(False, 0, None, checkpoint_log.problem, checkpoints=len(cps))
    for a in anchors:
        if a.seq > 0:
            want.setdefault(a.seq, (a.hash, "the expected head"))
            if want[a.seq][0] != a.hash:
                return VerifyResult(
                    False, 0, a.seq, f"the expected head {a.seq}:{a.hash[:12]}… is not what the checkpoint log holds"
                )
    want.pop(0, None)
    result = _walk(session, want)
    result = VerifyResult(
        result.ok,
        result.entries,
        result.first_bad_seq,
        result.problem,
        result.head_hash,
        max(want) if want else None,
        len(cps),
        signed,
        tuple(sorted(keys)),
    )
    if result.ok and require_signed and signed is None:
        where = "empty log" if result.entries == 0 else f"log of {result.entries} entries"
        return VerifyResult(
            False,
            result.entries,
            None,
            f"no signed checkpoint: an {where} without one proves nothing (run `abusedesk audit keygen` on a "
            "new desk; on an old one the checkpoint log was removed)",
            result.head_hash,
            checkpoints=len(cps),
        )
    return result


def _walk(session: Session, want: dict[int, tuple[str, str]]) -> VerifyResult:
    prev = GENESIS
    expected_seq = 1
    count = 0
    seen: OrderedDict[str, int] = OrderedDict({GENESIS: 0})  # recent hashes, to tell an insertion apart
    for row in raw_entries(session):
        count += 1
        if not isinstance(row.seq, int) or isinstance(row.seq, bool):
            return VerifyResult(False, count, expected_seq, f"entry after {expected_seq - 1} has seq {row.seq!r}", prev)
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
            linked = seen.get(row.prev_hash) if isinstance(row.prev_hash, str) else None
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
        try:
            recomputed = link(prev, row.leaf())
        except ValueError as exc:
            return VerifyResult(False, count, row.seq, f"entry {row.seq} is malformed: {exc}", prev)
        if recomputed != row.hash:
            return VerifyResult(
                False,
                count,
                row.seq,
                f"entry {row.seq} ({row.action} {row.subject_type} {row.subject_id}) was altered: "
                "its content no longer matches its hash",
                prev,
            )
        if row.seq in want and want[row.seq][0] != row.hash:
            return VerifyResult(
                False,
                count,
                row.seq,
                f"entry {row.seq} has hash {row.hash[:12]}… but {want[row.seq][1]} recorded "
                f"{want[row.seq][0][:12]}…: the log up to this entry was replaced or rewritten",
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
            f"the log ends at entry {count} but {want[last][1]} recorded entry {last}: entries {count + 1}..{last} "
            "were deleted from the end",
            prev,
            last,
        )
    return VerifyResult(True, count, head_hash=prev)


def verify_settings(
    session: Session,
    settings: Settings,
    *,
    anchors: tuple[Anchor, ...] = (),
    public_keys: tuple[Path, ...] = (),
    require_signed: bool = True,
) -> VerifyResult:
    """:func:`verify` with the checkpoint log and trusted key the settings name (what ``audit verify`` runs).

    Trusted keys: ``public_keys`` if given, else ``audit.public_key``, else the key beside the signing key.
    """
    paths = public_keys or ((settings.audit.public_key,) if settings.audit.public_key else ())
    keys = [checkpoints.load_public_key(p) for p in paths]
    if not keys:
        private = checkpoints.key_path(settings)
        pub = checkpoints.public_key_path(private)
        if pub.exists():
            keys.append(checkpoints.load_public_key(pub))
        elif private.exists():
            keys.append(checkpoints.load_public_key(private))
    return verify(
        session,
        anchors=anchors,
        checkpoint_log=checkpoints.read_log(checkpoints.log_path(settings), GENESIS),
        public_keys=tuple(keys),
        require_signed=require_signed,
    )


def inclusion_links(session: Session, seqs: list[int], cps: tuple[checkpoints.Checkpoint, ...]) -> dict[str, Any]:
    """What shows entries ``seqs`` are in a signed head without the other entries' content.

    For each entry, the first checkpoint at or after it, and the leaf digests of the entries between them:
    ``hash(k) = SHA-256(hash(k-1) ‖ leaf(k))`` carried on to the checkpoint's ``hash``. Returns
    ``{"leaves": {seq: digest}, "checkpoints": [n, ...], "uncovered": [seq, ...]}``.
    """
    by_seq = sorted(cps, key=lambda c: c.seq)
    needed: set[int] = set()
    used: set[int] = set()
    uncovered: list[int] = []
    for k in sorted(set(seqs)):
        cp = next((c for c in by_seq if c.seq >= k), None)
        if cp is None:
            uncovered.append(k)
            continue
        used.add(cp.n)
        needed.update(range(k + 1, cp.seq + 1))
    needed -= set(seqs)
    leaves: dict[str, str] = {}
    ordered = sorted(needed)
    for i in range(0, len(ordered), 500):
        part = ordered[i : i + 500]
        for r in session.scalars(select(AuditRow).where(AuditRow.seq.in_(part))):
            leaves[str(r.seq)] = leaf_digest(r.seq, r.at, r.actor, r.action, r.subject_type, r.subject_id, r.payload)
    return {"leaves": leaves, "checkpoints": sorted(used), "uncovered": uncovered}


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditRow)) or 0)
