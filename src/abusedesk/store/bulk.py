"""Many rows in one go: PostgreSQL's COPY (text format), ``executemany`` elsewhere.

Writers that add thousands of rows per transaction (the case engine's findings, cases, transitions and actions; the
audit log's entries) spend most of their time, through the ORM, on building and parsing INSERT statements and on
one round trip per row. :func:`copy_rows` writes plain rows with one COPY; :func:`flush_new` takes the objects a
session would INSERT at its next flush and writes them that way instead.

COPY text format (https://www.postgresql.org/docs/current/sql-copy.html): one line per row, columns separated by
tabs, ``\\N`` for NULL, and backslash, tab, newline and carriage return escaped with a backslash. Values are
encoded as the column's SQLAlchemy type would bind them: JSON by ``json.dumps`` (what the JSON type sends), times
as aware UTC ISO 8601, booleans as ``t``/``f``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import Column

from abusedesk.domain.timeutil import as_utc
from abusedesk.store.base import UtcDateTime

Encoder = Callable[[Any], str]

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"


def copy_text(value: str | None) -> str:
    """``value`` as a COPY text field."""
    if value is None:
        return NULL
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def _json(value: Any) -> str:
    return NULL if value is None else copy_text(json.dumps(value))


def _time(value: datetime | None) -> str:
    return NULL if value is None else as_utc(value).isoformat()


def _bool(value: bool | None) -> str:
    return NULL if value is None else ("t" if value else "f")


def _int(value: int | None) -> str:
    return NULL if value is None else str(int(value))


def _float(value: float | None) -> str:
    return NULL if value is None else repr(float(value))


def _text(value: Any) -> str:
    return copy_text(None if value is None else str(value))


def encoder(column: Column[Any]) -> Encoder:
    """How a value of ``column`` is written in COPY text."""
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return _time
    if isinstance(kind, JSON):
        return _json
    if isinstance(kind, Boolean):
        return _bool
    if isinstance(kind, Integer):
        return _int
    if isinstance(kind, Float):
        return _float
    if isinstance(kind, String):
        return _text
    raise TypeError(f"bulk.encoder: no COPY text encoding for {column.table.name}.{column.name} ({kind!r})")


def copy_lines(table: Any, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """The COPY text of ``rows`` (each a mapping with at least ``columns``)."""
    encoders = [(name, encoder(table.c[name])) for name in columns]
    return "".join("\t".join([enc(row[name]) for name, enc in encoders]) + "\n" for row in rows)


def copy_rows(session: Session, table: Any, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert ``rows`` (mappings with the same keys, column names of ``table``) in the session's transaction.

    PostgreSQL: one COPY. Elsewhere: one executemany INSERT. A duplicate key raises IntegrityError on both (the
    caller's transaction is then to be rolled back). Returns the number of rows written.
    """
    if not rows:
        return 0
    columns = list(rows[0])
    if session.get_bind().dialect.name != "postgresql":
        session.connection().execute(insert(table), list(rows))  # not session.execute: that would autoflush
        return len(rows)
    from psycopg import errors

    body = copy_lines(table, columns, rows).encode()
    raw: Any = session.connection().connection.driver_connection
    names = ", ".join(f'"{c}"' for c in columns)
    try:
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            copy.write(body)
    except errors.IntegrityError as exc:
        raise IntegrityError(f"COPY {table.name} ({len(rows)} rows)", None, exc) from None
    return len(rows)


def _default(column: Column[Any]) -> Any:
    default: Any = column.default
    if default is None:
        return None
    if default.is_callable:
        return default.arg(None)  # SQLAlchemy wraps a plain callable to take the execution context
    if default.is_scalar:
        return default.arg
    raise TypeError(f"bulk.flush_new: {column.table.name}.{column.name} has a default that is not a Python value")


def flush_new(session: Session, classes: Sequence[type[Any]]) -> int:
    """Write the session's pending new objects of ``classes``, class by class in that order, by :func:`copy_rows`.

    Each object is written as its INSERT would: attributes that were set, column defaults for those that were not,
    the database's own value for an autoincrement key that was not set. The objects are then detached from the
    session (their attributes stay readable); the session's flush writes everything else as usual. Give the classes
    in an order that satisfies their foreign keys. Returns the number of rows written.
    """
    pending = list(session.new)
    written = 0
    for cls in classes:
        objs = [o for o in pending if type(o) is cls]
        if not objs:
            continue
        table: Any = cls.__table__
        mapper: Any = cls.__mapper__
        plan: list[tuple[str, str, Column[Any]]] = []  # (column name, attribute, column)
        for column in table.columns:
            attr = mapper.get_property_by_column(column).key
            numbered = column.autoincrement is True or (
                column.primary_key and column.autoincrement == "auto" and isinstance(column.type, Integer)
            )
            if numbered and all(o.__dict__.get(attr) is None for o in objs):
                continue  # the database numbers these rows
            plan.append((column.name, attr, column))
        defaults = {name: _default(column) for name, _, column in plan}
        rows = []
        for o in objs:
            values = o.__dict__
            rows.append({name: values[attr] if attr in values else defaults[name] for name, attr, _ in plan})
        written += copy_rows(session, table, rows)
        for o in objs:
            session.expunge(o)
    return written
