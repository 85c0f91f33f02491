"""Bulk writes (COPY on PostgreSQL, executemany elsewhere) store exactly what an ORM INSERT would."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Float, Integer, MetaData, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from abusedesk.runtime import Runtime
from abusedesk.store import bulk
from abusedesk.store.base import UtcDateTime


class _Probe(DeclarativeBase):
    metadata = MetaData()


class ProbeRow(_Probe):
    """Every column type the project's tables use, an autoincrement key and Python-side defaults."""

    __tablename__ = "bulk_probe"
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    body: Mapped[str | None] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer, default=7)
    ratio: Mapped[float | None] = mapped_column(Float)
    flag: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


AWKWARD = ["plain", "tab\there", "new\nline\r\n", "back\\slash", "\\N", "", "é 日本 \u2028 \U0001f600", "a\\tb"]


@pytest.fixture
def probe(runtime: Runtime) -> Iterator[Runtime]:
    _Probe.metadata.create_all(runtime.engine)
    yield runtime
    _Probe.metadata.drop_all(runtime.engine)


def _rows(count: int) -> list[dict[str, Any]]:
    zone = timezone(timedelta(hours=-5))
    return [
        {
            "name": f"row-{i}",
            "body": None if i % 5 == 0 else AWKWARD[i % len(AWKWARD)] * (1 + i % 3),
            "count": i,
            "ratio": None if i % 7 == 0 else i / 3,
            "flag": i % 2 == 0,
            "at": None if i % 6 == 0 else datetime(2026, 3, 1, 12, 0, i % 60, 123456, tzinfo=zone),
            "data": {"text": AWKWARD[i % len(AWKWARD)], "list": [i, None, 1.5, {"k": "v\t"}], "empty": {}},
        }
        for i in range(count)
    ]


def test_copy_rows_round_trips_every_type_and_character(probe: Runtime) -> None:
    rows = _rows(120)
    with probe.sessions() as s, s.begin():
        assert bulk.copy_rows(s, ProbeRow.__table__, rows) == 120
    with probe.sessions() as s:
        stored = {r.name: r for r in s.scalars(select(ProbeRow))}
    assert len(stored) == 120
    for row in rows:
        got = stored[row["name"]]
        assert (got.body, got.count, got.ratio, got.flag, got.data) == (
            row["body"], row["count"], row["ratio"], row["flag"], row["data"],
        )  # fmt: skip
        assert got.at == row["at"] and (got.at is None or got.at.tzinfo == UTC)


def test_a_duplicate_key_refuses_the_whole_write(probe: Runtime) -> None:
    rows = _rows(3)
    with probe.sessions() as s, s.begin():
        bulk.copy_rows(s, ProbeRow.__table__, rows[:1])
    with pytest.raises(IntegrityError), probe.sessions() as s, s.begin():
        bulk.copy_rows(s, ProbeRow.__table__, rows)
    with probe.sessions() as s:
        assert [r.name for r in s.scalars(select(ProbeRow))] == ["row-0"]


def test_flush_new_writes_pending_objects_as_an_insert_would(probe: Runtime) -> None:
    with probe.sessions() as s, s.begin():
        s.add_all([ProbeRow(name="defaults"), ProbeRow(name="given", count=3, flag=True, data={"a": 1}, body="x\ty")])
        kept = ProbeRow(name="later")
        assert bulk.flush_new(s, [ProbeRow]) == 2
        assert list(s.new) == []  # written and detached
        s.add(kept)  # what the session gets afterwards is flushed as usual
    with probe.sessions() as s:
        stored = {r.name: r for r in s.scalars(select(ProbeRow))}
    assert (stored["defaults"].count, stored["defaults"].flag, stored["defaults"].data) == (7, False, {})
    assert (stored["given"].count, stored["given"].flag, stored["given"].body) == (3, True, "x\ty")
    assert len({r.n for r in stored.values()}) == 3  # the database numbered every row


def test_an_unknown_column_type_is_refused_by_name() -> None:
    from sqlalchemy import Column, LargeBinary, Table

    table = Table("t", MetaData(), Column("blob", LargeBinary))
    with pytest.raises(TypeError, match=r"t\.blob"):
        bulk.encoder(table.c.blob)


def test_update_rows_changes_the_matching_rows_in_one_go(probe: Runtime) -> None:
    with probe.sessions() as s, s.begin():
        bulk.copy_rows(s, ProbeRow.__table__, _rows(50))
    later = datetime(2026, 4, 1, 8, 30, tzinfo=timezone(timedelta(hours=2)))
    # (match name, count) -> set count, body, at, flag, ratio; every 10th row's count no longer matches
    rows = [
        [f"row-{i}", i if i % 10 else -1, i + 1000, AWKWARD[i % len(AWKWARD)], later, True, None] for i in range(50)
    ]
    with probe.sessions() as s, s.begin():
        assert (
            bulk.update_rows(s, ProbeRow.__table__, ("name", "count"), ("count", "body", "at", "flag", "ratio"), rows)
            == 45
        )
    with probe.sessions() as s:
        stored = {r.name: r for r in s.scalars(select(ProbeRow))}
    for i in range(50):
        got = stored[f"row-{i}"]
        if i % 10:
            assert (got.count, got.body, got.at, got.flag, got.ratio) == (
                i + 1000,
                AWKWARD[i % len(AWKWARD)],
                later,
                True,
                None,
            )
        else:
            assert got.count == i  # not matched: unchanged
