"""The records that flow between stages: RawInput → Event → (Attribution) → Finding.

Field names follow one catalogue (``abusedesk.domain.catalogue``): the Python attribute ``source_ip`` is the
catalogue field ``source.ip``, and ``Event.to_dict`` / ``Event.from_dict`` speak the catalogue names, as IntelMQ's
harmonisation does. All times are timezone-aware UTC.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from abusedesk.domain.ids import stable_id
from abusedesk.domain.ipnet import normalise_ip
from abusedesk.domain.kinds import KINDS
from abusedesk.domain.timeutil import as_utc, iso, parse_time


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def raised(self, steps: int = 1) -> Severity:
        order = list(Severity)
        return order[min(len(order) - 1, self.rank + steps)]


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class RawInput:
    """Bytes as they arrived, stored content-addressed before anything else happens.

    ``id`` is the SHA-256 of the bytes; ``meta`` holds what the channel knew (file name, sender, peer address,
    content type, the XARF report id). The bytes themselves live in the raw store, not in this record.
    """

    id: str
    size: int
    channel: str
    received_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def filename(self) -> str | None:
        value = self.meta.get("filename")
        return str(value) if value else None


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """One bad line or record in an otherwise parseable input: kept, reported, not fatal."""

    reason: str
    line: int | None = None
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class Attribution:
    """The answer to "whose was this address at that time", with the reason.

    ``service_id`` is None when the address is not ours at that time; ``reason`` then says so.
    """

    ip: str
    at: datetime
    service_id: str | None = None
    project_id: str | None = None
    customer_id: str | None = None
    allocation_id: int | None = None
    prefix: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    reason: str = ""

    @property
    def is_ours(self) -> bool:
        return self.service_id is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ip": self.ip,
            "at": iso(self.at),
            "ours": self.is_ours,
            "service_id": self.service_id,
            "project_id": self.project_id,
            "customer_id": self.customer_id,
            "allocation_id": self.allocation_id,
            "prefix": self.prefix,
            "valid_from": iso(self.valid_from) if self.valid_from else None,
            "valid_to": iso(self.valid_to) if self.valid_to else None,
            "reason": self.reason,
        }


# catalogue name -> attribute name, for the scalar fields of Event
EVENT_FIELDS: dict[str, str] = {
    "classification.type": "kind",
    "time.source": "time",
    "time.observation": "observed",
    "feed.name": "feed",
    "feed.reporter": "reporter",
    "feed.report_id": "report_id",
    "raw.id": "raw_id",
    "source.ip": "source_ip",
    "source.ip_derived": "ip_derived",
    "source.port": "source_port",
    "source.url": "source_url",
    "source.fqdn": "source_fqdn",
    "source.account": "source_account",
    "destination.ip": "destination_ip",
    "destination.port": "destination_port",
    "protocol.transport": "transport",
    "protocol.application": "application",
    "event.confidence": "confidence",
    "event.description": "description",
    "subject.customer_id": "customer_id",
    "subject.project_id": "project_id",
    "subject.service_id": "service_id",
    "subject.allocation_id": "allocation_id",
}
_ATTR_TO_FIELD = {v: k for k, v in EVENT_FIELDS.items()}
_TIME_ATTRS = ("time", "observed")
# fields that identify *what was observed*; the id is computed from these, so a re-sent report or a replay
# yields the same id (raw_id and observation time differ between deliveries and are left out on purpose)
_IDENTITY_ATTRS = (
    "kind",
    "time",
    "feed",
    "report_id",
    "source_ip",
    "source_port",
    "source_url",
    "source_fqdn",
    "source_account",
    "destination_ip",
    "destination_port",
    "transport",
    "application",
)


@dataclass(frozen=True, slots=True)
class Event:
    """A normalised observation: something happened, at a time, involving a subject we may host.

    Build events with :meth:`Event.create`, which validates and normalises fields and computes the id.
    """

    id: str
    kind: str
    time: datetime
    feed: str
    observed: datetime | None = None
    reporter: str | None = None
    report_id: str | None = None
    raw_id: str | None = None
    source_ip: str | None = None
    ip_derived: bool = False
    source_port: int | None = None
    source_url: str | None = None
    source_fqdn: str | None = None
    source_account: str | None = None
    destination_ip: str | None = None
    destination_port: int | None = None
    transport: str | None = None
    application: str | None = None
    confidence: float = 1.0
    description: str | None = None
    customer_id: str | None = None
    project_id: str | None = None
    service_id: str | None = None
    allocation_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, *, kind: str, time: datetime, feed: str, **fields: Any) -> Event:
        """Validate and normalise, then compute the deterministic id. Raises ValueError naming the bad field."""
        if kind not in KINDS:
            raise ValueError(f"classification.type {kind!r} is not a known event kind")
        # fields is this call's own dict (the ** of the call): it becomes the constructor's arguments
        values, get = fields, fields.get
        values["kind"], values["time"], values["feed"] = kind, as_utc(time), feed
        if get("observed") is not None:
            values["observed"] = as_utc(values["observed"])
        for attr in ("source_ip", "destination_ip"):
            address = get(attr)
            if address:
                try:
                    values[attr] = normalise_ip(str(address))
                except ValueError as exc:
                    raise ValueError(f"{_ATTR_TO_FIELD[attr]}: {exc}") from None
            elif attr in values:
                values[attr] = None
        for attr in ("source_port", "destination_port"):
            if attr not in values:
                continue
            if values[attr] in (None, ""):
                values[attr] = None
                continue
            port = int(values[attr])
            if not 0 <= port <= 65535:
                raise ValueError(f"{_ATTR_TO_FIELD[attr]}: {port} is not a port number")
            values[attr] = port
        conf = float(get("confidence", 1.0))
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f"event.confidence: {conf} is outside 0..1")
        values["confidence"] = conf
        extra = values.setdefault("extra", {})
        ident = [get(a) for a in _IDENTITY_ATTRS]
        ident[1] = values["time"].isoformat().replace("+00:00", "Z")  # iso() of a time already in UTC
        values["id"] = stable_id("ev", *ident, extra.get("identity"))
        return cls(**values)

    def with_attribution(self, attribution: Attribution) -> Event:
        return dataclasses.replace(
            self,
            customer_id=attribution.customer_id,
            project_id=attribution.project_id,
            service_id=attribution.service_id,
            allocation_id=attribution.allocation_id,
        )

    @property
    def subject_ip(self) -> str | None:
        return self.source_ip

    def to_dict(self) -> dict[str, Any]:
        """The event in catalogue names; None values are left out."""
        out: dict[str, Any] = {"id": self.id}
        for name, attr in EVENT_FIELDS.items():
            value = getattr(self, attr)
            if value is None or (attr == "ip_derived" and not value):
                continue
            out[name] = iso(value) if attr in _TIME_ATTRS else value
        if self.extra:
            out["extra"] = self.extra
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Rebuild from :meth:`to_dict` output; the id must match the content (tampering is refused)."""
        kwargs: dict[str, Any] = {}
        for name, attr in EVENT_FIELDS.items():
            if name in data:
                value = data[name]
                kwargs[attr] = parse_time(value) if attr in _TIME_ATTRS and isinstance(value, str) else value
        kwargs["extra"] = dict(data.get("extra") or {})
        kind, time, feed = kwargs.pop("kind"), kwargs.pop("time"), kwargs.pop("feed")
        event = cls.create(kind=kind, time=time, feed=feed, **kwargs)
        if "id" in data and data["id"] != event.id:
            raise ValueError(f"event id {data['id']} does not match its content (expected {event.id})")
        return event


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's conclusion: this subject did this, against these clauses, with this evidence.

    ``group_key`` is the detector's notion of "the same problem" (e.g. the scanning address); the case engine
    groups findings by customer, service, clause and group key. ``evidence`` is a small sample of rows or blob
    references, never the whole telemetry.
    """

    id: str
    detector: str
    kind: str
    clauses: tuple[str, ...]
    group_key: str
    window_start: datetime
    window_end: datetime
    severity: Severity
    confidence: float
    summary: str
    subject_ip: str | None = None
    customer_id: str | None = None
    project_id: str | None = None
    service_id: str | None = None
    event_ids: tuple[str, ...] = ()
    evidence: tuple[dict[str, Any], ...] = ()
    policy_version: str | None = None

    @classmethod
    def create(
        cls,
        *,
        detector: str,
        kind: str,
        clauses: tuple[str, ...] | list[str],
        group_key: str,
        window_start: datetime,
        window_end: datetime,
        severity: Severity | str,
        confidence: float,
        summary: str,
        **fields: Any,
    ) -> Finding:
        if kind not in KINDS:
            raise ValueError(f"finding kind {kind!r} is not a known event kind")
        if not clauses:
            raise ValueError("a finding must cite at least one clause")
        ws, we = as_utc(window_start), as_utc(window_end)
        if we < ws:
            raise ValueError(f"finding window ends ({iso(we)}) before it starts ({iso(ws)})")
        event_ids = tuple(sorted(set(fields.pop("event_ids", ()) or ())))
        evidence = tuple(fields.pop("evidence", ()) or ())
        fid = stable_id(
            "fd",
            detector,
            kind,
            sorted(clauses),
            group_key,
            iso(ws),
            iso(we),
            list(event_ids),
            fields.get("service_id"),
        )
        return cls(
            id=fid,
            detector=detector,
            kind=kind,
            clauses=tuple(clauses),
            group_key=group_key,
            window_start=ws,
            window_end=we,
            severity=Severity(severity),
            confidence=float(confidence),
            summary=summary,
            event_ids=event_ids,
            evidence=evidence,
            **fields,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "detector": self.detector,
            "kind": self.kind,
            "clauses": list(self.clauses),
            "group_key": self.group_key,
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "severity": self.severity.value,
            "confidence": self.confidence,
            "summary": self.summary,
            "subject_ip": self.subject_ip,
            "customer_id": self.customer_id,
            "project_id": self.project_id,
            "service_id": self.service_id,
            "event_ids": list(self.event_ids),
            "evidence": list(self.evidence),
            "policy_version": self.policy_version,
        }
