"""Real HTTP: uvicorn in a thread on a loopback port, httpx as the client (413 by length and by streaming)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from abusedesk.api.app import create_app
from abusedesk.cli.intake import wire_all
from abusedesk.runtime import Runtime
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
    assert "request body of 5002 bytes is over the limit of 1000 bytes" in r.json()["error"]


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
    assert body["error"] == (
        "request body is over the limit of 1000 bytes (setting intake.max_input_bytes); it was not stored"
    )
