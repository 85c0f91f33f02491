"""Operations: ``/healthz`` (the process answers), ``/readyz`` (the database answers) and ``/metrics``.

``/metrics`` is the Prometheus text format (prometheus-client), read from the database at scrape time, so every
``serve`` process and worker of one deployment reports the same figures and nothing is lost on a restart:

- ``abusedesk_intake_inputs{channel, outcome}``: raw inputs by channel and state (stored, parsed, quarantined)
- ``abusedesk_stage_backlog{stage}``: messages waiting per pipeline stage
- ``abusedesk_findings{clause}``: findings per clause (of their cases)
- ``abusedesk_actions{kind, outcome}``: actions by kind and status (proposed, pending, done, failed, rejected)
- ``abusedesk_notices{status}``: notice delivery (queued, sending, sent, failed)
- ``abusedesk_cases{state}``: cases per state

It needs a staff token (counts only, but of every customer): a Prometheus scrape job sets
``authorization: {credentials: <token>}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text

from abusedesk.api.auth import RT, Caller
from abusedesk.api.errors import problem_response
from abusedesk.domain.errors import Forbidden
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseRow, NoticeRow
from abusedesk.store.tables.intake import RawInputRow

router = APIRouter(tags=["operations"])

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


class DeskCollector(Collector):
    """Reads the figures from the database on each scrape."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Any]:
        from abusedesk.bus.status import pipeline_status

        with self.rt.sessions() as s:
            intake = s.execute(
                select(RawInputRow.channel, RawInputRow.status, func.count()).group_by(
                    RawInputRow.channel, RawInputRow.status
                )
            ).all()
            findings = s.execute(select(CaseRow.clause, func.sum(CaseRow.finding_count)).group_by(CaseRow.clause)).all()
            cases = s.execute(select(CaseRow.state, func.count()).group_by(CaseRow.state)).all()
            actions = s.execute(
                select(ActionRow.kind, ActionRow.status, func.count()).group_by(ActionRow.kind, ActionRow.status)
            ).all()
            notices = s.execute(select(NoticeRow.status, func.count()).group_by(NoticeRow.status)).all()
        g = GaugeMetricFamily(
            "abusedesk_intake_inputs", "Raw inputs by channel and outcome", labels=["channel", "outcome"]
        )
        for channel, status, n in intake:
            g.add_metric([str(channel), str(status)], int(n))
        yield g
        g = GaugeMetricFamily("abusedesk_stage_backlog", "Messages waiting per pipeline stage", labels=["stage"])
        for st in pipeline_status(self.rt)["stages"]:
            g.add_metric([st["stage"]], int(st["waiting"]))
        yield g
        g = GaugeMetricFamily("abusedesk_findings", "Findings per clause", labels=["clause"])
        for clause, n in findings:
            g.add_metric([str(clause)], int(n or 0))
        yield g
        g = GaugeMetricFamily("abusedesk_cases", "Cases per state", labels=["state"])
        for state, n in cases:
            g.add_metric([str(state)], int(n))
        yield g
        g = GaugeMetricFamily("abusedesk_actions", "Actions by kind and outcome", labels=["kind", "outcome"])
        for kind, status, n in actions:
            g.add_metric([str(kind), str(status)], int(n))
        yield g
        g = GaugeMetricFamily("abusedesk_notices", "Notices by delivery status", labels=["status"])
        for status, n in notices:
            g.add_metric([str(status)], int(n))
        yield g


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process is up (no dependency checked)."""
    return {"ok": True}


@router.get("/readyz", response_model=None)
def readyz(rt: RT) -> dict[str, Any] | JSONResponse:
    """Ready to serve: the database answers. 503 (problem+json) otherwise."""
    try:
        with rt.sessions() as s:
            s.execute(text("SELECT 1"))
    except Exception as exc:  # the HTTP edge: any failure of the database means "not ready"
        return problem_response(503, f"the database does not answer ({type(exc).__name__}: {exc})", instance="/readyz")
    return {"ok": True, "database": rt.engine.dialect.name}


@router.get("/metrics", response_class=Response)
def metrics(rt: RT, by: Caller) -> Response:
    """Prometheus text format; a staff token."""
    if not by.is_staff:
        raise Forbidden(f"{by.name} may not read /metrics: it counts every customer's cases")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeskCollector(rt))
    return Response(generate_latest(registry), media_type=PROMETHEUS)
