"""A real SMTP sink (aiosmtpd on a loopback port) that keeps what it receives, for acks and replies."""

from __future__ import annotations

import email
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from abusedesk.runtime import Runtime
from tests.support.components import free_port


@dataclass
class Sink:
    port: int
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"

    def wait(self, count: int, timeout: float = 5.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return [m for _, _, m in self.messages]


@pytest.fixture
def mail_sink() -> Iterator[Sink]:
    sink = Sink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


def point_smtp_at(rt: Runtime, sink: Sink) -> None:
    rt.settings.smtp.host = "127.0.0.1"
    rt.settings.smtp.port = sink.port
    rt.settings.smtp.timeout = 5.0
