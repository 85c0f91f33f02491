"""SignupDetector: disposable addresses (section 2) and circumvention (clause 1.10) at signup (issue 14).

Reads the ``signup`` events the attribute stage screened and linked (``abusedesk.screening.signups``) and flags:

* ``disposable-email``: the screening verdict is ``disposable`` (a list, the operator's deny list, or the MX rule
  with ``screening.mx_verdict = "disposable"``). A ``review`` verdict makes no finding: the event waits in the
  signup's record for a person.
* ``circumvention`` (linked): the normalised address is a suspended or terminated customer's (``extra.linked``).
* ``circumvention`` (farm): ``farm_threshold`` or more signups within ``window_seconds`` share a normalised
  address, a network (``/ipv4_prefix``, ``/ipv6_prefix``) or a device fingerprint: each of them is flagged, the
  ones before the threshold when it is reached, the later ones as they come.

State (one partition, ``signups``): per shared key the recent signups ``[time, event id, customer]``, trimmed to the
window at every flush. Findings are for the signup's customer (``customer_id`` of the signup); a linked signup
without one is charged to the linked customer.
False positives: a family or an office behind one NAT address signing up together (raise ``farm_threshold``
or the prefix length); a provider's documented address rules applied to a mail system that does not follow them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.base import Detector
from abusedesk.domain.records import Event, Finding, Severity
from abusedesk.domain.timeutil import iso, parse_time

#: the detect stage's partition of signups (abusedesk.pipeline.SIGNUP_PARTITION)
PARTITION = "signups"


def network_of(ip: str, v4: int, v6: int) -> str:
    """The network a signup address is counted in (``198.51.100.0/24``; IPv4-mapped shown as IPv4)."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = v4 if addr.version == 4 else v6
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


class SignupDetector(Detector):
    """Flags signups with disposable addresses (section 2), signups of suspended or terminated customers under a
    new name, and signup farms sharing an address, network or device (clause 1.10).

    For: the provider's signup flow (``POST /api/v1/screen/signup``, ``abusedesk screen signup``). False positives:
    people behind one NAT address or one shared device signing up together; see the parameters.
    """

    name = "signup"
    partitions: ClassVar[frozenset[str] | None] = frozenset({PARTITION})

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        window_seconds: int = Field(3600, ge=1, description="How far back signups count towards a farm.")
        farm_threshold: int = Field(5, ge=2, description="Signups sharing a key in the window that make a farm.")
        ipv4_prefix: int = Field(24, ge=8, le=32, description="IPv4 signups in one such network share a key.")
        ipv6_prefix: int = Field(64, ge=16, le=128, description="IPv6 signups in one such network share a key.")
        max_per_key: int = Field(1000, ge=2, description="Most signups kept per key (the newest).")

    def new_state(self) -> dict[str, Any]:
        return {"keys": {}}

    def _params(self) -> SignupDetector.Params:
        params = self.params
        assert isinstance(params, SignupDetector.Params)
        return params

    def detect(self, batch: Sequence[Event] | Any, state: Any = None) -> list[Finding]:
        p = self._params()
        state = state if state is not None else self.new_state()
        findings: list[Finding] = []
        for event in sorted((e for e in batch if e.kind == "signup"), key=lambda e: (e.time, e.id)):
            findings.extend(self._screened(event))
            findings.extend(self._linked(event))
            for key in self._keys(event, p):
                findings.extend(self._farm(event, key, state, p))
        return findings

    def flush(self, state: Any, watermark: datetime) -> list[Finding]:
        cutoff = iso(watermark - timedelta(seconds=self._params().window_seconds))
        keys: dict[str, list[list[Any]]] = state["keys"]
        for key in list(keys):
            keys[key] = [entry for entry in keys[key] if entry[0] >= cutoff]
            if not keys[key]:
                del keys[key]
        return []

    # ----------------------------------------------------------------------------------------------- rules

    def _finding(self, event: Event, kind: str, group_key: str, summary: str, customer: str | None,
                 evidence: dict[str, Any], *, start: datetime | None = None, event_ids: Sequence[str] = (),
                 confidence: float = 0.9, severity: Severity | None = None) -> Finding:  # fmt: skip
        return Finding.create(
            detector=self.name,
            kind=kind,
            clauses=self.policy.clauses_for_kind(kind),
            group_key=group_key,
            window_start=start or event.time,
            window_end=event.time,
            severity=severity or self.policy.severity_for_kind(kind),
            confidence=confidence,
            summary=summary,
            subject_ip=event.source_ip,
            customer_id=customer,
            event_ids=tuple(event_ids) or (event.id,),
            evidence=(evidence,),
        )

    def _evidence(self, event: Event) -> dict[str, Any]:
        extra = event.extra
        return {
            "event": event.id,
            "raw": event.raw_id,
            "email": event.source_account,
            "normalized_email": extra.get("normalized_email"),
            "account_id": extra.get("account_id"),
            "customer_id": extra.get("customer_id"),
            "ip": event.source_ip,
            "device": extra.get("device"),
        }

    def _screened(self, event: Event) -> list[Finding]:
        verdict = event.extra.get("screening") or {}
        if verdict.get("verdict") != "disposable":
            return []
        account = event.extra.get("account_id") or event.source_account
        return [
            self._finding(
                event,
                "disposable-email",
                f"account:{(event.source_account or '').lower()}",
                f"signup {account} uses a disposable address: {verdict.get('reason')}",
                event.customer_id,
                {**self._evidence(event), "screening": verdict},
            )
        ]

    def _linked(self, event: Event) -> list[Finding]:
        linked: list[dict[str, Any]] = event.extra.get("linked") or []
        if not linked:
            return []
        key = event.extra.get("normalized_email")
        names = ", ".join(f"{e['customer_id']} ({e['status']}, {e['via']} {e['address']})" for e in linked)
        account = event.extra.get("account_id") or event.source_account
        return [
            self._finding(
                event,
                "circumvention",
                f"identity:{key}",
                f"signup {account} ({event.source_account}) is the address of {names}",
                event.customer_id or linked[0]["customer_id"],
                {**self._evidence(event), "linked": linked, "rule": "linked-identity"},
                severity=Severity.HIGH,
            )
        ]

    def _keys(self, event: Event, p: SignupDetector.Params) -> list[str]:
        keys = []
        if event.extra.get("normalized_email"):
            keys.append(f"email:{event.extra['normalized_email']}")
        if event.source_ip:
            keys.append(f"net:{network_of(event.source_ip, p.ipv4_prefix, p.ipv6_prefix)}")
        if event.extra.get("device"):
            keys.append(f"device:{event.extra['device']}")
        return keys

    def _farm(self, event: Event, key: str, state: dict[str, Any], p: SignupDetector.Params) -> list[Finding]:
        entries: list[list[Any]] = state["keys"].setdefault(key, [])
        if any(entry[1] == event.id for entry in entries):
            return []  # the same signup again (a replay): counted once
        cutoff = iso(event.time - timedelta(seconds=p.window_seconds))
        entries[:] = [e for e in entries if e[0] >= cutoff]
        entries.append([iso(event.time), event.id, event.customer_id, event.extra.get("account_id")])
        entries.sort(key=lambda e: (e[0], e[1]))  # a late signup (older than the last) keeps the window in order
        del entries[: -p.max_per_key]
        if len(entries) < p.farm_threshold:
            return []
        # when the threshold is reached every signup of the window is flagged; after that, each new one
        flagged = entries if len(entries) == p.farm_threshold else [e for e in entries if e[1] == event.id]
        start = parse_time(entries[0][0])
        accounts = [e[3] or e[1] for e in entries]
        out = []
        for when, eid, customer, account in flagged:
            summary = (
                f"signup {account or eid} is one of {len(entries)} signups sharing {key} within "
                f"{p.window_seconds} s (threshold {p.farm_threshold})"
            )
            out.append(
                Finding.create(
                    detector=self.name,
                    kind="circumvention",
                    clauses=self.policy.clauses_for_kind("circumvention"),
                    group_key=f"farm:{key}",
                    window_start=start,
                    window_end=parse_time(when),
                    severity=self.policy.severity_for_kind("circumvention"),
                    confidence=0.7,
                    summary=summary,
                    customer_id=customer,
                    event_ids=(eid,),
                    evidence=(
                        {"rule": "farm", "key": key, "signups": len(entries), "accounts": accounts[-20:], "event": eid},
                    ),
                )
            )
        return out
