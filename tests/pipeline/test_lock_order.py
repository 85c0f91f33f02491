"""Lock order on PostgreSQL: every transaction that appends to the audit chain and moves reporters' counters
takes the chain's advisory lock first.

The door (``IntakeService.accept_many``) appends its ``raw.stored`` entries, then adds the reports to their
reporters' rows; the parse stage once did the reverse (reporters' rows, then its ``raw.parsed`` entry). With
``abusedesk intake file`` storing while parse workers ran, PostgreSQL found the two waiting for each other and
aborted the door with ``DeadlockDetected`` (benchmarks/pipeline_nats.py with 4 workers a stage: the door stopped
after 200 of 2,000 mails).
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from abusedesk.bus.runner import InProcessPipeline
from abusedesk.evidence.audit import _PG_LOCK_KEY
from abusedesk.intake.service import IntakeService
from abusedesk.runtime import Runtime
from abusedesk.stages import stage
from tests.pipeline.spine import arf_report

REPORTER = "fbl@mailbox.example.net"


# the audit chain's advisory lock exists on PostgreSQL only (SQLite has one writer): not collected on SQLite
@pytest.mark.postgresql_only
def test_parse_stage_takes_the_audit_lock_before_it_locks_a_reporter_row(spine_rt: Runtime) -> None:
    assert spine_rt.engine.dialect.name == "postgresql"
    IntakeService(spine_rt).accept(arf_report(1), channel="test", reporter=REPORTER)
    engine = spine_rt.engine
    errors: list[BaseException] = []

    def parse() -> None:
        try:
            InProcessPipeline(spine_rt, [stage("parse")]).drain()
        except BaseException as exc:  # shown by the assertion below
            errors.append(exc)

    with engine.connect() as holder, engine.connect() as probe:
        holder.begin()
        holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})  # another audit writer
        worker = threading.Thread(target=parse)
        worker.start()
        deadline = time.monotonic() + 30
        while not probe.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).scalar_one():
            assert time.monotonic() < deadline, "the parse stage never waited for the audit chain's lock"
            time.sleep(0.05)
        probe.rollback()
        # the parse stage now waits for the chain: it must not hold its reporter's row meanwhile
        probe.begin()
        try:
            probe.execute(text("SELECT address FROM reporters WHERE address = :a FOR UPDATE NOWAIT"), {"a": REPORTER})
            row_free = True
        except OperationalError:
            row_free = False
        probe.rollback()
        holder.rollback()  # the other writer commits: the parse stage goes on
        worker.join(60)
    assert not worker.is_alive() and errors == []
    assert row_free, "the parse stage held a reporter row while it waited for the audit chain (deadlock order)"
    with engine.connect() as con:
        events = con.execute(text("SELECT events FROM reporters WHERE address = :a"), {"a": REPORTER}).scalar_one()
    assert events == 1  # and the batch did its work once the chain was free
