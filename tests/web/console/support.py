"""What the console tests share: cases with findings made through the case engine, a report run through the
whole pipeline (raw input → event → finding → case), a quarantined input, and a small inventory."""

from __future__ import annotations

from datetime import timedelta

from abusedesk.cases.engine import CaseEngine
from abusedesk.clock import ManualClock
from abusedesk.config import Settings
from abusedesk.intake.service import IntakeService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import CaseRow
from tests.cases.support import finding
from tests.pipeline.spine import SPAM_IP, add_inventory, arf_report, quiet_settings

__all__ = ["SPAM_IP", "make_cases", "quarantined", "reported_case"]


def make_cases(rt: Runtime, clock: ManualClock, n: int, *, customer: str = "cust-a", first: int = 10) -> list[str]:
    """``n`` cases of one customer (one scan finding each, a second apart); their refs, oldest first."""
    refs = []
    for i in range(n):
        report = CaseEngine(rt).ingest(
            [finding(rt.policy, 0, key=f"ip:192.0.2.{first + i}", customer=customer, service=f"svc-{customer}")]
        )
        refs += report.opened
        clock.advance(timedelta(seconds=1))
    return refs


def reported_case(runtime: Runtime, settings: Settings, clock: ManualClock) -> tuple[Runtime, str, str]:
    """An ARF report about SPAM_IP through the whole pipeline: (the pipeline's runtime, the case ref, the raw id)."""
    add_inventory(runtime)
    rt = Runtime(quiet_settings(settings), clock=clock, engine=runtime.engine)
    accepted = IntakeService(rt).accept(arf_report(), channel="test", reporter="fbl@mailbox.example.net")
    rt.drain()
    with rt.sessions() as s:
        [ref] = s.scalars(CaseRow.__table__.select().with_only_columns(CaseRow.ref)).all()
    return rt, ref, accepted.raw.id


def quarantined(rt: Runtime, data: bytes = b"\x00\x01 not a report") -> str:
    """An input no parser reads, left in quarantine; its raw id."""
    accepted = IntakeService(rt).accept(data, channel="http", reporter="x@example.net")
    IntakeService(rt).parse(accepted.raw.id)
    return accepted.raw.id
