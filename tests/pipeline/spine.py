"""What the pipeline proof tests share: a small inventory, an ARF report, and a snapshot of every table's count."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from abusedesk.domain.ipnet import prefix_range
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import ActionRow, CaseRow, FindingRow, NoticeRow
from abusedesk.store.tables.evidence import AuditRow
from abusedesk.store.tables.intake import EventRow, RawInputRow
from abusedesk.store.tables.inventory import AllocationRow, CustomerRow, ProjectRow, ServiceRow

#: the address our customer's mail server had on 2026-03-01 (documentation range)
SPAM_IP = "198.51.100.25"


def add_inventory(rt: Runtime) -> None:
    """One customer, one project, one VM service holding 198.51.100.0/27 since 2026-01-01."""
    with rt.sessions.begin() as s:
        s.add(CustomerRow(id="cus_acme", name="Acme Analytics", contact_email="ops@example.com"))
        s.flush()
        s.add(ProjectRow(id="prj_acme_mail", customer_id="cus_acme", name="mail"))
        s.flush()
        s.add(ServiceRow(id="svc_acme_mx", project_id="prj_acme_mail", kind="vm", name="mx-1"))
    add_allocation(rt, "198.51.100.0/27", datetime(2026, 1, 1, tzinfo=UTC))


def add_allocation(rt: Runtime, prefix: str, since: datetime, service_id: str = "svc_acme_mx") -> None:
    """``prefix`` allocated to ``service_id`` from ``since`` on, open-ended."""
    first, last, plen = prefix_range(prefix)
    with rt.sessions.begin() as s:
        s.add(AllocationRow(service_id=service_id, prefix=prefix, first_hex=f"{first:032x}",
                            last_hex=f"{last:032x}", prefixlen=plen, valid_from=since, valid_to=None))  # fmt: skip


def arf_report(n: int = 1, ip: str = SPAM_IP, *, arrival: str | None = None, tag: str = "proof") -> bytes:
    """An RFC 5965 feedback report (Feedback-Type abuse) about mail from ``ip``; ``n`` makes it a distinct one
    (its own message, arrived ``n`` minutes after 08:29Z on 2026-03-01, unless ``arrival`` says when)."""
    arrival = arrival or f"Sun, 01 Mar 2026 08:{29 + n:02d}:00 +0000"
    return f"""From: fbl@mailbox.example.net
To: abuse@provider.example
Subject: Abuse report {n}
Date: Sun, 01 Mar 2026 09:00:00 +0000
Message-ID: <fbl-{tag}-{n}@mailbox.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="B"

--B
Content-Type: text/plain; charset="us-ascii"

An e-mail abuse report about a message received from {ip}.

--B
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Mail-From: <promo@example.com>
Original-Rcpt-To: <user{n}@mailbox.example.net>
Arrival-Date: {arrival}
Reporting-MTA: dns; mx1.mailbox.example.net
Source-IP: {ip}
Incidents: 1

--B
Content-Type: text/rfc822-headers

Received: from mx-1.example.com (mx-1.example.com [{ip}])
\tby mx1.mailbox.example.net with ESMTP id proof{n}; {arrival}
From: <promo@example.com>
To: user{n}@mailbox.example.net
Subject: Offer {n}
Message-ID: <spam-{n}@example.com>

--B--
""".replace("\n", "\r\n").encode()


TABLES: dict[str, Any] = {
    "raw_inputs": RawInputRow,
    "events": EventRow,
    "findings": FindingRow,
    "cases": CaseRow,
    "actions": ActionRow,
    "notices": NoticeRow,
    "audit_log": AuditRow,
}


def counts(rt: Runtime) -> dict[str, int]:
    with rt.sessions() as s:
        return {name: int(s.scalar(select(func.count()).select_from(row)) or 0) for name, row in TABLES.items()}


def audit_since(rt: Runtime, seq: int) -> list[AuditRow]:
    with rt.sessions() as s:
        return list(s.scalars(select(AuditRow).where(AuditRow.seq > seq).order_by(AuditRow.seq)))


def last_audit_seq(rt: Runtime) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.max(AuditRow.seq))) or 0)


def the_finding(rt: Runtime) -> FindingRow:
    with rt.sessions() as s:
        rows = list(s.scalars(select(FindingRow)))
    assert len(rows) == 1, f"expected one finding, found {len(rows)}"
    return rows[0]


def assert_replay_audit_only(rt: Runtime, seq: int) -> None:
    """Everything the audit log gained after ``seq`` is the replay's own re-parse entries, with no new event."""
    for entry in audit_since(rt, seq):
        assert entry.action == "raw.parsed", f"replay wrote audit entry {entry.action} on {entry.subject_id}"
        assert [i["new_events"] for i in entry.payload["inputs"]] == [0] * len(entry.payload["inputs"])


def assert_no_duplicate_audit(rt: Runtime) -> None:
    """No entry was audited twice (same action, subject and payload), except re-parses (each run is its own)."""
    from collections import Counter

    from abusedesk.domain.ids import canonical_json

    with rt.sessions() as s:
        pairs = Counter(
            (a, t, i, canonical_json(p))
            for a, t, i, p in s.execute(
                select(AuditRow.action, AuditRow.subject_type, AuditRow.subject_id, AuditRow.payload)
            )
            if a != "raw.parsed"
        )
    repeated = {k: n for k, n in pairs.items() if n > 1}
    assert not repeated, f"audited more than once: {repeated}"


def quiet_settings(settings: Any) -> Any:
    """The test settings with the Null notice and control-plane backends (the pipeline, not the adapters)."""
    return settings.model_copy(update={"notify_backend": "null", "control_backend": "null"})
