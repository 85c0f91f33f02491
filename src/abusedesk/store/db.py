"""Engine and session set-up for SQLite (default) and PostgreSQL, and migrations to head."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk when it returns (WAL fsync), so an acknowledged input survives power loss;
            # batches keep that to one fsync per stage transaction, not one per input
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # prepare_threshold=None: no server-side prepared statements. After five runs PostgreSQL switches a prepared
    # statement to a generic plan, and for the engine's "id IN (5000 values)" checks that plan was ~100x slower
    # than one made for the values (benchmarks/cases.py: sustained 1.4k findings/s fell from 5.6k).
    return create_engine(url, echo=echo, pool_pre_ping=True, connect_args={"prepare_threshold": None})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(None|['\"]([^'\"]+)['\"])", re.MULTILINE)


def head_revisions() -> set[str]:
    """The migration heads, read from the version files' ``revision``/``down_revision`` lines (no alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for key, _, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            if value:
                (revisions if key == "revision" else parents).add(value)
    return revisions - parents


def is_at_head(engine: Engine) -> bool:
    """Whether the database's ``alembic_version`` is exactly the heads: then there is nothing to upgrade."""
    heads = head_revisions()
    if not heads:
        return False
    try:
        with engine.connect() as conn:
            current = {str(r[0]) for r in conn.execute(text("SELECT version_num FROM alembic_version"))}
    except SQLAlchemyError:
        return False  # no version table yet: a new database
    return current == heads


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (``alembic upgrade head``) over the given engine.

    A database already at the head is left alone without loading alembic (~0.3 s a command; issue 11)."""
    if is_at_head(engine):
        return
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
