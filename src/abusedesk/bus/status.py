"""What waits in the pipeline, and finishing it: the service behind ``abusedesk pipeline status|resume``.

Per message stage of the stage table: the messages waiting (the outbox rows of the stage on the in-process
bus; the stage's JetStream consumers' pending and unacked messages on NATS) and the age of the oldest (in
process). Then what no stage will take up by itself: dead letters, outbox rows not yet relayed to NATS, and
*stranded* inputs — stored but unparsed while nothing waits for the parse stage (a database written before
durable hand-offs, or rows removed by hand). ``resume`` hands stranded inputs on, relays, and (in process) drains
every stage; it is finished when nothing is left.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from abusedesk.bus.base import RELAY, InProcessBus
from abusedesk.domain.timeutil import iso
from abusedesk.stages import message_stages
from abusedesk.store.tables.bus import DeadLetterRow, DetectorStateRow, OutboxRow
from abusedesk.store.tables.intake import RawInputRow

if TYPE_CHECKING:
    from abusedesk.runtime import Runtime


def pipeline_status(rt: Runtime) -> dict[str, Any]:
    """The backlog per stage, dead letters, unrelayed and stranded work, as a JSON-able dict."""
    from abusedesk.bus.nats import NatsBus

    now = rt.clock.now()
    with rt.sessions() as s:
        outbox = {
            consumer: (int(n), oldest)
            for consumer, n, oldest in s.execute(
                select(OutboxRow.consumer, func.count(), func.min(OutboxRow.created_at)).group_by(OutboxRow.consumer)
            )
        }
        inputs = {
            str(k): int(n) for k, n in s.execute(select(RawInputRow.status, func.count()).group_by(RawInputRow.status))
        }
        table_letters = int(s.scalar(select(func.count()).select_from(DeadLetterRow)) or 0)
        windows = int(s.scalar(select(func.count()).select_from(DetectorStateRow)) or 0)
    stages: list[dict[str, Any]] = []
    for spec in message_stages():
        if isinstance(rt.bus, NatsBus):
            waiting, oldest = rt.bus.stage_backlog(spec.subject or "", spec.name), None
        else:
            waiting, oldest = outbox.get(spec.name, (0, None))
        stages.append(
            {
                "stage": spec.name,
                "subject": spec.subject,
                "waiting": waiting,
                "oldest": iso(oldest) if isinstance(oldest, datetime) else None,
                "oldest_age_seconds": round((now - _utc(oldest)).total_seconds(), 3) if oldest else None,
            }
        )
    parse_waiting = next(st["waiting"] for st in stages if st["stage"] == "parse")
    dead = len(rt.bus.dead_letters()) if isinstance(rt.bus, NatsBus) else table_letters
    unrelayed = outbox.get(RELAY, (0, None))[0]
    stored = inputs.get("stored", 0)
    return {
        "bus": "nats" if isinstance(rt.bus, NatsBus) else "inprocess",
        "stages": stages,
        "waiting": sum(st["waiting"] for st in stages),
        "unrelayed": unrelayed,
        "dead_letters": dead,
        "stranded_inputs": stored if parse_waiting == 0 and unrelayed == 0 else 0,
        "inputs": inputs,
        "open_windows": windows,
    }


def _utc(value: datetime) -> datetime:
    from abusedesk.domain.timeutil import as_utc

    return as_utc(value)


def resume(rt: Runtime, *, finalize: bool = False) -> dict[str, Any]:
    """Hand stranded inputs on, relay the outbox, and (in process) drain every stage; returns the status after.

    ``finalize`` also closes every open detector window (the end of a finite replay) and drains its findings.
    """
    from abusedesk.bus.worker import republish_unparsed

    before = pipeline_status(rt)
    handed_on = republish_unparsed(rt) if before["stranded_inputs"] else 0
    rt.bus.flush()
    handled = rt.drain()
    finalized = 0
    if finalize and isinstance(rt.bus, InProcessBus):
        finalized = finalize_windows(rt)
        handled += rt.drain()
    after = pipeline_status(rt)
    finished = after["waiting"] == 0 and after["unrelayed"] == 0 and after["stranded_inputs"] == 0
    return after | {"handed_on": handed_on, "handled": handled, "finalized": finalized, "finished": finished}


def finalize_windows(rt: Runtime) -> int:
    """Flush every open detector window into findings, handed to the cases stage; returns their number."""
    from abusedesk.pipeline import DetectStage
    from abusedesk.stages import FINDINGS_NEW

    detect = DetectStage(rt)
    with rt.sessions.begin() as s:
        findings = detect.runner.finalize_all(s)
        if findings:
            version = rt.policy.version
            rt.bus.put(s, FINDINGS_NEW, {"findings": [f.to_dict() | {"policy_version": version} for f in findings]})
    rt.bus.flush()
    return len(findings)
