"""A feed file larger than the door's in-memory limit is streamed in: copied and hashed a chunk at a time, parsed
as a stream, its events committed in chunks; mail over the limit is still refused (it is held whole)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from abusedesk.intake.channels import wire_channels
from abusedesk.intake.mailbox import import_paths
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import EventRow, RawInputRow
from tests.conftest import CORPUS

SAMPLE = CORPUS / "reports" / "intelmq-shadowserver-testdata" / "scan_telnet.csv"


def telnet_feed(path: Path, rows: int) -> Path:
    if not SAMPLE.is_file():
        pytest.fail(f"the corpus sample {SAMPLE} is missing")
    header, *lines = SAMPLE.read_text().splitlines()
    out = [header]
    for k in range(rows):
        cells = lines[k % len(lines)].split(",")
        cells[0] = f'"2026-03-01 {k // 3600 % 24:02d}:{k // 60 % 60:02d}:{k % 60:02d}"'
        cells[1] = f'"192.0.2.{k % 250}"' if k < 250 else f'"100.64.{k >> 8 & 255}.{k & 255}"'
        out.append(",".join(cells))
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.mark.corpus
def test_a_feed_over_the_input_limit_is_streamed_in_and_parsed_in_chunks(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import abusedesk.intake.service as service

    monkeypatch.setattr(service, "CHUNK_EVENTS", 500)  # several chunks, each committed and handed on
    feed = telnet_feed(tmp_path / "2026-03-01-scan_telnet-world.csv", 1800)
    runtime.settings.intake.max_input_bytes = feed.stat().st_size // 4
    door = wire_channels(runtime)
    [item] = import_paths(door, [feed])
    assert item.receipt is not None, item.error
    runtime.drain()
    with runtime.sessions() as s:
        row = s.get(RawInputRow, item.receipt.raw_id)
        assert row is not None
        assert (row.status, row.parser, row.size, row.event_count) == (
            "parsed",
            "shadowserver",
            feed.stat().st_size,
            1800,
        )
        assert s.scalar(select(func.count()).select_from(EventRow)) == 1800
    assert runtime.raw_store.get(item.receipt.raw_id) == feed.read_bytes()
    # the same file again is a duplicate, recognised by its streamed content key
    [again] = import_paths(door, [feed])
    assert again.receipt is not None and again.receipt.duplicate


def test_mail_over_the_input_limit_and_files_over_the_file_limit_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    runtime.settings.intake.max_input_bytes = 1000
    runtime.settings.intake.max_file_bytes = 5000
    mail = tmp_path / "big.eml"
    mail.write_bytes(b"From: a@example.net\nSubject: big\n\n" + b"x" * 2000 + b"\n")
    feed = tmp_path / "big.csv"
    feed.write_bytes(b"a,b\n" + b"1,2\n" * 2000)
    door = wire_channels(runtime)
    by_source = {i.source: i for i in import_paths(door, [mail, feed])}
    assert by_source[str(mail)].error is not None and "intake.max_input_bytes" in by_source[str(mail)].error
    assert by_source[str(feed)].error is not None and "intake.max_file_bytes" in by_source[str(feed)].error
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RawInputRow)) == 0
