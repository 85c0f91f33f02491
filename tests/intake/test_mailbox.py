"""maildir, mbox and plain-file import: every message once; a second import records duplicates only."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from sqlalchemy import func, select

from abusedesk.cli.intake import wire_all
from abusedesk.intake.mailbox import import_paths, is_maildir, is_mbox
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import RawInputRow
from tests.intake.samples import complaint, xarf_bytes


def _count(rt: Runtime) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(RawInputRow)) or 0)


def _maildir(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "Maildir"
    box = mailbox.Maildir(path, create=True)
    for i in range(n):
        box.add(complaint(message_id=f"<m{i}@example.net>", subject=f"complaint {i}"))
    box.close()
    return path


def _mbox(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "abuse.mbox"
    box = mailbox.mbox(path, create=True)
    for i in range(n):
        box.add(complaint(message_id=f"<b{i}@example.net>", subject=f"boxed {i}", body="From here on, spam.\n"))
    box.flush()
    box.close()
    return path


def test_maildir_import_and_reimport(runtime: Runtime, tmp_path: Path) -> None:
    door = wire_all(runtime)
    path = _maildir(tmp_path, 3)
    assert is_maildir(path)
    first = import_paths(door, [path])
    assert [i.receipt is not None and not i.receipt.duplicate for i in first] == [True, True, True]
    assert _count(runtime) == 3
    again = import_paths(door, [path])
    assert all(i.receipt is not None and i.receipt.duplicate for i in again)
    assert {i.receipt.raw_id for i in again if i.receipt} == {i.receipt.raw_id for i in first if i.receipt}
    assert _count(runtime) == 3
    with runtime.sessions() as s:
        channels = set(s.scalars(select(RawInputRow.channel)))
    assert channels == {"maildir"}


def test_mbox_import_and_reimport(runtime: Runtime, tmp_path: Path) -> None:
    door = wire_all(runtime)
    path = _mbox(tmp_path, 4)
    assert is_mbox(path)
    first = import_paths(door, [path])
    assert len(first) == 4
    assert _count(runtime) == 4
    for item in first:
        assert item.receipt is not None
        data = runtime.raw_store.get(item.receipt.raw_id)
        assert not data.startswith(b"From ")  # the mbox separator line is not part of the message
        assert b"From here on, spam." in data  # the body line starting with "From " survives unquoted
    import_paths(door, [path])
    assert _count(runtime) == 4


def test_plain_files_and_directories(runtime: Runtime, tmp_path: Path) -> None:
    door = wire_all(runtime)
    folder = tmp_path / "reports"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.json").write_bytes(xarf_bytes())
    (folder / "sub" / "two.eml").write_bytes(complaint())
    (folder / ".hidden").write_bytes(b"ignored")
    items = import_paths(door, [folder])
    assert sorted(Path(i.source).name for i in items) == ["one.json", "two.eml"]
    runtime.drain()
    with runtime.sessions() as s:
        rows = {r.meta["filename"]: r for r in s.scalars(select(RawInputRow))}
    assert rows["one.json"].channel == "file"
    assert rows["one.json"].status == "parsed"
    assert rows["two.eml"].status in ("parsed", "quarantined")


def test_oversized_file_is_refused_with_reason(runtime: Runtime, tmp_path: Path) -> None:
    runtime.settings.intake.max_input_bytes = 1000
    door = wire_all(runtime)
    big = tmp_path / "big.eml"  # mail is held whole: over max_input_bytes it is refused (a feed would stream)
    big.write_bytes(b"From: cert@example.net\nSubject: big\n\n" + b"192.0.2.1,2026-03-01T00:00:00Z\n" * 100)
    small = tmp_path / "small.json"
    small.write_bytes(xarf_bytes())
    runtime.settings.intake.max_input_bytes = max(1000, small.stat().st_size)
    items = import_paths(door, [big, small])
    assert items[0].receipt is None
    assert items[0].error is not None
    assert "over the limit" in items[0].error
    assert "intake.max_input_bytes" in items[0].error
    assert items[1].receipt is not None
    assert _count(runtime) == 1


def test_missing_path(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a file nor a directory"):
        import_paths(wire_all(runtime), [tmp_path / "nope"])
