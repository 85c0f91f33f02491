"""Signed checkpoints against an insider who can write the database (and sometimes the checkpoint file): issue 10.

Each test does what such an insider would, then runs the same verification ``abusedesk audit verify`` runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from abusedesk.evidence import audit, checkpoints
from abusedesk.runtime import Runtime
from abusedesk.store.tables.evidence import AuditRow
from tests.evidence.test_audit import _fill


def _keygen(rt: Runtime) -> Path:
    path = checkpoints.key_path(rt.settings)
    checkpoints.generate_key(path)
    return checkpoints.public_key_path(path)


def _verify(rt: Runtime, *keys: Path) -> audit.VerifyResult:
    with rt.sessions() as s:
        return audit.verify_settings(s, rt.settings, public_keys=keys)


def _rechain(rt: Runtime, change: dict[int, dict[str, object]]) -> None:
    """Rewrite entries (``seq -> new column values``) and recompute every hash after them: a careful forger."""
    with rt.sessions() as s, s.begin():
        rows = list(s.query(AuditRow).order_by(AuditRow.seq))
        prev = audit.GENESIS
        for r in rows:
            for key, value in change.get(r.seq, {}).items():
                setattr(r, key, value)
            r.prev_hash = prev
            r.hash = audit.entry_hash(prev, r.seq, r.at, r.actor, r.action, r.subject_type, r.subject_id, r.payload)
            prev = r.hash
            s.flush()


def test_every_commit_group_is_signed_and_verifies(runtime: Runtime) -> None:
    _keygen(runtime)
    hashes = _fill(runtime, 4)
    result = _verify(runtime)
    assert result.ok, result.problem
    assert (result.entries, result.signed_seq, result.unsigned_tail) == (4, 4, 0)
    log = checkpoints.read_log(checkpoints.log_path(runtime.settings), audit.GENESIS)
    assert [c.seq for c in log.checkpoints] == [1, 2, 3, 4]
    assert log.checkpoints[-1].hash == hashes[-1]
    assert all(c.sig is not None for c in log.checkpoints)


def test_tail_cut_stays_caught_after_more_commits(runtime: Runtime) -> None:
    """The issue's find: the cut disappeared after six more notes, because the anchor moved on regardless."""
    _keygen(runtime)
    _fill(runtime, 5)
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
    _fill(runtime, 6, start=10)  # new entries 4..9 chain validly onto entry 3
    log = checkpoints.read_log(checkpoints.log_path(runtime.settings), audit.GENESIS)
    assert log.last is not None
    assert log.last.seq == 5  # the checkpointer refused to sign over the cut
    result = _verify(runtime)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "signed checkpoint 4" in result.problem


def test_middle_edit_with_recomputed_hashes_is_caught_by_the_signature(runtime: Runtime) -> None:
    _keygen(runtime)
    _fill(runtime, 5)
    _rechain(runtime, {2: {"payload": {"i": 2, "text": "nothing happened"}}})
    with runtime.sessions() as s:
        assert audit.verify(s).ok  # the chain alone is fooled
    result = _verify(runtime)
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "rewritten" in result.problem


def test_checkpoint_log_deleted_is_not_intact(runtime: Runtime) -> None:
    _keygen(runtime)
    _fill(runtime, 3)
    checkpoints.log_path(runtime.settings).unlink()
    result = _verify(runtime)
    assert not result.ok
    assert "no signed checkpoint" in result.problem


def test_empty_log_and_deleted_checkpoints_is_not_intact(runtime: Runtime) -> None:
    _keygen(runtime)
    _fill(runtime, 3)
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    checkpoints.log_path(runtime.settings).unlink()
    result = _verify(runtime)
    assert (result.ok, result.entries) == (False, 0)
    assert "empty log" in result.problem


def test_checkpoint_rewritten_without_the_key_is_caught(runtime: Runtime) -> None:
    """The insider rewrites the DB and edits the checkpoint lines to match, but cannot sign them."""
    _keygen(runtime)
    _fill(runtime, 3)
    _rechain(runtime, {1: {"actor": "someone-else"}})
    with runtime.sessions() as s:
        new_head = s.execute(text("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")).one()
    path = checkpoints.log_path(runtime.settings)
    lines = path.read_text().splitlines()
    outer = json.loads(lines[-1])
    body = json.loads(outer["body"])
    body["hash"] = new_head[1]
    outer["body"] = json.dumps(body, sort_keys=True, separators=(",", ":"))
    lines[-1] = json.dumps(outer)
    path.write_text("\n".join(lines) + "\n")
    result = _verify(runtime)
    assert not result.ok
    assert "does not verify" in result.problem


def test_key_swap_is_caught_by_a_pinned_public_key(runtime: Runtime, tmp_path: Path) -> None:
    """The insider makes a new key, rewrites everything and signs it all: only a public key kept elsewhere sees."""
    pinned = tmp_path / "pinned.pub"
    shutil.copy(_keygen(runtime), pinned)
    _fill(runtime, 3)
    # the takeover: new key, rewritten entries, a fresh checkpoint log signed with the new key
    checkpoints.generate_key(checkpoints.key_path(runtime.settings), force=True)
    _rechain(runtime, {2: {"payload": {"i": 2, "text": "edited"}}})
    checkpoints.log_path(runtime.settings).unlink()
    assert runtime.checkpointer.record_head() is not None
    assert _verify(runtime).ok  # trusting whatever key sits beside the signing key is not enough ...
    result = _verify(runtime, pinned)  # ... the pinned key is
    assert not result.ok
    assert "not a trusted audit key" in result.problem


def test_key_swap_mid_log_is_caught_without_pinning(runtime: Runtime) -> None:
    _keygen(runtime)
    _fill(runtime, 2)
    checkpoints.generate_key(checkpoints.key_path(runtime.settings), force=True)
    _fill(runtime, 2, start=5)  # signed with the new key from here on
    result = _verify(runtime)
    assert not result.ok
    assert "checkpoint 1" in result.problem


def test_replayed_old_checkpoint_is_caught(runtime: Runtime) -> None:
    """The insider cuts the DB back to entry 2 and appends a copy of the (validly signed) checkpoint of entry 2."""
    _keygen(runtime)
    _fill(runtime, 4)
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq > 2"))
    path = checkpoints.log_path(runtime.settings)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    result = _verify(runtime)
    assert not result.ok
    assert "removed, replayed or reordered" in result.problem


def test_truncated_checkpoint_log_is_caught_by_a_head_kept_elsewhere(runtime: Runtime) -> None:
    _keygen(runtime)
    _fill(runtime, 4)
    kept = audit.Anchor.parse(_verify(runtime).head)
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq > 2"))
    path = checkpoints.log_path(runtime.settings)
    path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
    assert _verify(runtime).ok  # a consistent cut of both: the CT answer is a head published elsewhere
    with runtime.sessions() as s:
        result = audit.verify_settings(s, runtime.settings, anchors=(kept,))
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_unsigned_checkpoint_after_signed_ones_is_caught(runtime: Runtime) -> None:
    _keygen(runtime)
    _fill(runtime, 2)
    checkpoints.key_path(runtime.settings).unlink()  # the key file gone: the checkpointer writes unsigned
    _fill(runtime, 1, start=5)
    result = _verify(runtime)
    assert not result.ok
    assert "is not signed" in result.problem


def _unconstrained(rt: Runtime) -> None:
    """The insider's copy of the table without its NOT NULL and type constraints (CREATE TABLE AS drops them)."""
    with rt.engine.begin() as conn:
        conn.execute(text("CREATE TABLE audit_copy AS SELECT * FROM audit_log"))
        conn.execute(text("DROP TABLE audit_log"))
        conn.execute(text("ALTER TABLE audit_copy RENAME TO audit_log"))


_VALUES = st.one_of(
    st.none(),
    st.integers(-5, 2**40),
    st.text(max_size=20),
    st.binary(max_size=10),
    st.floats(allow_nan=True),
    st.sampled_from(["{", "[1,", "null", '"x"', "2026-13-45T99:00:00", "not json", "{}"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    column=st.sampled_from(["seq", "at", "actor", "action", "subject_id", "payload", "prev_hash", "hash"]),
    value=_VALUES,
)
def test_malformed_row_never_crashes_verify(runtime: Runtime, column: str, value: object) -> None:
    """Whatever an insider writes into a column (wrong type, NULL, not JSON), verify names an entry, never raises.

    SQLite stores any value in any column once the constraints are gone; PostgreSQL refuses a wrong type or a NULL
    itself, and what it stores (other text) must be named the same way.
    """
    sqlite = runtime.engine.dialect.name == "sqlite"
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    checkpoints.log_path(runtime.settings).unlink(missing_ok=True)
    _fill(runtime, 3)
    if sqlite:
        with runtime.engine.connect() as conn:
            ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'audit_log'")).scalar_one()
        if "NOT NULL" in ddl:  # the first example of the test: drop the constraints
            _unconstrained(runtime)
    try:
        with runtime.engine.begin() as conn:
            conn.execute(text(f"UPDATE audit_log SET {column} = :v WHERE seq = 2"), {"v": value})
    except DBAPIError:
        assert not sqlite, "SQLite without constraints takes any value"
        return  # PostgreSQL refused the value: nothing was stored to verify
    with runtime.sessions() as s:
        result = audit.verify_settings(s, runtime.settings, require_signed=False)
    if not result.ok:
        assert result.first_bad_seq in (1, 2, 3), result  # a changed seq can sort the row first
        assert result.problem


def test_non_json_payload_is_named_not_a_traceback(runtime: Runtime) -> None:
    _fill(runtime, 3)
    if runtime.engine.dialect.name != "sqlite":  # PostgreSQL's json column refuses it: no such row can exist
        with pytest.raises(DBAPIError), runtime.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET payload = 'not json {' WHERE seq = 2"))
        return
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET payload = 'not json {' WHERE seq = 2"))
    _unconstrained(runtime)
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET seq = NULL, at = NULL WHERE seq = 3"))
    with runtime.sessions() as s:
        result = audit.verify(s)
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "not JSON" in result.problem


def test_checkpoint_interval_puts_heads_off_until_flushed(runtime: Runtime) -> None:
    _keygen(runtime)
    runtime.checkpointer.interval = 3600.0
    _fill(runtime, 3)
    log = checkpoints.read_log(checkpoints.log_path(runtime.settings), audit.GENESIS)
    assert [c.seq for c in log.checkpoints] == [1]  # the first commit signs; the next two wait
    runtime.checkpointer.flush()  # what Runtime.close does
    last = checkpoints.read_last(checkpoints.log_path(runtime.settings), audit.GENESIS).last
    assert last is not None and last.seq == 3
    assert _verify(runtime).ok
