"""A submitter polling a report about one of our addresses sees the case it led to."""

from __future__ import annotations

import json

from abusedesk.api.app import create_app
from abusedesk.cli.intake import wire_all
from abusedesk.clock import ManualClock
from abusedesk.config import Settings
from abusedesk.runtime import Runtime
from tests.api.testclient import TestClient
from tests.intake.samples import xarf
from tests.pipeline.spine import SPAM_IP, add_inventory, quiet_settings


def test_status_names_the_case(runtime: Runtime, settings: Settings, clock: ManualClock) -> None:
    add_inventory(runtime)
    rt = Runtime(quiet_settings(settings), clock=clock, engine=runtime.engine)
    wire_all(rt)
    with TestClient(create_app(rt)) as c:
        r = c.post(
            "/api/v1/reports", content=json.dumps(xarf(ip=SPAM_IP)), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 202
        status = c.get(r.json()["status_url"], headers={"X-Report-Token": r.json()["status_token"]}).json()
    assert status["status"] == "parsed"
    assert status["events"] == 1
    assert len(status["cases"]) == 1
    assert status["cases"][0].startswith("AD-")


def test_status_names_only_the_cases_its_own_events_led_to(
    runtime: Runtime, settings: Settings, clock: ManualClock
) -> None:
    """Two reports about two addresses of one service open two cases; each report's status names its own."""
    add_inventory(runtime)
    rt = Runtime(quiet_settings(settings), clock=clock, engine=runtime.engine)
    wire_all(rt)
    statuses = []
    with TestClient(create_app(rt)) as c:
        for n, ip in enumerate((SPAM_IP, "198.51.100.26")):
            body = json.dumps(xarf(report_id=f"5d6f3c2a-9a4e-4f5e-8a1b-0c2d3e4f5a6{n}", ip=ip))
            r = c.post("/api/v1/reports", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 202
            statuses.append(c.get(r.json()["status_url"], headers={"X-Report-Token": r.json()["status_token"]}).json())
    first, second = (s["cases"] for s in statuses)
    assert len(first) == 1 and len(second) == 1
    assert first != second
