"""Wiring the stages to the bus: raw.stored → parse → attribute → detect → cases.

Each stage is a handler of one subject; every handler is idempotent, so the bus may deliver twice. The
in-process bus runs them in this process (``abusedesk serve``, the demo, the tests); ``abusedesk worker`` runs
one stage per process over NATS JetStream.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update

from abusedesk.detectors.base import Detector
from abusedesk.domain.ipnet import is_ip
from abusedesk.domain.records import Attribution, Event, Finding
from abusedesk.intake.service import EVENTS_PARSED, RAW_STORED, IntakeService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import EventRow
from abusedesk.store.tables.inventory import ServiceRow

log = logging.getLogger(__name__)

EVENTS_ATTRIBUTED = "events.attributed"


def url_host(url: str) -> str | None:
    """The host of a URL, or None when the URL is malformed (a bad URL in a report must not stop attribution)."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


FINDINGS_NEW = "findings.new"


class AttributeStage:
    """Who had the reported subject at the event's time: by address (inventory index), else by host name."""

    def __init__(self, rt: Runtime) -> None:
        from abusedesk.inventory.service import InventoryService

        self.rt = rt
        self.inventory = InventoryService(rt)

    def attribute(self, event: Event) -> Attribution | None:
        """By address; else by the URL's or FQDN's host (an address literal in a URL counts as an address)."""
        if event.source_ip:
            return self.inventory.attribute(event.source_ip, event.time)
        host = url_host(event.source_url) if event.source_url else None
        host = host or event.source_fqdn
        if not host:
            return None
        host = host.lower().rstrip(".")
        if is_ip(host):
            return self.inventory.attribute(host, event.time)
        return self._by_host(host, event.time)

    def _by_host(self, host: str, at: datetime) -> Attribution:
        with self.rt.sessions() as s:
            for service_id, hostnames in s.execute(select(ServiceRow.id, ServiceRow.hostnames)):
                names = [str(h).lower().rstrip(".") for h in hostnames or []]
                if any(host == n or host.endswith("." + n) for n in names):
                    svc = s.get(ServiceRow, service_id)
                    assert svc is not None
                    from abusedesk.store.tables.inventory import ProjectRow

                    project = s.get(ProjectRow, svc.project_id)
                    return Attribution(
                        ip="",
                        at=at,
                        service_id=svc.id,
                        project_id=svc.project_id,
                        customer_id=project.customer_id if project else None,
                        reason=f"host name {host} belongs to service {svc.id}",
                    )
        return Attribution(ip="", at=at, reason=f"host name {host} is not a host name of any service")

    def handle(self, message: dict[str, Any]) -> None:
        events = [Event.from_dict(d) for d in message["events"]]
        out: list[Event] = []
        with self.rt.sessions.begin() as s:
            for event in events:
                attribution = self.attribute(event)
                if attribution is not None and attribution.is_ours:
                    event = event.with_attribution(attribution)
                    disposition = "triage" if event.extra.get("triage") else "attributed"
                else:
                    disposition = "triage" if attribution is None else "not-ours"
                s.execute(
                    update(EventRow)
                    .where(EventRow.id == event.id)
                    .values(
                        customer_id=event.customer_id,
                        project_id=event.project_id,
                        service_id=event.service_id,
                        disposition=disposition,
                    )
                )
                out.append(event)
        self.rt.bus.publish(EVENTS_ATTRIBUTED, {"events": [e.to_dict() for e in out]})


class DetectStage:
    """Runs the event detectors over attributed events and publishes their findings."""

    def __init__(self, rt: Runtime, detectors: list[Detector] | None = None) -> None:
        self.rt = rt
        if detectors is None:
            from abusedesk.plugins import build_detectors

            detectors = build_detectors(rt.policy, rt.settings)
        self.detectors = detectors

    def handle(self, message: dict[str, Any]) -> None:
        events = [Event.from_dict(d) for d in message["events"]]
        findings: list[Finding] = []
        for detector in self.detectors:
            findings.extend(detector.detect(events, None))
        if findings:
            policy_version = self.rt.policy.version
            self.rt.bus.publish(
                FINDINGS_NEW, {"findings": [f.to_dict() | {"policy_version": policy_version} for f in findings]}
            )


def wire(rt: Runtime, *, with_cases: bool = True) -> IntakeService:
    """Subscribe every stage to the runtime's bus; returns the intake service (the channels' door)."""
    intake = IntakeService(rt)
    rt.bus.subscribe(RAW_STORED, intake.handle_stored)
    rt.bus.subscribe(EVENTS_PARSED, AttributeStage(rt).handle)
    rt.bus.subscribe(EVENTS_ATTRIBUTED, DetectStage(rt).handle)
    if with_cases:
        from abusedesk.cases.engine import CaseEngine

        rt.bus.subscribe(FINDINGS_NEW, CaseEngine(rt).handle)
    return intake
