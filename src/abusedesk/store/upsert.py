"""Insert rows, ignoring those whose primary key exists: how replays and redeliveries change nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, table: Table, rows: Sequence[dict[str, Any]], *, chunk: int = 500) -> int:
    """Insert ``rows`` into ``table``; existing primary keys are left as they are. Returns rows inserted."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    inserted = 0
    for i in range(0, len(rows), chunk):
        part = list(rows[i : i + chunk])
        if dialect == "postgresql":
            stmt: Any = postgresql.insert(table).values(part).on_conflict_do_nothing()
        elif dialect == "sqlite":
            stmt = sqlite.insert(table).values(part).on_conflict_do_nothing()
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise RuntimeError(f"unsupported database dialect {dialect}")
        # count what RETURNING gives back: psycopg reports rowcount -1 for these statements
        key = list(table.primary_key.columns) or list(table.columns)
        inserted += len(session.execute(stmt.returning(*key)).all())
    return inserted
