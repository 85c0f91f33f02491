"""Many rows in one go: PostgreSQL's COPY (text format), ``executemany`` elsewhere.

Writers that add thousands of rows per transaction (the case engine's findings, cases, transitions and actions; the
audit log's entries) spend most of their time, through the ORM, on building and parsing INSERT statements and on
one round trip per row. :func:`copy_rows` writes plain rows with one COPY; :func:`flush_new` takes the objects a
session would INSERT at its next flush and writes them that way instead; :func:`update_rows` changes many rows
with one statement.

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

from sqlalchemy import JSON, Boolean, Float, Integer, String, bindparam, insert, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import Column

from abusedesk.domain.timeutil import as_utc
from abusedesk.store.base import UtcDateTime

Encoder = Callable[[Any], str]

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"


def copy_text(value: Any) -> str:
    """``value`` (a string, or anything ``str()`` turns into the text it stands for) as a COPY text field."""
    if value is None:
        return NULL
    if value.__class__ is not str:
        value = str(value)
    text: str = value
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_ESCAPES)
    return text


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
        return copy_text
    raise TypeError(f"bulk.encoder: no COPY text encoding for {column.table.name}.{column.name} ({kind!r})")


def copy_lines(table: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The COPY text of ``rows``, each a sequence of values in ``columns`` order."""
    encoders = [encoder(table.c[name]) for name in columns]
    return "".join("\t".join([enc(v) for enc, v in zip(encoders, row, strict=True)]) + "\n" for row in rows)


def copy_rows(
    session: Session,
    table: Any,
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    columns: Sequence[str] | None = None,
) -> int:
    """Insert ``rows`` into ``table`` in the session's transaction.

    Rows are mappings with the same keys (column names), or, with ``columns``, sequences of values in that order
    (cheaper to build by the thousand). PostgreSQL: one COPY. Elsewhere: one executemany INSERT. A duplicate key
    raises IntegrityError on both (the caller's transaction is then to be rolled back). Returns the rows written.
    """
    if not rows:
        return 0
    if columns is None:
        columns = list(rows[0])
        values: Sequence[Sequence[Any]] = [[r[c] for c in columns] for r in rows]  # type: ignore[call-overload]
    else:
        values = rows  # type: ignore[assignment]
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        return _executemany_sqlite(session, table, columns, values)
    if dialect.name != "postgresql":
        params = [dict(zip(columns, v, strict=True)) for v in values]
        session.connection().execute(insert(table), params)  # not session.execute: that would autoflush
        return len(rows)
    from psycopg import errors

    body = copy_lines(table, columns, values).encode()
    raw: Any = session.connection().connection.driver_connection
    names = ", ".join(f'"{c}"' for c in columns)
    try:
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            copy.write(body)
    except errors.IntegrityError as exc:
        raise IntegrityError(f"COPY {table.name} ({len(rows)} rows)", None, exc) from None
    return len(rows)


def _executemany_sqlite(session: Session, table: Any, columns: Sequence[str], values: Sequence[Sequence[Any]]) -> int:
    """SQLite's side of :func:`copy_rows`: the INSERT that ``session.execute(insert(table), rows)`` would run,
    with the same values, straight through the driver's ``executemany``.

    Each value goes through its column type's bind processor (what SQLAlchemy applies: JSON text, UTC time text,
    ...) and the columns not given get their Python-side defaults, as SQLAlchemy's INSERT adds them; what is
    saved is SQLAlchemy's per-row parameter handling, most of a feed's case-stage time on SQLite.
    """
    import sqlite3

    conn = session.connection()  # not session.execute: that would autoflush
    dialect = conn.dialect
    given = set(columns)
    extra = [c for c in table.columns if c.name not in given and c.default is not None]
    names = [*columns, *(c.name for c in extra)]
    procs = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
    quote = dialect.identifier_preparer.quote
    sql = (  # names come from the table definition; values travel as parameters
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({', '.join(quote(n) for n in names)}) "  # noqa: S608
        f"VALUES ({', '.join('?' * len(names))})"
    )
    params: list[tuple[Any, ...]] = []
    for row in values:
        full = [*row, *(_default(c) for c in extra)] if extra else row
        params.append(tuple([v if proc is None else proc(v) for proc, v in zip(procs, full, strict=True)]))
    raw: Any = conn.connection.driver_connection
    cur = raw.cursor()
    try:
        cur.executemany(sql, params)
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(f"INSERT {table.name} ({len(params)} rows)", None, exc) from None
    finally:
        cur.close()
    return len(params)


_ARRAY_TYPES: tuple[tuple[type[Any], str], ...] = (
    (UtcDateTime, "timestamptz"),
    (Boolean, "boolean"),
    (Integer, "bigint"),
    (Float, "double precision"),
    (String, "text"),
)


def _array_type(column: Column[Any]) -> str:
    for kind, name in _ARRAY_TYPES:
        if isinstance(column.type, kind):
            return name
    raise TypeError(f"bulk.update_rows: no array type for {column.table.name}.{column.name} ({column.type!r})")


def update_rows(
    session: Session,
    table: Any,
    match: Sequence[str],
    assign: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> int:
    """Update many rows, each found by its ``match`` columns' values and given its ``assign`` columns' values.

    Each row is a sequence: the values of ``match`` then those of ``assign``. PostgreSQL: one UPDATE over the
    rows unnested from one array per column (one statement, one plan, one round trip). Elsewhere: executemany.
    Returns how many rows matched: fewer than given means some rows no longer match (e.g. an optimistic version
    column in ``match`` that another writer has moved on).
    """
    if not rows:
        return 0
    names = [*match, *assign]
    if session.get_bind().dialect.name != "postgresql":
        stmt = (
            update(table)
            .where(*(table.c[m] == bindparam(f"k_{m}", type_=table.c[m].type) for m in match))
            .values({c: bindparam(f"v_{c}", type_=table.c[c].type) for c in assign})
        )
        keys = [f"k_{m}" for m in match] + [f"v_{c}" for c in assign]
        result = session.connection().execute(stmt, [dict(zip(keys, r, strict=True)) for r in rows])
        return int(result.rowcount)
    columns = list(zip(*rows, strict=True))
    params = {f"p{i}": list(values) for i, values in enumerate(columns)}
    unnest = ", ".join(f"CAST(:p{i} AS {_array_type(table.c[n])}[])" for i, n in enumerate(names))
    aliases = ", ".join(f"c{i}" for i in range(len(names)))  # positional: a column may be matched and assigned
    sets = ", ".join(f'"{c}" = v.c{len(match) + i}' for i, c in enumerate(assign))
    where = " AND ".join(f't."{m}" = v.c{i}' for i, m in enumerate(match))
    sql = (  # table and column names come from the table definition; values travel as array parameters
        f'UPDATE "{table.name}" AS t SET {sets} FROM unnest({unnest}) AS v({aliases}) '  # noqa: S608
        f"WHERE {where}"
    )
    result = session.connection().execute(text(sql), params)
    return int(result.rowcount)


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
            rows.append([values[attr] if attr in values else defaults[name] for name, attr, _ in plan])
        written += copy_rows(session, table, rows, [name for name, _, _ in plan])
        for o in objs:
            session.expunge(o)
    return written
