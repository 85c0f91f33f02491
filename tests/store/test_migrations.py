"""The migrations build exactly the schema the table modules declare (what ``alembic check`` asserts)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from abusedesk.runtime import Runtime
from abusedesk.store.base import Base


def test_migrated_schema_matches_tables(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"tables and migrations differ; run `make migration`: {diff}"


def test_every_table_exists(runtime: Runtime) -> None:
    names = set(inspect(runtime.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= names
