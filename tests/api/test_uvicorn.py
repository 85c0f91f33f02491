"""Real HTTP: uvicorn in a thread on a loopback port, httpx as the client (413 by length and by streaming)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from abusedesk.api.app import create_app
from abusedesk.cli.intake import wire_all
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import RawInputRow
from tests.intake.samples import xarf_bytes
from tests.support.components import free_port, wait_for_port

pytestmark = pytest.mark.integration


@pytest.fixture
def base_url(runtime: Runtime) -> Iterator[str]:
    runtime.settings.intake.send_acks = False
    wire_all(runtime)
    port = free_port()
    config = uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port("127.0.0.1", port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_post_and_poll_over_real_http(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as c:
        r = c.post("/api/v1/reports", content=xarf_bytes(), headers={"Content-Type": "application/json"})
        assert r.status_code == 202
        status_url = r.json()["status_url"]
        c.headers["X-Report-Token"] = r.json()["status_token"]
        assert status_url.startswith(base_url)
        deadline = time.monotonic() + 10
        while True:  # the pipeline runs after the answer, as a background task
            status = c.get(status_url).json()
            if status["status"] != "stored" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status["status"] == "parsed"
        again = c.post("/api/v1/reports", content=xarf_bytes(), headers={"Content-Type": "application/json"})
        assert again.status_code == 200
        assert again.json()["reference"] == r.json()["reference"]


def test_413_by_content_length(base_url: str, runtime: Runtime) -> None:
    runtime.settings.intake.max_input_bytes = 1000
    with httpx.Client(base_url=base_url, timeout=10) as c:
        r = c.post("/api/v1/reports", content=b"{" + b" " * 5000 + b"}", headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "request body of 5002 bytes is over the limit of 1000 bytes" in r.json()["detail"]


def test_413_while_streaming_without_length(base_url: str, runtime: Runtime) -> None:
    runtime.settings.intake.max_input_bytes = 1000
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(50):
            sent += 100
            yield b" " * 100

    with httpx.Client(base_url=base_url, timeout=10) as c:
        r = c.post("/api/v1/reports", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    body = r.json()
    assert body["status"] == 413
    assert body["detail"] == (
        "request body is over the limit of 1000 bytes (setting intake.max_input_bytes); it was not stored"
    )


def test_a_client_over_its_rate_gets_429_and_nothing_is_stored(base_url: str, runtime: Runtime, clock) -> None:  # type: ignore[no-untyped-def]
    runtime.settings.intake.api_submissions_burst = 3
    runtime.settings.intake.api_submissions_per_minute = 6  # one more every 10 s

    def post(n: int) -> httpx.Response:
        body = xarf_bytes(report_id=f"5d6f3c2a-9a4e-4f5e-8a1b-0c2d3e4f5{n:03d}")
        return c.post("/api/v1/reports", content=body, headers={"Content-Type": "application/json"})

    with httpx.Client(base_url=base_url, timeout=10) as c:
        assert [post(n).status_code for n in range(3)] == [202, 202, 202]
        refused = post(3)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "10"
        assert refused.json()["detail"].startswith("too many reports from 127.0.0.1: at most 3 at once")
        with runtime.sessions() as s:
            assert s.scalar(select(func.count()).select_from(RawInputRow)) == 3  # the refused body was not stored
        clock.advance(timedelta(seconds=10))
        assert post(4).status_code == 202
        assert post(5).status_code == 429
