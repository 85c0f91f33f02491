"""Findings for case tests: documentation addresses, one customer per letter, times around the test clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from abusedesk.domain.records import Finding
from abusedesk.policy.model import Policy
from tests.conftest import T0


def finding(
    policy: Policy,
    minute: int = 0,
    *,
    kind: str = "scan",
    key: str = "ip:192.0.2.10",
    customer: str | None = "cust-a",
    service: str | None = "svc-a1",
    severity: str | None = None,
    detector: str = "portscan",
    length: int = 1,
    **extra: Any,
) -> Finding:
    """A finding whose window is [T0+minute, T0+minute+length) minutes."""
    return Finding.create(
        detector=detector,
        kind=kind,
        clauses=policy.clauses_for_kind(kind),
        group_key=key,
        window_start=T0 + timedelta(minutes=minute),
        window_end=T0 + timedelta(minutes=minute + length),
        severity=severity or policy.severity_for_kind(kind),
        confidence=0.9,
        summary=f"{kind} from {key} at minute {minute}",
        subject_ip=key.removeprefix("ip:") if key.startswith("ip:") else None,
        customer_id=customer,
        project_id=f"proj-{customer}" if customer else None,
        service_id=service,
        **extra,
    )
