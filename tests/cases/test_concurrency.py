"""Two workers on one case at the same moment: one wins, the other gets Conflict; nothing is lost or doubled."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from abusedesk.bus.runner import StageRunner
from abusedesk.cases import lifecycle
from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.service import CaseService
from abusedesk.domain.errors import Conflict
from abusedesk.domain.identity import ENGINE
from abusedesk.runtime import Runtime
from abusedesk.stages import stage
from abusedesk.store.tables.cases import CaseRow, CaseTransitionRow, FindingRow
from tests.cases.support import finding


def test_two_workers_transition_one_case_at_once(runtime: Runtime) -> None:
    ref = CaseEngine(runtime).ingest([finding(runtime.policy, 0)]).opened[0]
    svc = CaseService(runtime)
    both_read = threading.Barrier(2, timeout=30)
    outcome: dict[str, Any] = {}

    def worker(name: str, target: str) -> None:
        try:
            with svc._conflicts(), runtime.sessions() as s, s.begin():  # the same path CaseService.transition takes
                row = s.scalar(select(CaseRow).where(CaseRow.ref == ref))
                assert row is not None
                both_read.wait()  # both hold version 1 of the case before either writes
                svc.transition_in(s, row, target, actor=name, reason=f"{name} decides")
            outcome[name] = "ok"
        except Conflict as exc:
            outcome[name] = exc

    threads = [
        threading.Thread(target=worker, args=("alice", "resolved")),
        threading.Thread(target=worker, args=("bob", "escalated")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [n for n, r in outcome.items() if r == "ok"]
    losers = [r for r in outcome.values() if isinstance(r, Conflict)]
    assert len(winners) == 1, outcome
    assert len(losers) == 1, outcome
    assert "someone else changed this case at the same moment" in losers[0].message
    case = svc.get(ref, ENGINE)
    assert case["state"] == {"alice": "resolved", "bob": "escalated"}[winners[0]]
    with runtime.sessions() as s:
        manual = s.scalar(
            select(func.count()).select_from(CaseTransitionRow).where(CaseTransitionRow.actor.in_(["alice", "bob"]))
        )
    assert manual == 1  # the loser left no trace


def test_stale_write_is_refused_on_this_backend(runtime: Runtime) -> None:
    """The optimistic version column itself: a write based on an old read raises, it does not overwrite."""
    ref = CaseEngine(runtime).ingest([finding(runtime.policy, 0)]).opened[0]
    with runtime.sessions() as a, runtime.sessions() as b:
        row_a = a.scalar(select(CaseRow).where(CaseRow.ref == ref))
        row_b = b.scalar(select(CaseRow).where(CaseRow.ref == ref))
        assert row_a is not None and row_b is not None
        a.commit(), b.commit()  # end the read transactions; the objects keep version 1
        row_a.state = "escalated"
        a.commit()
        row_b.state = "resolved"
        with pytest.raises(StaleDataError):
            b.commit()
    assert CaseService(runtime).get(ref, ENGINE)["state"] == "escalated"


@pytest.mark.parametrize("size", [12, 300])  # 300: PostgreSQL takes the COPY path
def test_two_engine_workers_ingest_the_same_findings(runtime: Runtime, size: int) -> None:
    p = runtime.policy
    batch = [finding(p, i, key=f"ip:198.51.100.{i % 3}") for i in range(size)]
    message = {"findings": [f.to_dict() for f in batch]}
    start = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            # as the cases stage runs it: one transaction, run again on a Conflict with the other worker
            StageRunner(runtime, stage("cases")).run([message], lambda s: None)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with runtime.sessions() as s:
        cases = list(s.scalars(select(CaseRow)))
        stored = s.scalar(select(func.count()).select_from(FindingRow))
    assert len(cases) == 3, [(c.group_key, c.finding_count, c.state, c.open_key, c.id) for c in cases]
    assert sorted(c.finding_count for c in cases) == [size // 3] * 3
    assert stored == size


def test_bulk_case_write_refuses_a_case_changed_since_it_was_read(runtime: Runtime) -> None:
    """``lifecycle.write_cases`` (the engine's one-statement case update) keeps the optimistic version check."""
    ref = CaseEngine(runtime).ingest([finding(runtime.policy, 0)]).opened[0]
    with runtime.sessions() as a, runtime.sessions() as b:
        row_a = a.scalar(select(CaseRow).where(CaseRow.ref == ref))
        row_b = b.scalar(select(CaseRow).where(CaseRow.ref == ref))
        assert row_a is not None and row_b is not None
        a.commit(), b.commit()
        row_a.finding_count += 5
        assert lifecycle.write_cases(a, [row_a]) == 1
        a.commit()
        row_b.finding_count += 7
        with pytest.raises(StaleDataError, match="1 of 1 cases were changed by another writer"):
            lifecycle.write_cases(b, [row_b])
        b.rollback()
    with runtime.sessions() as s:
        case = s.scalar(select(CaseRow).where(CaseRow.ref == ref))
        assert case is not None and (case.finding_count, case.version) == (6, 2)
