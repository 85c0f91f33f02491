"""Proxy headers through a real uvicorn on loopback: believed only from intake.api_trusted_proxies (issue 10).

uvicorn's own default trusts 127.0.0.1, so before this a client on loopback rotating ``X-Forwarded-For`` got 40 of
40 submissions through a limit of 25 with no proxy configured.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from abusedesk.api.app import create_app
from abusedesk.api.ratelimit import uvicorn_config
from abusedesk.cli.intake import wire_all
from abusedesk.runtime import Runtime
from tests.intake.samples import xarf_bytes
from tests.support.components import free_port, wait_for_port

pytestmark = pytest.mark.integration


@contextmanager
def _server(runtime: Runtime, proxies: list[str]) -> Iterator[str]:
    runtime.settings.intake.send_acks = False
    runtime.settings.intake.api_trusted_proxies = proxies
    runtime.settings.intake.api_submissions_burst = 5
    runtime.settings.intake.api_submissions_per_minute = 1
    wire_all(runtime)
    port = free_port()
    server = uvicorn.Server(
        uvicorn_config(runtime, create_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port("127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _rotating(base_url: str, n: int) -> list[int]:
    codes = []
    with httpx.Client(base_url=base_url, timeout=10) as c:
        for i in range(n):
            body = xarf_bytes(report_id=f"5d6f3c2a-9a4e-4f5e-8a1b-0c2d3e4f6{i:03d}")
            headers = {"Content-Type": "application/json", "X-Forwarded-For": f"203.0.113.{i + 1}"}
            codes.append(c.post("/api/v1/reports", content=body, headers=headers).status_code)
    return codes


def test_rotating_forwarded_for_is_ignored_without_trusted_proxies(runtime: Runtime) -> None:
    with _server(runtime, []) as url:
        codes = _rotating(url, 12)
    assert codes.count(202) == 5  # the burst, counted against 127.0.0.1 whatever the header says
    assert codes[5:] == [429] * 7


def test_forwarded_for_is_believed_from_a_trusted_proxy(runtime: Runtime) -> None:
    with _server(runtime, ["127.0.0.1"]) as url:
        codes = _rotating(url, 12)
        with httpx.Client(base_url=url, timeout=10) as c:  # one forwarded client past its burst is limited
            refused = None
            for i in range(7):
                body = xarf_bytes(report_id=f"5d6f3c2a-9a4e-4f5e-8a1b-0c2d3e4f7{i:03d}")
                r = c.post(
                    "/api/v1/reports",
                    content=body,
                    headers={"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.7"},
                )
                refused = r if r.status_code == 429 else refused
    assert codes == [202] * 12  # each forwarded client has its own bucket
    assert refused is not None
    assert "198.51.100.7" in refused.json()["detail"]


def test_uvicorn_default_would_trust_loopback() -> None:
    """The reason the config is set explicitly: uvicorn's own default believes loopback's header."""
    assert "127.0.0.1" in uvicorn.Config(app=None).forwarded_allow_ips  # type: ignore[arg-type]
