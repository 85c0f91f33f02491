"""Real peers on loopback for action tests: an SMTP server (aiosmtpd) and a control-plane HTTP server.

Also an inventory of documentation-only customers, and a helper that lets the real case engine open cases.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from abusedesk.runtime import Runtime
from abusedesk.store.tables.inventory import CustomerRow, ProjectRow, ServiceRow
from tests.support.components import free_port

SECRET = "test-webhook-secret"


class _Sink:
    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.messages: list[tuple[Envelope, EmailMessage]] = []
        self.lock = threading.Lock()
        self.refuse = refuse

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        with self.lock:
            self.messages.append((envelope, msg))  # type: ignore[arg-type]
        return "250 OK queued"


@dataclass
class SmtpServer:
    host: str
    port: int
    sink: _Sink

    @property
    def messages(self) -> list[EmailMessage]:
        with self.sink.lock:
            return [m for _, m in self.sink.messages]

    @property
    def envelopes(self) -> list[Envelope]:
        with self.sink.lock:
            return [e for e, _ in self.sink.messages]


@contextmanager
def smtp_server(
    *, refuse: tuple[str, ...] = (), tls: tuple[Path, Path] | None = None, port: int | None = None
) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1; ``tls=(cert, key)`` offers and requires STARTTLS; ``refuse`` 550s those recipients."""
    sink = _Sink(refuse)
    port = port or free_port()
    kwargs: dict[str, Any] = {}
    if tls is not None:
        import ssl

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        kwargs = {"tls_context": ctx, "require_starttls": True}
    controller = Controller(sink, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, sink)
    finally:
        controller.stop()


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ControlPlane:
    """Answers each POST with the next status of ``script`` (the last one repeats; 0 = 200 after 1 s)."""

    url: str
    script: list[int]
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self, rec: Recorded) -> int:
        with self.lock:
            self.requests.append(rec)
            i = len(self.requests) - 1
            return self.script[min(i, len(self.script) - 1)]


@contextmanager
def control_plane(script: list[int]) -> Iterator[ControlPlane]:
    port = free_port()
    cp = ControlPlane(f"http://127.0.0.1:{port}/actions", list(script))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            status = cp.next_status(rec)
            if status == 0:  # 0 in the script: answer too late (the client's timeout is shorter)
                time.sleep(1.0)
                status = 200
            out = json.dumps({"id": f"cp-{len(cp.requests)}", "status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield cp
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def seed_inventory(rt: Runtime, customers: dict[str, str | None] | None = None) -> None:
    """Customers ``cust-a`` ... with contact addresses at example.net, one project and service each."""
    customers = customers if customers is not None else {"cust-a": "noc@a.example.net", "cust-b": "ops@b.example.net"}
    with rt.sessions() as s, s.begin():
        for cid, contact in customers.items():
            s.add(CustomerRow(id=cid, name=f"Customer {cid}", contact_email=contact, status="active", meta={}))
            s.add(ProjectRow(id=f"proj-{cid}", customer_id=cid, name=f"project of {cid}"))
            letter = cid.rsplit("-", 1)[-1]
            s.add(
                ServiceRow(
                    id=f"svc-{letter}1",
                    project_id=f"proj-{cid}",
                    kind="vm",
                    name=f"vm {letter}1",
                    status="active",
                    data_access="enabled",
                    hostnames=[],
                )
            )
