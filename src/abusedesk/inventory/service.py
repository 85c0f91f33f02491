"""InventoryService: import the inventory in one transaction, and answer "whose was this address at that time".

Import rules (issue 2, item 4; docs/admin/inventory.md):

* The whole file is validated first, then checked against the database; any bad row (named by file, row number,
  field and reason) refuses the whole import: nothing is written.
* Customers, projects, services and accounts are matched by ``id``: added, updated (a changed field), unchanged.
* Allocations are matched by prefix and ``valid_from``. The same interval again changes nothing. History is never
  rewritten: an open interval whose ``valid_to`` is now given is *closed*; a new interval for a prefix whose open
  interval started earlier *closes* that one at the new ``valid_from`` (a re-assignment). Anything else that
  would change a recorded interval, or make two intervals of one prefix overlap, is refused.
* ``sync=True`` treats the file as the whole inventory: open allocations absent from it are closed at now.

Each import adds a row to ``inventory_imports``; its id is the inventory *generation*. ``index()`` caches the
attribution index per Runtime and rebuilds it when the generation changes (at once after an import in this
process; other processes notice within ``GENERATION_CHECK_SECONDS``).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, DropConstraint

from abusedesk.domain.errors import ConfigError
from abusedesk.domain.identity import INVENTORY
from abusedesk.domain.ipnet import ip_to_int
from abusedesk.domain.records import Attribution
from abusedesk.domain.timeutil import as_utc, iso
from abusedesk.evidence import audit
from abusedesk.inventory.importer import (
    PROGRESS_EVERY,
    Allocation,
    InventoryFile,
    Progress,
    Where,
    collect_inventory,
    group_by_prefix,
    row_error,
)
from abusedesk.inventory.index import AllocationEntry, AttributionIndex, from_us, to_us
from abusedesk.runtime import Runtime
from abusedesk.store import bulk
from abusedesk.store.db import transaction
from abusedesk.store.tables.inventory import (
    AccountRow,
    AllocationRow,
    CustomerRow,
    InventoryImportRow,
    ProjectRow,
    ServiceRow,
)

log = logging.getLogger(__name__)

ALLOCATIONS: Table = AllocationRow.__table__  # type: ignore[assignment]  # a mapped class's table is a Table
GENERATION_CHECK_SECONDS = 1.0
INSERT_CHUNK = 20_000
REBUILD_INDEXES_AT = 50_000  # allocations into an empty table: from here on, indexes are built after the rows

_ENTITY_FIELDS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "customers": (CustomerRow, ("name", "contact_email", "status")),
    "projects": (ProjectRow, ("customer_id", "name")),
    "services": (ServiceRow, ("project_id", "kind", "name", "hostnames")),
    "accounts": (AccountRow, ("customer_id", "email", "created_at")),
}


@dataclass(slots=True)
class ImportReport:
    """What an import did: per record type added / updated / unchanged (allocations: added / unchanged / closed)."""

    source: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    rows: int = 0
    seconds: float = 0.0
    generation: int = 0

    @property
    def changed(self) -> bool:
        return any(n for kind in self.counts.values() for name, n in kind.items() if name != "unchanged")

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "counts": self.counts,
            "changed": self.changed,
            "seconds": round(self.seconds, 3),
            "generation": self.generation,
        }


@dataclass(slots=True)
class _Cached:
    index: AttributionIndex
    generation: int
    checked: float


_cache: weakref.WeakKeyDictionary[Runtime, _Cached] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


@dataclass(slots=True)
class _DbAllocation:
    id: int
    service_id: str
    valid_from: int
    valid_to: int | None
    matched: bool = False


class InventoryService:
    """Inventory import and attribution over one Runtime."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    # ------------------------------------------------------------------ import

    def import_file(self, path: Path | str, *, progress: Progress | None = None, sync: bool = False) -> ImportReport:
        """Import a JSON file, a CSV file or a directory of CSV files in one transaction (see the module doc)."""
        path = Path(path)
        started = time.perf_counter()
        if not path.exists():
            raise ConfigError(f"inventory file {path} does not exist", file=str(path))
        inv, errors = collect_inventory(path, progress=progress)
        report = ImportReport(source=str(path), rows=inv.rows())
        with transaction(self.rt.sessions) as session:
            self._apply(session, inv, report, errors, progress=progress, sync=sync)
            if report.changed:
                # who had which address when decides whom a report blames: every change of it is on the record
                audit.append(
                    session,
                    at=self.rt.clock.now(),
                    actor=INVENTORY.id,
                    action="inventory.imported",
                    subject_type="inventory",
                    subject_id=str(path.name)[:100],
                    payload={"source": str(path), "sync": sync, "counts": report.counts},
                )
        if report.changed:
            self.invalidate()
        report.seconds = time.perf_counter() - started
        log.info("inventory import %s: %s in %.1fs", path, report.counts, report.seconds)
        return report

    def _apply(
        self,
        session: Session,
        inv: InventoryFile,
        report: ImportReport,
        errors: list[ConfigError],
        *,
        progress: Progress | None,
        sync: bool,
    ) -> None:
        entity_writes: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        known: dict[str, set[str]] = {}
        for kind, (row_cls, fields) in _ENTITY_FIELDS.items():
            table: Table = row_cls.__table__
            cols = [table.c.id, *(table.c[f] for f in fields)]
            existing = {r[0]: r for r in session.execute(select(*cols))}
            known[kind] = set(existing) | set(getattr(inv, kind)) | {i for k, i in inv.rejected if k == kind}
            added: list[dict[str, Any]] = []
            changed: list[dict[str, Any]] = []
            unchanged = 0
            for ident, (record, _where) in getattr(inv, kind).items():
                values = {
                    f: (from_us(record[f]) if f == "created_at" and record[f] is not None else record[f])
                    for f in fields
                }
                old = existing.get(ident)
                if old is None:
                    added.append({"id": ident, **values})
                elif any(old[i + 1] != values[f] for i, f in enumerate(fields)):
                    changed.append({"b_id": ident, **{f"v_{k}": v for k, v in values.items()}})
                else:
                    unchanged += 1
            entity_writes[kind] = (added, changed)
            report.counts[kind] = {"added": len(added), "updated": len(changed), "unchanged": unchanged}

        refs = (("projects", "customer_id", "customers"), ("services", "project_id", "projects"),
                ("accounts", "customer_id", "customers"))  # fmt: skip
        for kind, ref_field, target in refs:
            for record, where in getattr(inv, kind).values():
                if record[ref_field] not in known[target]:
                    errors.append(row_error(where, ref_field, f"{target[:-1]} {record[ref_field]!r} is not in the "
                                            "file or the database"))  # fmt: skip
        services = known["services"]
        for a in inv.allocations:
            if a.service_id not in services:
                errors.append(
                    row_error(a.where, "service_id", f"service {a.service_id!r} is not in the file or the database")
                )

        new_allocs, closes, was_empty = self._plan_allocations(session, inv, errors, report, sync=sync)
        if errors:
            errors.sort(key=lambda e: (e.file or "", e.line or 0))
            raise ConfigError(
                f"{len(errors)} problem(s) in {report.source}; nothing was imported", file=report.source, errors=errors
            )

        for kind, (row_cls, fields) in _ENTITY_FIELDS.items():
            table = row_cls.__table__
            added, changed = entity_writes[kind]
            if added and session.get_bind().dialect.name == "postgresql":
                # one COPY (bulk.copy_rows) instead of executemany: 233k rows took ~10 s as INSERTs. COPY does not
                # apply the columns' Python defaults, so they are added here as an INSERT would.
                defaults = _column_defaults(table, ("id", *fields))
                columns = ["id", *fields, *defaults]
                extra = list(defaults.values())
                bulk.copy_rows(session, table, [[r["id"], *(r[f] for f in fields), *extra] for r in added], columns)
            else:
                for i in range(0, len(added), INSERT_CHUNK):
                    session.execute(insert(table), added[i : i + INSERT_CHUNK])
            if changed:
                stmt = (
                    update(table)
                    .where(table.c.id == bindparam("b_id"))
                    .values({f: bindparam(f"v_{f}") for f in fields})
                )
                session.execute(stmt, changed)
        if closes:
            t = ALLOCATIONS
            stmt = update(t).where(t.c.id == bindparam("b_id")).values(valid_to=bindparam("b_vt"))
            session.execute(stmt, [{"b_id": i, "b_vt": from_us(vt)} for i, vt in closes])
        self._insert_allocations(session, new_allocs, progress, was_empty=was_empty)
        if not report.changed:  # the same file again: no new generation, the cached index stays valid
            report.generation = int(session.scalar(select(func.max(InventoryImportRow.id))) or 0)
            return
        entry = InventoryImportRow(at=self.rt.clock.now(), source=report.source, counts=report.counts)
        session.add(entry)
        session.flush()
        report.generation = entry.id

    def _plan_allocations(
        self, session: Session, inv: InventoryFile, errors: list[ConfigError], report: ImportReport, *, sync: bool
    ) -> tuple[list[Allocation], list[tuple[int, int]], bool]:
        """New allocations to insert, (allocation id, valid_to µs) closes, and whether the table was empty;
        problems go to ``errors``."""
        rows = _fetch_allocations(session)
        new: list[Allocation] = []
        closes: dict[int, int] = {}
        unchanged = 0
        db: dict[tuple[int, int], list[_DbAllocation]] = {}
        if not rows:  # the first import: every allocation is new (the file's own overlaps were checked on reading)
            new = list(inv.allocations)
        # A file row equal to a recorded one in prefix, service and interval changes nothing. Only the prefixes
        # with some other row (new, closing, conflicting) are planned in full below: a re-import of a million
        # unchanged rows compares a million tuples in C instead of building a million objects.
        keys: list[tuple[str, str, str, int, int | None]] = []
        touched: set[tuple[str, str]] = set()
        planned: list[Allocation] = []
        if rows:
            recorded = {r[:5] for r in rows}
            keys = [(f"{a.first:032x}", f"{a.last:032x}", a.service_id, a.valid_from, a.valid_to)
                    for a in inv.allocations]  # fmt: skip
            touched = {(k[0], k[1]) for k in keys if k not in recorded}
            planned = [a for a, k in zip(inv.allocations, keys, strict=True) if (k[0], k[1]) in touched]
            unchanged = len(inv.allocations) - len(planned)
        prefix_of: dict[tuple[int, int], str] = {}
        for fh, lh, sid, vf, vt, aid, prefix in rows:
            if (fh, lh) in touched:
                key = (int(fh, 16), int(lh, 16))
                db.setdefault(key, []).append(_DbAllocation(aid, sid, vf, vt))
                prefix_of[key] = prefix
        for key, items in group_by_prefix(planned).items():
            existing = db.get(key)
            if not existing:
                new.extend(items)
                continue
            by_vf = {d.valid_from: d for d in existing}
            fresh: list[Allocation] = []
            for f in items:
                d = by_vf.get(f.valid_from)
                if d is None:
                    fresh.append(f)
                    continue
                d.matched = True
                if d.service_id != f.service_id:
                    errors.append(row_error(f.where, "service_id", (
                        f"allocation {d.id} of {f.prefix} from {_iso(f.valid_from)} already belongs to service "
                        f"{d.service_id!r}; history is not rewritten: a re-assignment is a new row with a later "
                        "valid_from")))  # fmt: skip
                elif d.valid_to == f.valid_to:
                    unchanged += 1
                elif d.valid_to is None and f.valid_to is not None:
                    closes[d.id] = d.valid_to = f.valid_to
                else:
                    errors.append(row_error(f.where, "valid_to", (
                        f"allocation {d.id} of {f.prefix} ended at {_iso(d.valid_to)}; the file says "
                        f"{_iso(f.valid_to)}, and a closed interval is not changed (history is not rewritten)"
                    )))  # fmt: skip
            for f in sorted(fresh, key=lambda a: a.valid_from):
                for d in existing:
                    if d.valid_to is None and d.valid_from < f.valid_from:
                        closes[d.id] = d.valid_to = f.valid_from  # re-assignment: the old owner's interval ends
                for d in existing:
                    d_end = d.valid_to if d.valid_to is not None else _OPEN
                    f_end = f.valid_to if f.valid_to is not None else _OPEN
                    if d.valid_from < f_end and f.valid_from < d_end:
                        errors.append(row_error(f.where, "valid_from", (
                            f"{f.prefix} [{_iso(f.valid_from)}, {_iso(f.valid_to)}) overlaps allocation {d.id} "
                            f"[{_iso(d.valid_from)}, {_iso(d.valid_to)}) of service {d.service_id!r} in the database; "
                            "one prefix has one owner at a time")))  # fmt: skip
                        break
                new.append(f)
        if sync:
            now = to_us(self.rt.clock.now())
            seen = {(k[0], k[1], k[3]) for k in keys}  # empty with no recorded rows: nothing to close then
            # every recorded prefix in the order of its first row, with the planned prefixes' (maybe closed) rows
            planned_rows = {d.id: d for existing in db.values() for d in existing}
            everything: dict[tuple[str, str], list[_DbAllocation]] = {}
            for fh, lh, sid, vf, vt, aid, prefix in rows:
                everything.setdefault((fh, lh), []).append(planned_rows.get(aid) or _DbAllocation(aid, sid, vf, vt))
                prefix_of.setdefault((int(fh, 16), int(lh, 16)), prefix)
            for (fh, lh), existing in everything.items():
                key = (int(fh, 16), int(lh, 16))
                for d in existing:
                    if d.valid_to is not None or (fh, lh, d.valid_from) in seen:
                        continue
                    if d.valid_from >= now:
                        errors.append(ConfigError(
                            f"sync: allocation {d.id} of {prefix_of[key]} starts in the future "
                            f"({_iso(d.valid_from)}) and is missing from the file; list it or remove it first",
                            file=report.source))  # fmt: skip
                        continue
                    closes[d.id] = d.valid_to = now
        report.counts["allocations"] = {"added": len(new), "unchanged": unchanged, "closed": len(closes)}
        return new, sorted(closes.items()), not rows

    def _insert_allocations(
        self, session: Session, allocs: Sequence[Allocation], progress: Progress | None, *, was_empty: bool
    ) -> None:
        if not allocs:
            return
        total = len(allocs)
        conn = session.connection()
        # Into an empty table, a large import writes the rows first and builds the secondary indexes after: one
        # sort per index instead of a B-tree insert per row and index. Same transaction, so a failure rolls the
        # indexes back too. Only when the table was empty: on PostgreSQL, dropping an index locks readers out of
        # the table until the commit, and with nothing recorded yet there is nothing for them to read.
        rebuild = was_empty and total >= REBUILD_INDEXES_AT
        # PostgreSQL checks a foreign key per COPY row by a trigger (~4.5 s per 1M rows); added back after the
        # rows, it is checked by one join (~0.2 s). Every service_id was already checked against the file and the
        # database above, so this only changes how the database confirms it.
        foreign_keys = (
            list(ALLOCATIONS.foreign_key_constraints) if rebuild and conn.dialect.name == "postgresql" else []
        )
        for fk in foreign_keys:
            conn.execute(DropConstraint(fk))
        if rebuild:
            raw: Any = conn.connection.driver_connection
            if conn.dialect.name == "sqlite" and not raw.in_transaction:
                # pysqlite opens a transaction only before INSERT/UPDATE/DELETE: without this BEGIN, a DROP INDEX
                # ahead of the first of them would be committed on its own and not come back on a rollback
                raw.execute("BEGIN")
            for index in ALLOCATIONS.indexes:
                index.drop(conn)
        if conn.dialect.name == "postgresql":
            self._copy_allocations(conn, allocs, progress)
        else:
            # SQLite: straight to the driver's executemany; per-row SQLAlchemy type processing would triple the
            # time. Times are written in SQLAlchemy's SQLite DATETIME text form (UTC, no zone), as UtcDateTime does.
            sql = (
                "INSERT INTO allocations (service_id, prefix, first_hex, last_hex, prefixlen, valid_from, valid_to)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
            )
            text = _UtcText()
            for i in range(0, total, INSERT_CHUNK):
                rows = [
                    (a.service_id, a.prefix, f"{a.first:032x}", f"{a.last:032x}", a.prefixlen, text(a.valid_from),
                     None if a.valid_to is None else text(a.valid_to))
                    for a in allocs[i : i + INSERT_CHUNK]
                ]  # fmt: skip
                conn.exec_driver_sql(sql, rows)
                done = min(total, i + INSERT_CHUNK)
                if progress and (done // PROGRESS_EVERY) > (i // PROGRESS_EVERY):
                    progress("write", done, total)
        if rebuild:
            if conn.dialect.name == "postgresql":  # sort each index in memory, for this transaction only
                conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
            for index in sorted(ALLOCATIONS.indexes, key=lambda x: str(x.name)):
                index.create(conn)
        for fk in foreign_keys:
            conn.execute(AddConstraint(fk))
        if progress:
            progress("write", total, total)

    @staticmethod
    def _copy_allocations(conn: Any, allocs: Sequence[Allocation], progress: Progress | None) -> None:
        """One COPY in text format, each chunk encoded as one string (texts by bulk.copy_text)."""
        total = len(allocs)
        cols = ("service_id", "prefix", "first_hex", "last_hex", "prefixlen", "valid_from", "valid_to")
        text = bulk.copy_text
        # a timestamptz literal with its zone (ISO 8601, as bulk's encoder for UtcDateTime writes it, but from µs
        # without a datetime per value: a million distinct times made bulk's isoformat a quarter of the write)
        time_text = _UtcText("+00")
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY allocations ({', '.join(cols)}) FROM STDIN") as copy:
            for i in range(0, total, INSERT_CHUNK):
                body = "".join([
                    f"{text(a.service_id)}\t{text(a.prefix)}\t{a.first:032x}\t{a.last:032x}\t{a.prefixlen}\t"
                    f"{time_text(a.valid_from)}\t{bulk.NULL if a.valid_to is None else time_text(a.valid_to)}\n"
                    for a in allocs[i : i + INSERT_CHUNK]
                ])  # fmt: skip
                copy.write(body.encode())
                done = min(total, i + INSERT_CHUNK)
                if progress and (done // PROGRESS_EVERY) > (i // PROGRESS_EVERY):
                    progress("write", done, total)

    # ------------------------------------------------------------------ attribution

    def generation(self) -> int:
        """The inventory generation: the id of the newest import (0 before the first)."""
        with self.rt.sessions() as session:
            return int(session.scalar(select(func.max(InventoryImportRow.id))) or 0)

    def invalidate(self) -> None:
        with _cache_lock:
            _cache.pop(self.rt, None)

    def index(self) -> AttributionIndex:
        """The attribution index of the current inventory, built from the database once per generation."""
        now = time.monotonic()
        with _cache_lock:
            cached = _cache.get(self.rt)
            if cached is not None and now - cached.checked < GENERATION_CHECK_SECONDS:
                return cached.index
        generation = self.generation()
        with _cache_lock:
            cached = _cache.get(self.rt)
            if cached is not None and cached.generation == generation:
                cached.checked = now
                return cached.index
        index, generation = self._build()
        with _cache_lock:
            _cache[self.rt] = _Cached(index, generation, time.monotonic())
        return index

    def _build(self) -> tuple[AttributionIndex, int]:
        t = ALLOCATIONS
        with self.rt.sessions() as session, session.begin():
            generation = int(session.scalar(select(func.max(InventoryImportRow.id))) or 0)
            services = {
                sid: (pid, cid)
                for sid, pid, cid in session.execute(
                    select(ServiceRow.id, ServiceRow.project_id, ProjectRow.customer_id).join(
                        ProjectRow, ProjectRow.id == ServiceRow.project_id
                    )
                )
            }
            query = select(
                t.c.id, t.c.prefix, t.c.first_hex, t.c.last_hex, t.c.service_id, t.c.valid_from, t.c.valid_to
            )
            entries = [
                AllocationEntry(
                    aid, prefix, int(fh, 16), int(lh, 16), sid, to_us(vf), None if vt is None else to_us(vt)
                )
                for aid, prefix, fh, lh, sid, vf, vt in session.execute(query)
            ]
        started = time.perf_counter()
        index = AttributionIndex.build(entries, services)
        log.info("attribution index: %s, built in %.2fs", index.stats(), time.perf_counter() - started)
        return index, generation

    def attribute(self, ip: str, at: datetime | None = None) -> Attribution:
        """Whose was ``ip`` at ``at`` (default: now), with the reason; raises ValueError for a bad address."""
        return self.index().attribute(ip, as_utc(at) if at is not None else self.rt.clock.now())

    def attribute_batch(self, ips: npt.NDArray[Any], times: npt.NDArray[Any]) -> npt.NDArray[np.int32]:
        """Allocation rows of the current index (-1 = not ours); see ``AttributionIndex.lookup_batch``."""
        return self.index().lookup_batch(ips, times)

    def attribute_many(self, ips: Sequence[str], times: Sequence[datetime | None]) -> list[Attribution]:
        """``attribute`` for many addresses in one vectorised look-up (the attribute stage's batch path).

        The same owners as ``attribute`` gives one by one, without the reason text (``reason`` is empty; ask
        ``attribute`` or ``whois`` for the why). A missing time means now; a bad address raises ValueError.
        """
        if len(ips) != len(times):
            raise ValueError(f"attribute_many: {len(ips)} addresses but {len(times)} times")
        if not ips:
            return []
        now = self.rt.clock.now()
        ats = [as_utc(t) if t is not None else now for t in times]
        values = [ip_to_int(ip) for ip in ips]
        pairs = np.array([(v >> 64, v & 0xFFFF_FFFF_FFFF_FFFF) for v in values], dtype=np.uint64).reshape(-1, 2)
        index = self.index()
        rows = index.lookup_batch(pairs, np.array([to_us(t) for t in ats], dtype=np.int64))
        cols = index.columns(rows)
        out = []
        for i, (ip, at) in enumerate(zip(ips, ats, strict=True)):
            if rows[i] < 0:
                out.append(Attribution(ip=ip, at=at))
            else:
                out.append(
                    Attribution(
                        ip=ip,
                        at=at,
                        service_id=cols["service_id"][i],
                        project_id=cols["project_id"][i],
                        customer_id=cols["customer_id"][i],
                        allocation_id=int(cols["allocation_id"][i]),
                    )
                )
        return out

    def whois(self, ip: str, at: datetime | None = None) -> dict[str, Any]:
        """The attribution with the customer, project and service records, for people and ``inventory whois``."""
        ip_to_int(ip)  # a bad address raises ValueError before any work
        attribution = self.attribute(ip, at)
        out: dict[str, Any] = attribution.to_dict()
        out.update(customer=None, project=None, service=None)
        if attribution.is_ours:
            with self.rt.sessions() as session:
                svc = session.get(ServiceRow, attribution.service_id)
                prj = session.get(ProjectRow, attribution.project_id) if attribution.project_id else None
                cus = session.get(CustomerRow, attribution.customer_id) if attribution.customer_id else None
                if svc is not None:
                    out["service"] = {"id": svc.id, "kind": svc.kind, "name": svc.name,
                                      "hostnames": list(svc.hostnames), "status": svc.status,
                                      "data_access": svc.data_access}  # fmt: skip
                if prj is not None:
                    out["project"] = {"id": prj.id, "name": prj.name}
                if cus is not None:
                    out["customer"] = {"id": cus.id, "name": cus.name, "contact_email": cus.contact_email,
                                       "status": cus.status}  # fmt: skip
        return out


_OPEN = 1 << 62


def _column_defaults(table: Table, given: Sequence[str]) -> dict[str, Any]:
    """The Python-side defaults (``default=``) of the columns not in ``given``, as an INSERT would fill them."""
    out: dict[str, Any] = {}
    for column in table.columns:
        default: Any = column.default
        if column.name in given or default is None:
            continue
        if default.is_scalar:
            out[column.name] = default.arg
        elif default.is_callable:
            out[column.name] = default.arg(None)  # SQLAlchemy wraps a plain callable to take the context
    return out


_DAY_US = 86_400_000_000


class _UtcText:
    """Epoch µs → ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC: SQLAlchemy's SQLite DATETIME text, or with ``zone``
    "+00" a PostgreSQL timestamptz literal for COPY.

    The date part once per day, the time of day by arithmetic: inventories hold a million distinct instants on a
    few hundred days; ``datetime.strftime`` per value took about twice as long.
    """

    def __init__(self, zone: str = "") -> None:
        self.days: dict[int, str] = {}
        self.zone = zone

    def __call__(self, us: int) -> str:
        day, rest = divmod(us, _DAY_US)
        date = self.days.get(day)
        if date is None:
            date = self.days[day] = from_us(day * _DAY_US).strftime("%Y-%m-%d")
        seconds, micro = divmod(rest, 1_000_000)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        return f"{date} {hour:02d}:{minute:02d}:{second:02d}.{micro:06d}{self.zone}"


def _fetch_allocations(session: Session) -> list[tuple[str, str, str, int, int | None, int, str]]:
    """Every recorded allocation as ``(first_hex, last_hex, service_id, valid_from µs, valid_to µs, id, prefix)``.

    Straight from the driver, times turned into epoch µs by the database (exactly: whole seconds, then the
    microseconds): SQLAlchemy's per-value result processing and datetime arithmetic cost seconds per million rows.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        us = "(EXTRACT(EPOCH FROM {0}) * 1000000)::bigint"
    else:  # UtcDateTime keeps 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) on SQLite
        us = (
            "CAST(strftime('%s', substr({0}, 1, 19)) AS INTEGER) * 1000000"
            " + CAST(substr({0} || '000000', 21, 6) AS INTEGER)"
        )
    sql = (  # column names only, no values
        f"SELECT first_hex, last_hex, service_id, {us.format('valid_from')}, {us.format('valid_to')}, id, prefix "  # noqa: S608
        "FROM allocations"
    )
    raw: Any = conn.connection.driver_connection
    cur = raw.cursor()
    try:
        cur.execute(sql)
        return list(cur.fetchall())
    finally:
        cur.close()


def _iso(value: int | None) -> str:
    return "open" if value is None else iso(from_us(value))


__all__ = ["ImportReport", "InventoryService", "Where"]
