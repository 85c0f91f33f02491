"""Insert rows, ignoring those whose primary key exists: how replays and redeliveries change nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, table: Table, rows: Sequence[dict[str, Any]], *, chunk: int = 500) -> int:
    """Insert ``rows`` into ``table``; existing primary keys are left as they are. Returns rows inserted."""
    # count what RETURNING gives back: psycopg reports rowcount -1 for these statements
    key = list(table.primary_key.columns) or list(table.columns)
    return len(insert_ignore_returning(session, table, rows, *key, chunk=chunk))


def insert_ignore_returning(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], *columns: Any, chunk: int = 500
) -> list[tuple[Any, ...]]:
    """Like :func:`insert_ignore`, returning ``columns`` of the rows that were inserted (not those that existed)."""
    if not rows:
        return []
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(rows), chunk):
        stmt = _insert(session, table).values(list(rows[i : i + chunk])).on_conflict_do_nothing()
        out.extend(tuple(r) for r in session.execute(stmt.returning(*columns)).all())
    return out


def upsert(session: Session, table: Any, rows: Sequence[dict[str, Any]], update: Sequence[str]) -> None:
    """Insert ``rows``; where the primary key exists, set the ``update`` columns to the new row's values."""
    if not rows:
        return
    stmt = _insert(session, table)
    key = [c.name for c in table.primary_key.columns]
    session.execute(
        stmt.on_conflict_do_update(index_elements=key, set_={c: getattr(stmt.excluded, c) for c in update}),
        list(rows),
    )


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {dialect}")  # pragma: no cover - SQLite and PostgreSQL only


def insert_new(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], *, chunk: int = 1000
) -> list[dict[str, Any]]:
    """Insert the rows whose primary key (one column) is not in ``table`` yet; returns those rows.

    One ``SELECT ... IN`` per chunk to find what exists, then one executemany INSERT (``ON CONFLICT DO NOTHING``,
    so a row another writer added in between is skipped, not an error). For large batches this is several times
    faster than a multi-row ``INSERT ... RETURNING``, whose statement (thousands of bound parameters) SQLAlchemy
    compiles anew for every chunk.
    """
    if not rows:
        return []
    (key,) = table.primary_key.columns
    fresh: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        ids = [r[key.name] for r in part]
        existing = set(session.scalars(select(key).where(key.in_(ids))))
        for r in part:
            k = r[key.name]
            if k not in existing and k not in seen:
                seen.add(k)
                fresh.append(r)
    if fresh:
        session.execute(_insert(session, table).on_conflict_do_nothing(), fresh)
    return fresh
