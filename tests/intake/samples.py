"""Test inputs written for these tests (documentation addresses only)."""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any


def xarf(
    report_id: str = "5d6f3c2a-9a4e-4f5e-8a1b-0c2d3e4f5a6b", ip: str = "192.0.2.10", **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "xarf_version": "4.0.0",
        "report_id": report_id,
        "timestamp": "2026-03-01T09:00:00Z",
        "reporter": {"org": "Example CERT", "contact": "cert@example.net", "domain": "example.net"},
        "sender": {"org": "Example CERT", "contact": "cert@example.net", "domain": "example.net"},
        "source_identifier": ip,
        "category": "connection",
        "type": "login_attack",
        "protocol": "tcp",
        "destination_ip": "203.0.113.5",
        "destination_port": 22,
        "evidence_source": "honeypot",
        "description": "SSH password guessing against our honeypot",
    }
    doc.update(extra)
    return doc


def xarf_bytes(**kw: Any) -> bytes:
    return json.dumps(xarf(**kw), indent=1).encode()


def complaint(
    *,
    sender: str = "reporter@example.net",
    message_id: str = "<c1@example.net>",
    subject: str = "Spam from 192.0.2.20",
    body: str = "Your host 192.0.2.20 sent us spam on 2026-03-01 08:00 UTC.\n",
    headers: dict[str, str] | None = None,
    xarf_attachment: bytes | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Reporter <{sender}>"
    msg["To"] = "abuse@provider.example"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Sun, 01 Mar 2026 09:00:00 +0000"
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    if xarf_attachment is not None:
        msg.add_attachment(xarf_attachment, maintype="application", subtype="json", filename="report.json")
    return msg.as_bytes()
