"""Fixtures every test shares: a Runtime on SQLite (default) or PostgreSQL, a manual clock, the corpus path.

``ABUSEDESK_TEST_DATABASE=postgresql`` runs the suite on the local PostgreSQL: each xdist worker gets its own
database ``abusedesk_test_<worker>``, migrated once with Alembic, and every table is emptied after each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

import abusedesk.store.tables  # noqa: F401 - registers every table
from abusedesk.clock import ManualClock
from abusedesk.config import Settings
from abusedesk.runtime import Runtime
from abusedesk.store.base import Base
from abusedesk.store.db import make_engine, migrate
from tests.support.components import missing
from tests.support.identities import People

REPO = Path(__file__).resolve().parent.parent
# ../shared/corpus beside the checkout, or ABUSEDESK_TEST_CORPUS; a git worktree one level deeper finds <root>/shared
CORPUS = (
    Path(os.environ.get("ABUSEDESK_TEST_CORPUS") or "")
    if os.environ.get("ABUSEDESK_TEST_CORPUS")
    else next(
        (c for c in (REPO.parent / "shared" / "corpus", REPO.parent.parent / "shared" / "corpus") if c.is_dir()),
        REPO.parent / "shared" / "corpus",
    )
)
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

PG_ADMIN_URL = os.environ.get("ABUSEDESK_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of a PostgreSQL-only mechanism are deselected on SQLite: not a missing component, not a skip."""
    if _backend() == "postgresql":
        return
    keep = [i for i in items if i.get_closest_marker("postgresql_only") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def _backend() -> str:
    return os.environ.get("ABUSEDESK_TEST_DATABASE", "sqlite")


@pytest.fixture(scope="session")
def pg_engine(worker_id: str) -> Iterator[Engine | None]:
    """One migrated PostgreSQL database per xdist worker, or None on SQLite."""
    if _backend() != "postgresql":
        yield None
        return
    # ABUSEDESK_TEST_DB_SUFFIX keeps two test runs on one PostgreSQL (several checkouts) out of each other's way
    name = f"abusedesk_test_{worker_id}{os.environ.get('ABUSEDESK_TEST_DB_SUFFIX', '')}"
    try:
        admin = make_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        missing(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    migrate(engine)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def settings(tmp_path: Path, pg_engine: Engine | None) -> Settings:
    url = pg_engine.url.render_as_string(hide_password=False) if pg_engine is not None else None
    return Settings(data_dir=tmp_path / "data", database_url=url)


@pytest.fixture
def runtime(settings: Settings, clock: ManualClock, pg_engine: Engine | None) -> Iterator[Runtime]:
    rt = Runtime.open(settings, clock=clock, engine=pg_engine, upgrade=pg_engine is None)
    yield rt
    if pg_engine is not None:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with pg_engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        rt.close()


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    """xdist's worker id ("gw0" ...), or "main" without xdist."""
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(scope="session")
def corpus() -> Path:
    """../shared/corpus: read in place (never copied); under CI its absence fails the test."""
    if not CORPUS.is_dir():
        missing(f"the shared corpus is not at {CORPUS}")
    return CORPUS


@pytest.fixture
def people(runtime: Runtime) -> People:
    """Real users with real tokens: root (admin), alice (analyst), bob and carol (approvers), audrey (auditor)."""
    from tests.support.identities import people_of

    return people_of(runtime)
