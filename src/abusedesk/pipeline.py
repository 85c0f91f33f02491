"""The attribute and detect stages (``abusedesk.stages`` lists every stage and who runs it).

Each is a batch handler: ``handle(batch)`` works inside the batch's transaction and emits its outputs on the
batch, so its writes, its outputs and the consumption of its input commit together (docs/dev/pipeline.md).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from abusedesk.bus.base import StageBatch
from abusedesk.detectors.base import Detector
from abusedesk.detectors.runner import DetectorRunner
from abusedesk.domain.ipnet import is_ip
from abusedesk.domain.records import Attribution, Event, Finding
from abusedesk.runtime import Runtime
from abusedesk.stages import EVENTS_ATTRIBUTED, FINDINGS_NEW
from abusedesk.store import bulk
from abusedesk.store.tables.intake import EventRow
from abusedesk.store.tables.inventory import ProjectRow, ServiceRow

log = logging.getLogger(__name__)
EVENTS = cast(Table, EventRow.__table__)

__all__ = ["EVENTS_ATTRIBUTED", "FINDINGS_NEW", "AttributeStage", "DetectStage", "url_host"]


def url_host(url: str) -> str | None:
    """The host of a URL, or None when the URL is malformed (a bad URL in a report must not stop attribution)."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


#: the one partition of signup events: the signup detector's windows (shared addresses, networks, devices) span
#: every signup, so they meet in one state
SIGNUP_PARTITION = "signups"


def partition_key(event: Event) -> str:
    """The detect stage's partition of an event: its service, else its source (one subject's state together)."""
    if event.kind == "signup":
        return SIGNUP_PARTITION
    return event.service_id or event.source_ip or event.source_fqdn or "-"


class HostNames:
    """Service host names → (service, project, customer), read once for a batch that needs them."""

    def __init__(self, session: Session) -> None:
        self.exact: dict[str, tuple[str, str, str | None]] = {}
        rows = session.execute(
            select(ServiceRow.id, ServiceRow.project_id, ServiceRow.hostnames, ProjectRow.customer_id).join(
                ProjectRow, ProjectRow.id == ServiceRow.project_id, isouter=True
            )
        )
        for service_id, project_id, hostnames, customer_id in rows:
            for name in hostnames or []:
                key = str(name).lower().rstrip(".")
                if key:
                    self.exact.setdefault(key, (service_id, project_id, customer_id))

    def attribute(self, host: str, at: datetime) -> Attribution:
        """The service whose host name is ``host`` or a parent domain of it (the longest match wins)."""
        labels = host.split(".")
        for i in range(len(labels)):
            hit = self.exact.get(".".join(labels[i:]))
            if hit is not None:
                service_id, project_id, customer_id = hit
                return Attribution(
                    ip="",
                    at=at,
                    service_id=service_id,
                    project_id=project_id,
                    customer_id=customer_id,
                    reason=f"host name {host} belongs to service {service_id}",
                )
        return Attribution(ip="", at=at, reason=f"host name {host} is not a host name of any service")


class AttributeStage:
    """Who had the reported subject at the event's time: by address (inventory index), else by host name."""

    def __init__(self, rt: Runtime) -> None:
        from abusedesk.inventory.service import InventoryService

        self.rt = rt
        self.inventory = InventoryService(rt)
        self._signups: Any = None

    def _attribute_signups(self, session: Session, events: list[Event]) -> list[Event]:
        """Signups are screened and linked to suspended customers, not looked up by address (issue 14)."""
        if self._signups is None:
            from abusedesk.screening.signups import SignupLinker

            self._signups = SignupLinker(self.rt)
        signups: list[Event] = self._signups.attribute(session, events)
        return signups

    def attribute(self, event: Event, hosts: HostNames | None = None) -> Attribution | None:
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
        if hosts is None:
            with self.rt.sessions() as s:
                hosts = HostNames(s)
        return hosts.attribute(host, event.time)

    def handle(self, batch: StageBatch) -> None:
        events = [Event.from_dict(d) for m in batch.messages for d in m.get("events", [])]
        hosts: HostNames | None = None
        updates: list[tuple[Any, ...]] = []
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        signups = [e for e in events if e.kind == "signup"]
        if signups:
            events = [e for e in events if e.kind != "signup"]
            screened = []
            for event in self._attribute_signups(batch.session, signups):
                data = event.to_dict()
                screened.append({"eid": event.id, "c": event.customer_id, "data": data})
                by_key[SIGNUP_PARTITION].append(data)
            t = EVENTS.c  # the verdict and the links are kept on the event (what `screen signup` shows)
            batch.session.execute(
                update(EVENTS)
                .where(t.id == bindparam("eid"))
                .values(customer_id=bindparam("c"), disposition="signup", data=bindparam("data")),
                screened,
            )
        by_address = [e for e in events if e.source_ip]  # one vectorised index look-up for the batch
        owners = dict(
            zip(
                (e.id for e in by_address),
                self.inventory.attribute_many([e.source_ip or "" for e in by_address], [e.time for e in by_address]),
                strict=True,
            )
        )
        for event in events:
            if hosts is None and not event.source_ip:
                hosts = HostNames(batch.session)
            attribution = owners[event.id] if event.id in owners else self.attribute(event, hosts)
            if attribution is not None and attribution.is_ours:
                event = event.with_attribution(attribution)
                disposition = "triage" if event.extra.get("triage") else "attributed"
            else:
                disposition = "triage" if attribution is None else "not-ours"
            updates.append((event.id, event.customer_id, event.project_id, event.service_id, disposition))
            by_key[partition_key(event)].append(event.to_dict())
        # one UPDATE over unnested arrays on PostgreSQL (an executemany was one statement per event), executemany
        # on SQLite
        bulk.update_rows(
            batch.session, EVENTS, ["id"], ["customer_id", "project_id", "service_id", "disposition"], updates
        )
        for key, items in by_key.items():
            batch.emit(EVENTS_ATTRIBUTED, {"events": items, "partition_key": key}, key=key)


class DetectStage:
    """Runs the event detectors over attributed events, with state per partition, and hands on their findings."""

    def __init__(self, rt: Runtime, detectors: list[Detector] | None = None) -> None:
        self.rt = rt
        if detectors is None:
            from abusedesk.plugins import build_detectors

            detectors = build_detectors(rt.policy, rt.settings)
        self.detectors = detectors
        self.runner = DetectorRunner(rt, detectors)

    def handle(self, batch: StageBatch) -> None:
        by_key: dict[str, list[Event]] = defaultdict(list)
        for m in batch.messages:
            key = str(m.get("partition_key") or "-")
            by_key[key].extend(Event.from_dict(d) for d in m.get("events", []))
        findings = self.runner.run(batch.session, by_key)
        if findings:
            version = self.rt.policy.version
            batch.emit(FINDINGS_NEW, {"findings": [f.to_dict() | {"policy_version": version} for f in findings]})
        self._triage_the_unclaimed(batch, by_key, findings)

    def _triage_the_unclaimed(self, batch: StageBatch, by_key: dict[str, list[Event]], findings: list[Finding]) -> None:
        """An event of ours that no detector turned into a finding (below a detector's confidence, a kind no
        clause covers) waits for an analyst: disposition ``triage``, so every input reaches an end a person sees.

        With a stateful detector whose windows hold events, an event of its partition may sit in an open window,
        so then nothing of that partition is moved here. Telemetry summaries (``extra.observation``, an egress
        log's crawl summaries) that no detector flagged are clean observations, not reports: they need no analyst.
        """
        claimed = {eid for f in findings for eid in f.event_ids}
        unclaimed = [
            e.id
            for key, events in by_key.items()
            if not self.runner.has_state(key)
            for e in events
            if e.service_id is not None and e.id not in claimed and not e.extra.get("observation")
        ]
        if unclaimed:
            t = EVENTS.c
            batch.session.execute(
                update(EVENTS).where(t.id.in_(unclaimed), t.disposition == "attributed").values(disposition="triage")
            )
