"""Policy versions are stored once each, and a case can rebuild the policy it was opened under."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from abusedesk.domain.errors import NotFound
from abusedesk.policy import load_policy, load_policy_text
from abusedesk.policy.versions import get_version, get_version_text, list_versions, record_version
from abusedesk.runtime import Runtime
from abusedesk.store.db import transaction
from abusedesk.store.tables.policy import PolicyVersionRow

SHIPPED_TEXT = resources.files("abusedesk.policy").joinpath("data", "aup-2025-06-10.yaml").read_text("utf-8")


def _count(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(PolicyVersionRow)) or 0)


def test_runtime_policy_records_its_version_once(runtime: Runtime) -> None:
    policy = runtime.policy
    assert _count(runtime) == 1
    assert record_version(runtime, policy) is False
    assert record_version(runtime, load_policy()) is False
    assert _count(runtime) == 1
    [row] = list_versions(runtime)
    assert row["version"] == policy.version and row["sha256"] == policy.sha256
    assert row["source"].endswith("aup-2025-06-10.yaml")


def test_a_changed_policy_is_a_new_version_and_the_old_one_stays(runtime: Runtime, tmp_path: Path) -> None:
    old = runtime.policy
    path = tmp_path / "mine.yaml"
    path.write_text(SHIPPED_TEXT.replace("deadline: 72h", "deadline: 48h"), encoding="utf-8")
    new = load_policy(path)
    assert record_version(runtime, new) is True
    assert {r["version"] for r in list_versions(runtime)} == {old.version, new.version}
    again = get_version(runtime, old.version)
    assert again.version == old.version
    assert again.playbook_for("1.11", "medium").cease_deadline == old.playbook_for("1.11", "medium").cease_deadline
    rebuilt = get_version(runtime, new.version)
    assert rebuilt.sha256 == new.sha256 and rebuilt.source_text == new.source_text
    assert rebuilt.path == f"policy_versions:{new.version}"
    assert get_version_text(runtime, new.version) == path.read_text("utf-8")


def test_get_version_of_the_current_policy_reads_no_database(runtime: Runtime) -> None:
    assert get_version(runtime, runtime.policy.version) is runtime.policy


def test_unknown_version_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="never loaded"):
        get_version(runtime, "aiven-aup@000000000000")


def test_tampered_stored_text_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(SHIPPED_TEXT + "# mine\n", encoding="utf-8")
    mine = load_policy(path)
    record_version(runtime, mine)
    with transaction(runtime.sessions) as session:
        session.execute(
            update(PolicyVersionRow)
            .where(PolicyVersionRow.version == mine.version)
            .values(text=mine.source_text.replace("deadline: 72h", "deadline: 720h"))
        )
    with pytest.raises(NotFound, match="no longer matches"):
        get_version(runtime, mine.version)


def test_stored_text_round_trips_byte_for_byte(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "crlf.yaml"
    path.write_bytes(SHIPPED_TEXT.replace("\n", "\r\n").encode("utf-8"))
    crlf = load_policy(path)
    record_version(runtime, crlf)
    assert get_version(runtime, crlf.version).sha256 == crlf.sha256
    assert load_policy_text(get_version_text(runtime, crlf.version)).version == crlf.version
