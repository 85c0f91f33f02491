"""Inventory import on SQLite and PostgreSQL: formats, bad rows, idempotence, re-assignment, sync, the index cache."""

from __future__ import annotations

import csv
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from abusedesk.domain.errors import ConfigError
from abusedesk.domain.ipnet import V4_BASE, ip_to_int
from abusedesk.inventory.service import InventoryService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.inventory import (
    AccountRow,
    AllocationRow,
    CustomerRow,
    InventoryImportRow,
    ProjectRow,
    ServiceRow,
)
from tests.inventory.sample import csv_rows, sample, write_csv_dir, write_json

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def counts(rt: Runtime) -> dict[str, int]:
    with rt.sessions() as s:
        return {
            row.__tablename__: int(s.scalar(select(func.count()).select_from(row)) or 0)
            for row in (CustomerRow, ProjectRow, ServiceRow, AccountRow, AllocationRow, InventoryImportRow)
        }


def allocations(rt: Runtime) -> list[tuple[str, str, datetime, datetime | None]]:
    with rt.sessions() as s:
        rows = s.execute(select(AllocationRow).order_by(AllocationRow.id)).scalars()
        return [(r.prefix, r.service_id, r.valid_from, r.valid_to) for r in rows]


EMPTY = {"customers": 0, "projects": 0, "services": 0, "accounts": 0, "allocations": 0, "inventory_imports": 0}


def test_json_import_then_whois(runtime: Runtime, tmp_path: Path) -> None:
    svc = InventoryService(runtime)
    report = svc.import_file(write_json(tmp_path / "inv.json"))
    assert report.counts["allocations"] == {"added": 7, "unchanged": 0, "closed": 0}
    assert report.counts["customers"] == {"added": 2, "updated": 0, "unchanged": 0}
    assert report.generation == 1 and report.changed
    assert counts(runtime) == {**EMPTY, "customers": 2, "projects": 2, "services": 4, "accounts": 1,
                               "allocations": 7, "inventory_imports": 1}  # fmt: skip
    # a zone offset is kept as the same instant in UTC
    assert ("198.51.100.0/25", "svc-a", datetime(2025, 5, 31, 22, 0, tzinfo=UTC),
            datetime(2025, 12, 1, tzinfo=UTC)) in allocations(runtime)  # fmt: skip
    who = svc.whois("203.0.113.5", NOON - timedelta(seconds=1))
    assert who["ours"] and who["customer"]["name"] == "Example A Ltd"
    assert who["service"]["hostnames"] == ["www.example.com", "api.example.com"]
    assert who["prefix"] == "203.0.113.0/28" and who["valid_to"] == "2026-03-01T12:00:00Z"
    assert svc.whois("203.0.113.5", NOON)["customer"]["id"] == "cus-b"
    assert svc.attribute("2001:db8:1::9", NOON).service_id == "svc-a"
    assert svc.attribute("2001:db8:2::9", NOON).service_id == "svc-v6"
    # default time is the runtime's clock (2026-03-01T10:00Z): before noon the /28 is still svc-a's
    assert svc.attribute("203.0.113.5").service_id == "svc-a"
    with pytest.raises(ValueError, match="not an IPv4 or IPv6 address"):
        svc.whois("203.0.113.300")


def test_csv_directory_single_csv_and_json_agree(runtime: Runtime, tmp_path: Path) -> None:
    svc = InventoryService(runtime)
    first = svc.import_file(write_csv_dir(tmp_path / "csv"))
    assert first.counts["allocations"]["added"] == 7 and first.counts["services"]["added"] == 4
    with runtime.sessions() as s:
        assert s.get(ServiceRow, "svc-a").hostnames == ["www.example.com", "api.example.com"]  # type: ignore[union-attr]
        assert s.get(AccountRow, "acc-a").created_at == datetime(2025, 1, 1, tzinfo=UTC)  # type: ignore[union-attr]
    again = svc.import_file(write_json(tmp_path / "inv.json"))
    assert not again.changed
    one = svc.import_file(tmp_path / "csv" / "allocations.csv")  # one CSV file: its header says what it holds
    assert one.counts["allocations"] == {"added": 0, "unchanged": 7, "closed": 0}
    assert counts(runtime)["inventory_imports"] == 1


def test_reimport_changes_nothing_and_keeps_the_generation(runtime: Runtime, tmp_path: Path) -> None:
    svc = InventoryService(runtime)
    path = write_json(tmp_path / "inv.json")
    svc.import_file(path)
    index = svc.index()
    before = allocations(runtime)
    report = svc.import_file(path)
    assert not report.changed and report.generation == 1
    assert report.counts["allocations"] == {"added": 0, "unchanged": 7, "closed": 0}
    assert report.counts["services"] == {"added": 0, "updated": 0, "unchanged": 4}
    assert allocations(runtime) == before
    assert svc.index() is index  # nothing changed: the cached index stays


def test_reassignment_closes_the_old_interval(runtime: Runtime, tmp_path: Path) -> None:
    svc = InventoryService(runtime)
    data = sample()
    data["allocations"] = [{"prefix": "192.0.2.0/24", "service_id": "svc-a", "valid_from": "2026-01-01T00:00:00Z"}]
    svc.import_file(write_json(tmp_path / "one.json", data))
    old_index = svc.index()
    assert svc.attribute("192.0.2.9", NOON).service_id == "svc-a"
    # the CMDB now says: from noon the prefix is svc-b's (only the new row is sent)
    data["allocations"] = [{"prefix": "192.0.2.0/24", "service_id": "svc-b", "valid_from": "2026-03-01T12:00:00Z"}]
    report = svc.import_file(write_json(tmp_path / "two.json", data))
    assert report.counts["allocations"] == {"added": 1, "unchanged": 0, "closed": 1}
    assert allocations(runtime) == [
        ("192.0.2.0/24", "svc-a", datetime(2026, 1, 1, tzinfo=UTC), NOON),
        ("192.0.2.0/24", "svc-b", NOON, None),
    ]
    assert svc.index() is not old_index  # rebuilt for the new generation
    assert svc.attribute("192.0.2.9", NOON - timedelta(seconds=1)).customer_id == "cus-a"
    assert svc.attribute("192.0.2.9", NOON).customer_id == "cus-b"
    # sending the full history afterwards is the same state: nothing changes
    data["allocations"] = [
        {"prefix": "192.0.2.0/24", "service_id": "svc-a", "valid_from": "2026-01-01T00:00:00Z",
         "valid_to": "2026-03-01T12:00:00Z"},
        {"prefix": "192.0.2.0/24", "service_id": "svc-b", "valid_from": "2026-03-01T12:00:00Z"},
    ]  # fmt: skip
    assert not svc.import_file(write_json(tmp_path / "three.json", data)).changed


def test_valid_to_given_later_closes_the_open_interval(runtime: Runtime, tmp_path: Path) -> None:
    svc = InventoryService(runtime)
    data = sample()
    svc.import_file(write_json(tmp_path / "a.json", data))
    data["allocations"][5]["valid_to"] = "2026-02-15T00:00:00Z"  # 2001:db8::/32 ends
    data["customers"][0]["name"] = "Example A Limited"
    report = svc.import_file(write_json(tmp_path / "b.json", data))
    assert report.counts["allocations"] == {"added": 0, "unchanged": 6, "closed": 1}
    assert report.counts["customers"] == {"added": 0, "updated": 1, "unchanged": 1}
    assert not svc.attribute("2001:db8:2::1", NOON).is_ours
    assert svc.attribute("2001:db8:2::1", datetime(2026, 2, 14, tzinfo=UTC)).is_ours
    with runtime.sessions() as s:
        assert s.get(CustomerRow, "cus-a").name == "Example A Limited"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # a closed interval keeps its end: history is not rewritten
        (lambda a: a[1].update(valid_to="2026-03-01T11:00:00Z"), "ended at 2026-03-01T12:00:00Z"),
        # the same start with another service would rewrite who had it
        (lambda a: a[0].update(service_id="svc-b"), "already belongs to service 'svc-lb'"),
        # a new interval overlapping a recorded, closed one
        (lambda a: a.__setitem__(3, {"prefix": "203.0.113.7/32", "service_id": "svc-a",
                                     "valid_from": "2026-02-01T12:00:00Z"}), "overlaps allocation 4"),
    ],
)  # fmt: skip
def test_changes_that_rewrite_history_are_refused(runtime: Runtime, tmp_path: Path, change: Any, message: str) -> None:
    svc = InventoryService(runtime)
    data = sample()
    svc.import_file(write_json(tmp_path / "a.json", data))
    before = allocations(runtime)
    change(data["allocations"])
    with pytest.raises(ConfigError) as err:
        svc.import_file(write_json(tmp_path / "b.json", data))
    assert len(err.value.errors) == 1 and message in err.value.errors[0].message
    assert "nothing was imported" in err.value.message
    assert allocations(runtime) == before and counts(runtime)["inventory_imports"] == 1


def test_sync_closes_open_allocations_missing_from_the_file(runtime: Runtime, tmp_path: Path) -> None:
    svc = InventoryService(runtime)
    data = sample()
    svc.import_file(write_json(tmp_path / "a.json", data))
    data["allocations"] = [a for a in data["allocations"] if a["prefix"] != "2001:db8::/32"]
    assert not svc.import_file(write_json(tmp_path / "b.json", data)).changed  # without sync: a partial file
    report = svc.import_file(tmp_path / "b.json", sync=True)
    assert report.counts["allocations"] == {"added": 0, "unchanged": 6, "closed": 1}
    now = runtime.clock.now()
    assert ("2001:db8::/32", "svc-v6", datetime(2026, 1, 1, tzinfo=UTC), now) in allocations(runtime)


# ---------------------------------------------------------------------------- bad rows, one case each


def _set(kind: str, n: int, **values: Any) -> Any:
    def change(data: dict[str, list[dict[str, Any]]]) -> None:
        data[kind][n].update(values)

    return change


BAD_ROWS = [
    # (case, change, record type, row (1-based in its list), field, reason)
    ("naive valid_from", _set("allocations", 1, valid_from="2026-01-01T00:00:00"), "allocations", 2, "valid_from",
     "has no time zone"),
    ("naive created_at", _set("accounts", 0, created_at="2025-01-01 00:00"), "accounts", 1, "created_at",
     "has no time zone"),
    ("not a time", _set("allocations", 0, valid_from="yesterday"), "allocations", 1, "valid_from",
     "not an ISO 8601 time"),
    ("bad prefix", _set("allocations", 3, prefix="203.0.113.300/32"), "allocations", 4, "prefix",
     "not a valid IP prefix"),
    ("host bits", _set("allocations", 0, prefix="203.0.113.1/24"), "allocations", 1, "prefix",
     "host bits set (did you mean 203.0.113.0/24?)"),
    ("no length", _set("allocations", 0, prefix="203.0.113.1"), "allocations", 1, "prefix", "needs a length"),
    ("end before start", _set("allocations", 3, valid_to="2026-01-01T00:00:00Z"), "allocations", 4, "valid_to",
     "is not after valid_from"),
    ("unknown service", _set("allocations", 2, service_id="svc-x"), "allocations", 3, "service_id",
     "service 'svc-x' is not in the file or the database"),
    ("unknown customer", _set("projects", 1, customer_id="cus-x"), "projects", 2, "customer_id",
     "customer 'cus-x' is not in the file or the database"),
    ("unknown project", _set("services", 3, project_id="prj-x"), "services", 4, "project_id",
     "project 'prj-x' is not in"),
    ("bad email", _set("customers", 1, contact_email="noc.example.net"), "customers", 2, "contact_email",
     "is not an e-mail address"),
    ("missing name", _set("services", 0, name=""), "services", 1, "name", "is missing or empty"),
    ("duplicate id", lambda d: d["customers"].append({"id": "cus-a", "name": "again"}), "customers", 3, "id",
     "duplicate id 'cus-a'"),
    ("overlap in file", _set("allocations", 2, valid_from="2026-03-01T11:00:00Z"), "allocations", 3, "valid_from",
     "overlaps the interval of row"),
    ("bad hostname", _set("services", 0, hostnames=["ok.example.com", "a..example.com"]), "services", 1, "hostnames",
     "'a..example.com' is not a host name"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "kind", "row", "field", "reason"), [c[1:] for c in BAD_ROWS],
                         ids=[c[0] for c in BAD_ROWS])  # fmt: skip
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_bad_row_is_named_and_nothing_is_imported(
    runtime: Runtime, tmp_path: Path, fmt: str, change: Any, kind: str, row: int, field: str, reason: str
) -> None:
    data = sample()
    change(data)
    path = write_json(tmp_path / "inv.json", data) if fmt == "json" else write_csv_dir(tmp_path / "csv", data)
    with pytest.raises(ConfigError) as err:
        InventoryService(runtime).import_file(path)
    assert len(err.value.errors) == 1, [e.message for e in err.value.errors]
    e = err.value.errors[0]
    # CSV rows are file lines (the header is line 1); JSON rows are positions in the record type's list
    assert (e.field, e.line) == (field, row + 1 if fmt == "csv" else row)
    assert e.file == str(tmp_path / "inv.json") if fmt == "json" else str(tmp_path / "csv" / f"{kind}.csv")
    assert reason in e.message and f"{kind} row" in e.message and f"'{field}'" in e.message
    assert counts(runtime) == EMPTY


def test_all_bad_rows_are_reported_together(runtime: Runtime, tmp_path: Path) -> None:
    data = sample()
    data["allocations"][0]["valid_from"] = "2026-01-01T00:00:00"
    data["allocations"][4]["prefix"] = "198.51.100.0/33"
    data["customers"][0]["contact_email"] = "nobody"
    with pytest.raises(ConfigError) as err:
        InventoryService(runtime).import_file(write_json(tmp_path / "inv.json", data))
    assert sorted((e.field, e.line) for e in err.value.errors) == [
        ("contact_email", 1), ("prefix", 5), ("valid_from", 1)]  # fmt: skip
    assert err.value.message.startswith(f"{tmp_path / 'inv.json'}: 3 problem(s)")
    assert counts(runtime) == EMPTY


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("prefix,service_id,valid_from,colour\n", 1, "unknown column(s) 'colour'"),
        ("id,name,contact_email\ncus-a,A\n", 2, "has 2 fields, the header has 3"),
        ("what,is,this\n", 1, "matches no record type"),
        ("", 1, "is empty"),
        ("id,name,name\n", 1, "header repeats column(s) name"),
    ],
)
def test_bad_csv_files(runtime: Runtime, tmp_path: Path, content: str, line: int, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        InventoryService(runtime).import_file(path)
    assert [(e.line, message in e.message) for e in err.value.errors] == [(line, True)], err.value.errors
    assert counts(runtime) == EMPTY


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "must be one object"),
        ('{"allocations": {}}', "'allocations' must be a list"),
        ('{"servers": []}', "unknown key(s) servers"),
        ('{"customers": [{"id": "c", "name": "n", "phone": "1"}]}', "unknown field(s) phone"),
        ('{"customers": [', "is not valid JSON"),
        ('{"allocations": [{"prefix": "192.0.2.0/24", "service_id": 5, "valid_from": "2026-01-01T00:00:00Z"}]}',
         "must be text, not int"),
    ],
)  # fmt: skip
def test_bad_json_files(runtime: Runtime, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        InventoryService(runtime).import_file(path)
    assert any(message in e.message for e in err.value.errors), [e.message for e in err.value.errors]
    assert counts(runtime) == EMPTY


def test_missing_file_and_empty_directory(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        InventoryService(runtime).import_file(tmp_path / "nope.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"holds no \.csv files"):
        InventoryService(runtime).import_file(tmp_path / "empty")


def test_ipv4_mapped_prefix_is_the_ipv4_prefix(runtime: Runtime, tmp_path: Path) -> None:
    data = sample()
    data["allocations"] = [{"prefix": "::ffff:192.0.2.0/120", "service_id": "svc-a",
                            "valid_from": "2026-01-01T00:00:00Z"}]  # fmt: skip
    svc = InventoryService(runtime)
    svc.import_file(write_json(tmp_path / "a.json", data))
    assert allocations(runtime)[0][0] == "192.0.2.0/24"
    data["allocations"][0]["prefix"] = "192.0.2.0/24"
    assert not svc.import_file(write_json(tmp_path / "b.json", data)).changed


def test_bulk_import_is_fast_and_reports_progress(runtime: Runtime, tmp_path: Path) -> None:
    """120k allocations (2001:db8::/32 split into /64s over time) in one import, with progress every 100k rows."""
    n = 120_000
    path = tmp_path / "allocations.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prefix", "service_id", "valid_from", "valid_to"])
        for i in range(n):
            w.writerow([f"2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::/64", "svc-v6", "2026-01-01T00:00:00Z", ""])
    svc = InventoryService(runtime)
    svc.import_file(write_csv_dir(tmp_path / "base"))
    seen: list[tuple[str, int, int | None]] = []
    started = time.perf_counter()
    report = svc.import_file(path, progress=lambda stage, done, total: seen.append((stage, done, total)))
    took = time.perf_counter() - started
    assert report.counts["allocations"] == {"added": n, "unchanged": 0, "closed": 0}
    assert ("read", 100_000, None) in seen and ("write", n, n) in seen and ("write", 100_000, n) in seen
    assert took < 300, took  # a loose bound for a shared CI machine; measured figures are in benchmarks/README.md
    idx = svc.index()
    addr = ip_to_int("2001:db8:1:5::1")
    assert svc.attribute("2001:db8:1:5::1", NOON).prefix == "2001:db8:1:5::/64"
    rows = svc.attribute_batch(np.array([[addr >> 64, addr & (2**64 - 1)]], np.uint64), np.array([0], np.int64))
    assert rows.tolist() == [-1]  # 1970: before every allocation
    assert idx.columns(svc.attribute_batch(np.array([ip_to_int("203.0.113.99") - V4_BASE], np.uint32),
                                           np.array([np.datetime64("2026-03-01T12:00:00", "us")])))[
        "service_id"].tolist() == ["svc-lb"]  # fmt: skip


def test_other_process_import_is_noticed_by_generation(runtime: Runtime, tmp_path: Path, monkeypatch: Any) -> None:
    from abusedesk.inventory import service as service_module

    svc = InventoryService(runtime)
    svc.import_file(write_json(tmp_path / "a.json"))
    first = svc.index()
    # another process imports (simulated by writing the next generation directly, without invalidating our cache)
    data = sample()
    data["allocations"] = [{"prefix": "192.0.2.0/24", "service_id": "svc-a", "valid_from": "2026-01-01T00:00:00Z"}]
    monkeypatch.setattr(InventoryService, "invalidate", lambda self: None)
    svc.import_file(write_json(tmp_path / "b.json", data))
    monkeypatch.setattr(service_module, "GENERATION_CHECK_SECONDS", 0.0)
    assert svc.index() is not first
    assert svc.attribute("192.0.2.1", NOON).is_ours
    assert json.dumps(svc.whois("192.0.2.1", NOON))  # whois output is JSON-serialisable


def test_csv_rows_helper_matches_the_documented_header() -> None:
    assert csv_rows("allocations", [])[0] == ["prefix", "service_id", "valid_from", "valid_to"]


def test_an_import_that_changes_the_inventory_is_audited(runtime: Runtime, tmp_path: Path) -> None:
    import json

    from sqlalchemy import select

    from abusedesk.evidence import audit as audit_log
    from abusedesk.inventory.service import InventoryService
    from abusedesk.store.tables.evidence import AuditRow

    data = {
        "customers": [{"id": "c1", "name": "One"}],
        "projects": [{"id": "p1", "customer_id": "c1", "name": "p"}],
        "services": [{"id": "s1", "project_id": "p1", "kind": "vm", "name": "v"}],
        "allocations": [{"prefix": "192.0.2.0/28", "service_id": "s1", "valid_from": "2026-01-01T00:00:00Z"}],
    }
    path = tmp_path / "inv.json"
    path.write_text(json.dumps(data))
    service = InventoryService(runtime)
    service.import_file(path)
    service.import_file(path)  # unchanged: nothing to record
    with runtime.sessions() as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.action == "inventory.imported")).all()
        assert len(rows) == 1
        assert rows[0].payload["counts"]["allocations"]["added"] == 1
        assert audit_log.verify(s).ok
