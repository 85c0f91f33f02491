"""The audit chain finds every kind of tampering: altered, deleted, inserted, reordered and cut-off entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text, update

from abusedesk.domain.errors import ConfigError
from abusedesk.evidence import audit, checkpoints
from abusedesk.runtime import Runtime
from abusedesk.store.tables.evidence import AuditRow


def _fill(rt: Runtime, n: int = 5, start: int = 0) -> list[str]:
    """n entries, one commit each (as the services write them), the i-th at T0 + i s; returns their hashes."""
    hashes = []
    for i in range(start, start + n):
        with rt.sessions() as s, s.begin():
            row = audit.append(
                s,
                at=rt.clock.now() + timedelta(seconds=i),
                actor="tester",
                action="case.note",
                subject_type="case",
                subject_id=f"case-{i}",
                payload={"i": i, "text": f"note {i}"},
            )
            hashes.append(row.hash)
    return hashes


def _verify(rt: Runtime) -> audit.VerifyResult:
    """The chain against the checkpoint log (unsigned here: no key; tests/evidence/test_audit_signed.py signs)."""
    with rt.sessions() as s:
        return audit.verify_settings(s, rt.settings, require_signed=False)


def _last_checkpoint(rt: Runtime) -> checkpoints.Checkpoint | None:
    return checkpoints.read_log(checkpoints.log_path(rt.settings), audit.GENESIS).last


def test_intact_chain_verifies_and_checkpoint_follows_head(runtime: Runtime) -> None:
    hashes = _fill(runtime)
    result = _verify(runtime)
    assert result.ok, result.problem
    assert result.entries == 5
    assert result.head_hash == hashes[-1]
    assert result.anchor_seq == 5
    last = _last_checkpoint(runtime)
    assert last is not None
    assert (last.n, last.seq, last.hash, last.sig) == (5, 5, hashes[-1], None)  # one per commit, unsigned


def test_rolled_back_append_does_not_move_checkpoint(runtime: Runtime) -> None:
    _fill(runtime, 2)
    with runtime.sessions() as s, s.begin():
        audit.append(s, at=runtime.clock.now(), actor="t", action="x", subject_type="case", subject_id="c")
        s.rollback()
    last = _last_checkpoint(runtime)
    assert last is not None
    assert last.seq == 2
    assert _verify(runtime).ok


def test_altered_payload_is_named(runtime: Runtime) -> None:
    _fill(runtime)
    with runtime.engine.begin() as conn:
        conn.execute(update(AuditRow).where(AuditRow.seq == 3).values(payload={"i": 3, "text": "rewritten"}))
    result = _verify(runtime)
    assert not result.ok
    assert result.first_bad_seq == 3
    assert "altered" in result.problem


def test_altered_actor_by_raw_sql_is_named(runtime: Runtime) -> None:
    _fill(runtime)
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2"))
    result = _verify(runtime)
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_deleted_middle_entry_is_named(runtime: Runtime) -> None:
    _fill(runtime)
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    result = _verify(runtime)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "missing" in result.problem


def test_deleted_and_renumbered_entry_is_named(runtime: Runtime) -> None:
    """A careful forger deletes entry 3 and renumbers 4, 5 to close the gap; the link from (new) 3 breaks."""
    _fill(runtime)
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
        conn.execute(text("UPDATE audit_log SET seq = -seq WHERE seq > 3"))
        conn.execute(text("UPDATE audit_log SET seq = -seq - 1 WHERE seq < 0"))
    with runtime.sessions() as s:  # the anchor left out: the chain alone names it
        result = audit.verify(s)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "deleted, replaced or reordered" in result.problem


def test_inserted_entry_is_named(runtime: Runtime) -> None:
    """A forged entry 3 with a correct hash over entry 2, the old 3.. shifted up: the insertion is named."""
    hashes = _fill(runtime)
    at = runtime.clock.now()
    forged_hash = audit.entry_hash(hashes[1], 3, at, "forger", "case.note", "case", "c", {"forged": True})
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET seq = -seq WHERE seq >= 3"))
        conn.execute(text("UPDATE audit_log SET seq = -seq + 1 WHERE seq < 0"))
        conn.execute(
            AuditRow.__table__.insert().values(
                seq=3,
                at=at,
                actor="forger",
                action="case.note",
                subject_type="case",
                subject_id="c",
                payload={"forged": True},
                prev_hash=hashes[1],
                hash=forged_hash,
            )
        )
    with runtime.sessions() as s:
        result = audit.verify(s)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "were inserted" in result.problem


def test_reordered_entries_are_named(runtime: Runtime) -> None:
    _fill(runtime)
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET seq = 100 WHERE seq = 3"))
        conn.execute(text("UPDATE audit_log SET seq = 3 WHERE seq = 4"))
        conn.execute(text("UPDATE audit_log SET seq = 4 WHERE seq = 100"))
    result = _verify(runtime)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_deleted_tail_is_caught_by_the_checkpoint(runtime: Runtime) -> None:
    _fill(runtime)
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
    with runtime.sessions() as s:
        assert audit.verify(s).ok  # the chain alone cannot see a cut-off tail ...
    result = _verify(runtime)  # ... the checkpoint does
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "deleted from the end" in result.problem


def test_replaced_tail_is_caught_by_expect_head(runtime: Runtime) -> None:
    """Delete the tail and append new, validly chained entries: only a head kept elsewhere notices."""
    hashes = _fill(runtime, 4)
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    _fill(runtime, 1)  # a new entry 4, validly chained to 3
    with runtime.sessions() as s:
        assert audit.verify(s).ok
        result = audit.verify(s, anchors=(audit.Anchor.parse(f"4:{hashes[3]}"),))
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "replaced" in result.problem


def test_checkpoint_only_moves_forward(runtime: Runtime) -> None:
    hashes = _fill(runtime, 3)
    assert runtime.checkpointer.record((2, hashes[1])) is None  # behind the last checkpoint: nothing written
    last = _last_checkpoint(runtime)
    assert last is not None
    assert (last.seq, last.hash) == (3, hashes[2])


@pytest.mark.parametrize("bad", ["nonsense", "3:abc", "-1:" + "a" * 64, '{"seq": 1}'])
def test_bad_expect_head_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="--expect-head"):
        audit.Anchor.parse(bad)


def test_append_in_rolled_back_savepoint_is_not_checkpointed(runtime: Runtime) -> None:
    _fill(runtime, 2)
    with runtime.sessions() as s, s.begin():
        sp = s.begin_nested()
        audit.append(s, at=runtime.clock.now(), actor="t", action="x", subject_type="case", subject_id="c")
        sp.rollback()
    last = _last_checkpoint(runtime)
    assert last is not None
    assert (last.seq, last.hash) == (2, _verify(runtime).head_hash)
    assert _verify(runtime).ok
