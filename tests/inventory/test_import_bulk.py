"""The bulk paths of the inventory import: the fast CSV reader, inet_pton prefixes, C time parsing, indexes built
after the rows, COPY text. Each must give exactly what the careful path gives, errors included."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from abusedesk.domain.errors import ConfigError
from abusedesk.inventory import importer
from abusedesk.inventory import service as service_module
from abusedesk.inventory.importer import _parse_prefix_checked, _Times, parse_aware_time, parse_prefix
from abusedesk.inventory.index import to_us
from abusedesk.inventory.service import InventoryService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.inventory import AccountRow, AllocationRow, CustomerRow, ServiceRow
from tests.inventory.sample import sample, write_csv_dir

PREFIXES = [
    "192.0.2.0/24", "192.0.2.7/32", "0.0.0.0/0", "198.51.100.128/25", "203.0.113.1/24", "203.0.113.0/33",
    "010.0.0.0/8", "192.0.2.0/024", "192.0.2/24", "256.0.2.0/24", "192.0.2.0 /24", "192.0.2.0", "192.0.2.0/",
    "2001:db8::/32", "2001:DB8:0:0:1::/80", "2001:db8:0:0:1:0:0:1/128", "2001:db8:1:0:0:0:0:0/48", "::/0",
    "::1/128", "::2:0:0/96", "1:0:0:1:0:0:0:1/128", "2001:db8::1/64", "2001:db8::/129", "2001:db8:::/32",
    "::ffff:192.0.2.0/120", "::ffff:c000:200/120", "2001:db8::192.0.2.0/120", "2001:0db8:0000::/32",
    "fe80::1%eth0/128", "2001:db8::/32x", "2001:db8::/+32", "1.2.3.4/٣", "١.2.3.4/32", "192.0.2.0\x00/24",
    "2001:db8::\x00/32",
]  # fmt: skip


@pytest.mark.parametrize("text", PREFIXES)
def test_fast_prefix_parser_agrees_with_the_checked_one(text: str) -> None:
    def run(parse: Any) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            return ("error", str(exc))

    assert run(parse_prefix) == run(_parse_prefix_checked)


TIMES = [
    "2026-03-01T12:00:00Z", "2026-03-01T12:00:00z", "2026-03-01T12:00:00+02:00", "2026-03-01T12:00:00.5Z",
    "2026-03-01T12:00:00.123456-05:30", "2026-03-01 12:00:00Z", " 2026-03-01T12:00:00Z ", "2026-03-01T12:00:00",
    "2026-03-01", "2026-02-30T00:00:00Z", "yesterday", "", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
]  # fmt: skip


@pytest.mark.parametrize("text", TIMES)
def test_time_cache_agrees_with_parse_aware_time(text: str) -> None:
    def run(parse: Any) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            return ("error", str(exc))

    assert run(_Times().us) == run(lambda t: to_us(parse_aware_time(t)))


def _big_csv(path: Path, n: int, bad: dict[int, list[str]] | None = None) -> Path:
    """``n`` allocations (/32s in 10.0.0.0/8 plus /64s of 2001:db8::/32, a few re-assigned); ``bad`` replaces
    the row with that index (row i is on line i + 2)."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prefix", "service_id", "valid_from", "valid_to"])
        for i in range(n):
            if bad and i in bad:
                w.writerow(bad[i])
            elif i % 3 == 0:
                w.writerow([f"2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::/64", "svc-v6", "2026-01-01T00:00:00Z", ""])
            elif i % 3 == 1:
                ip = (10 << 24) + i
                prefix = f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}/32"
                w.writerow([prefix, "svc-a", f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                            f"2026-02-{1 + i % 28:02d}T00:00:00+01:00"])  # fmt: skip
            else:
                w.writerow(["198.51.100.0/24" if i == 2 else f"2001:db8:ffff:{i:x}::/64", "svc-b",
                            "2025-06-01T00:00:00Z", ""])  # fmt: skip
    return path


def _allocation_count(rt: Runtime) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AllocationRow)) or 0)


def test_bad_rows_deep_in_a_large_file_are_named_by_line(runtime: Runtime, tmp_path: Path) -> None:
    svc = InventoryService(runtime)
    svc.import_file(write_csv_dir(tmp_path / "base"))
    before = _allocation_count(runtime)
    bad = {
        41_234: ["10.1.2.3/24", "svc-a", "2026-01-01T00:00:00Z", ""],
        50_001: ["2001:db8::/32", "svc-a", "2026-01-01T00:00:00", ""],
        59_998: ["192.0.2.0/24", "svc-a", "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"],
        60_000: ["192.0.2.0/24", "svc-a", "2026-01-02T00:00:00Z"],
        60_001: ["192.0.2.0/24", "svc-x", "2026-01-02T00:00:00Z", ""],
        60_002: ["", "svc-a", "2026-01-02T00:00:00Z", ""],
    }
    path = _big_csv(tmp_path / "allocations.csv", 60_010, bad)
    with pytest.raises(ConfigError) as err:
        svc.import_file(path)
    got = [(e.file, e.line, e.field) for e in err.value.errors]
    assert got == [
        (str(path), 41_236, "prefix"), (str(path), 50_003, "valid_from"), (str(path), 60_000, "valid_to"),
        (str(path), 60_002, None), (str(path), 60_003, "service_id"), (str(path), 60_004, "prefix"),
    ]  # fmt: skip
    messages = [e.message for e in err.value.errors]
    assert "'10.1.2.3/24' has host bits set (did you mean 10.1.2.0/24?)" in messages[0]
    assert "has no time zone" in messages[1]
    assert "is not after valid_from" in messages[2]
    assert "has 3 fields, the header has 4" in messages[3]
    assert "service 'svc-x' is not in the file or the database" in messages[4]
    assert "is missing or empty" in messages[5]
    assert all(m.startswith(f"{path}:") and "allocations row" in m for m in messages)
    assert _allocation_count(runtime) == before


def test_large_import_into_an_empty_table_then_again_and_a_reassignment(
    runtime: Runtime, tmp_path: Path, monkeypatch: Any
) -> None:
    """The first import writes the rows and then builds the indexes; re-import changes nothing; a later row of a
    prefix closes the old interval."""
    monkeypatch.setattr(service_module, "REBUILD_INDEXES_AT", 1_000)
    data = sample()
    data["allocations"] = []
    svc = InventoryService(runtime)
    svc.import_file(write_csv_dir(tmp_path / "base", data))
    assert _allocation_count(runtime) == 0
    n = 5_000
    path = _big_csv(tmp_path / "allocations.csv", n)
    report = svc.import_file(path)
    assert report.counts["allocations"] == {"added": n, "unchanged": 0, "closed": 0}
    assert _allocation_count(runtime) == n
    names = {ix["name"] for ix in inspect(runtime.engine).get_indexes("allocations")}
    assert {"ix_allocations_bounds", "ix_allocations_prefix", "ix_allocations_service_id"} <= names
    fks = inspect(runtime.engine).get_foreign_keys("allocations")  # dropped during the COPY on PostgreSQL
    assert [(fk["constrained_columns"], fk["referred_table"]) for fk in fks] == [(["service_id"], "services")]
    noon = datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert svc.attribute("10.0.0.4", noon).prefix == "10.0.0.4/32"
    assert svc.attribute("2001:db8:0:3::1", noon).service_id == "svc-v6"
    again = svc.import_file(path)
    assert not again.changed and again.counts["allocations"] == {"added": 0, "unchanged": n, "closed": 0}
    later = tmp_path / "later.csv"  # the CMDB sends the new owner only
    later.write_text("prefix,service_id,valid_from\n198.51.100.0/24,svc-a,2026-03-01T00:00:00Z\n")
    moved = svc.import_file(later)
    assert moved.counts["allocations"] == {"added": 1, "unchanged": 0, "closed": 1}
    assert svc.attribute("198.51.100.9", datetime(2026, 2, 28, tzinfo=UTC)).service_id == "svc-b"
    assert svc.attribute("198.51.100.9", datetime(2026, 3, 1, tzinfo=UTC)).service_id == "svc-a"
    assert _allocation_count(runtime) == n + 1


def test_service_ids_that_need_escaping_survive_the_bulk_write(runtime: Runtime, tmp_path: Path) -> None:
    """COPY text escapes backslash and tab (bulk.copy_text); SQLite takes them as they are."""
    odd = "svc\\tab\there"
    data = sample()
    data["services"].append({"id": odd, "project_id": "prj-a", "kind": "vm", "name": "odd", "hostnames": []})
    data["allocations"] = [{"prefix": "192.0.2.0/24", "service_id": odd, "valid_from": "2026-01-01T00:00:00Z"}]
    svc = InventoryService(runtime)
    svc.import_file(write_csv_dir(tmp_path / "csv", data))
    with runtime.sessions() as s:
        assert s.scalars(select(AllocationRow.service_id)).all() == [odd]
        # entities are written by COPY on PostgreSQL: the columns' defaults are filled as an INSERT fills them
        customer = s.get(CustomerRow, "cus-a")
        service = s.get(ServiceRow, odd)
        assert customer is not None and (customer.status, customer.meta) == ("active", {})
        assert service is not None and (service.status, service.data_access, service.hostnames) == (
            "active", "enabled", [])  # fmt: skip
        account = s.get(AccountRow, "acc-a")
        assert account is not None and account.created_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert svc.attribute("192.0.2.1", datetime(2026, 3, 1, tzinfo=UTC)).service_id == odd


def test_the_fast_reader_reports_progress_and_lines(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(importer, "PROGRESS_EVERY", 1_000)
    seen: list[tuple[str, int, int | None]] = []
    path = _big_csv(tmp_path / "allocations.csv", 2_500)
    inv = importer.read_inventory(path, progress=lambda *a: seen.append(a))
    assert seen == [("read", 1_000, None), ("read", 2_000, None)]
    assert [(a.where.file, a.where.row) for a in inv.allocations[::1_000]] == [
        (str(path), 2), (str(path), 1_002), (str(path), 2_002)]  # fmt: skip


def test_reimport_compares_exact_times_including_fractions_and_before_1970(runtime: Runtime, tmp_path: Path) -> None:
    """Recorded times are read back as epoch µs by the database itself; each must equal the file's to the µs."""
    data = sample()
    data["allocations"] = [
        {"prefix": "192.0.2.0/25", "service_id": "svc-a", "valid_from": "1969-12-31T23:59:59.5Z",
         "valid_to": "1970-01-01T00:00:00.000001Z"},
        {"prefix": "192.0.2.128/25", "service_id": "svc-a", "valid_from": "1960-06-01T00:00:00.999999Z",
         "valid_to": ""},
        {"prefix": "2001:db8:5::/48", "service_id": "svc-v6", "valid_from": "2026-01-01T00:00:00.000001+05:00",
         "valid_to": "2026-01-01T00:00:00.000002+05:00"},
    ]  # fmt: skip
    svc = InventoryService(runtime)
    svc.import_file(write_csv_dir(tmp_path / "a", data))
    again = svc.import_file(write_csv_dir(tmp_path / "b", data))
    assert not again.changed and again.counts["allocations"] == {"added": 0, "unchanged": 3, "closed": 0}
    data["allocations"][0]["valid_to"] = "1970-01-01T00:00:00.000002Z"  # one µs later: a rewrite, refused
    with pytest.raises(ConfigError) as err:
        svc.import_file(write_csv_dir(tmp_path / "c", data))
    assert [e.field for e in err.value.errors] == ["valid_to"]
    assert "ended at 1970-01-01T00:00:00.000001Z" in err.value.errors[0].message


def test_sync_and_changes_among_many_unchanged_rows(runtime: Runtime, tmp_path: Path) -> None:
    """Only the touched prefixes are planned in full; the rest count as unchanged, and sync still sees them all."""
    data = sample()
    data["allocations"] = []
    svc = InventoryService(runtime)
    svc.import_file(write_csv_dir(tmp_path / "base", data))
    n = 3_000
    path = _big_csv(tmp_path / "allocations.csv", n)
    svc.import_file(path)
    lines = path.read_text().splitlines()
    # row 0 (2001:db8:0:0::/64, open) is dropped: sync closes it; row 3 gets an end: closed; a new /64 is added
    assert lines[1].startswith("2001:db8:0:0::/64") and lines[4].startswith("2001:db8:0:3::/64")
    lines[4] = "2001:db8:0:3::/64,svc-v6,2026-01-01T00:00:00Z,2026-02-01T00:00:00Z"
    del lines[1]
    lines.append("2001:db8:ffff:ffff::/64,svc-v6,2026-01-01T00:00:00Z,")
    changed = tmp_path / "changed.csv"
    changed.write_text("\n".join(lines) + "\n")
    report = svc.import_file(changed, sync=True)
    assert report.counts["allocations"] == {"added": 1, "unchanged": n - 2, "closed": 2}
    now = runtime.clock.now()
    assert svc.attribute("2001:db8::1", now).is_ours is False
    assert svc.attribute("2001:db8:0:3::1", datetime(2026, 1, 31, tzinfo=UTC)).service_id == "svc-v6"
    assert not svc.attribute("2001:db8:0:3::1", datetime(2026, 2, 1, tzinfo=UTC)).is_ours
    assert svc.attribute("2001:db8:ffff:ffff::1", now).service_id == "svc-v6"
    assert not svc.import_file(changed, sync=True).changed


def test_a_failing_bulk_write_rolls_back_rows_indexes_and_foreign_key(
    runtime: Runtime, tmp_path: Path, monkeypatch: Any
) -> None:
    """The indexes (and on PostgreSQL the foreign key) are dropped inside the import's transaction: a failure in
    the middle of the write leaves the table as it was, indexes and constraint included."""
    monkeypatch.setattr(service_module, "REBUILD_INDEXES_AT", 1_000)
    data = sample()
    data["allocations"] = []
    svc = InventoryService(runtime)
    svc.import_file(write_csv_dir(tmp_path / "base", data))
    written = 0
    real = service_module._UtcText.__call__

    def fail_midway(self: Any, us: int) -> str:  # a disk full, a lost connection: anything after the drop
        nonlocal written
        written += 1
        if written > 2_000:
            raise OSError("write failed")
        return real(self, us)

    monkeypatch.setattr(service_module._UtcText, "__call__", fail_midway)
    with pytest.raises(OSError, match="write failed"):
        svc.import_file(_big_csv(tmp_path / "allocations.csv", 5_000))
    assert _allocation_count(runtime) == 0
    names = {ix["name"] for ix in inspect(runtime.engine).get_indexes("allocations")}
    assert {"ix_allocations_bounds", "ix_allocations_prefix", "ix_allocations_service_id"} <= names
    assert len(inspect(runtime.engine).get_foreign_keys("allocations")) == 1
    monkeypatch.setattr(service_module._UtcText, "__call__", real)
    assert svc.import_file(tmp_path / "allocations.csv").counts["allocations"]["added"] == 5_000
