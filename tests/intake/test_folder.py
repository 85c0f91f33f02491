"""The drop folder: accepted files go to .done, refused ones to .rejected with a reason file."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from abusedesk.cli.intake import wire_all
from abusedesk.intake.folder import DropFolder
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import RawInputRow
from tests.intake.samples import xarf_bytes


def test_files_are_taken_once_settled_and_moved(runtime: Runtime, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    folder = DropFolder(wire_all(runtime), drop)
    (drop / "report.json").write_bytes(xarf_bytes())
    (drop / ".partial").write_bytes(b"being uploaded")
    first = folder.poll()
    assert first.waiting == ["report.json"]  # seen once: may still be growing
    assert (drop / "report.json").exists()
    second = folder.poll()
    assert second.accepted == ["report.json"]
    assert not (drop / "report.json").exists()
    assert (drop / ".done" / "report.json").read_bytes() == xarf_bytes()
    assert (drop / ".partial").exists()
    with runtime.sessions() as s:
        (row,) = s.scalars(select(RawInputRow)).all()
    assert row.channel == "folder"
    assert row.meta["filename"] == "report.json"
    assert row.status == "parsed"  # the poll drained the pipeline


def test_growing_file_waits(runtime: Runtime, tmp_path: Path) -> None:
    folder = DropFolder(wire_all(runtime), tmp_path)
    path = tmp_path / "feed.csv"
    path.write_bytes(b"a")
    folder.poll()
    path.write_bytes(b"ab")
    assert folder.poll().waiting == ["feed.csv"]
    assert folder.poll().accepted == ["feed.csv"]


def test_oversized_file_goes_to_rejected_with_reason(runtime: Runtime, tmp_path: Path) -> None:
    runtime.settings.intake.max_input_bytes = 100
    folder = DropFolder(wire_all(runtime), tmp_path, settle=False)
    (tmp_path / "huge.csv").write_bytes(b"x" * 101)
    result = folder.poll()
    assert result.rejected == ["huge.csv"]
    assert (tmp_path / ".rejected" / "huge.csv").exists()
    reason = (tmp_path / ".rejected" / "huge.csv.reason.txt").read_text()
    assert "101 bytes, over the limit of 100 bytes" in reason
    with runtime.sessions() as s:
        assert s.scalars(select(RawInputRow)).all() == []


def test_same_name_twice_keeps_both(runtime: Runtime, tmp_path: Path) -> None:
    folder = DropFolder(wire_all(runtime), tmp_path, settle=False)
    (tmp_path / "r.json").write_bytes(xarf_bytes())
    folder.poll()
    (tmp_path / "r.json").write_bytes(xarf_bytes(report_id="7d6f3c2a-9a4e-4f5e-8a1b-0c2d3e4f5a6b"))
    folder.poll()
    assert len(list((tmp_path / ".done").iterdir())) == 2
