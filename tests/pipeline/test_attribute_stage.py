"""The attribute stage: by address, by an address literal in a URL, by host name; a bad URL never stops it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from abusedesk.bus.base import StageBatch
from abusedesk.domain.records import Event
from abusedesk.inventory.service import InventoryService
from abusedesk.pipeline import EVENTS_ATTRIBUTED, AttributeStage
from abusedesk.runtime import Runtime
from tests.conftest import T0

INVENTORY = {
    "customers": [{"id": "c1", "name": "One", "contact_email": "one@example.net"}],
    "projects": [{"id": "p1", "customer_id": "c1", "name": "p"}],
    "services": [{"id": "s1", "project_id": "p1", "kind": "web", "name": "w", "hostnames": ["shop.example.net"]}],
    "allocations": [{"prefix": "2001:db8:5::/48", "service_id": "s1", "valid_from": "2026-01-01T00:00:00Z"}],
}


def _attribute(runtime: Runtime, tmp_path: Path, events: list[Event]) -> list[dict[str, Any]]:
    path = tmp_path / "inv.json"
    path.write_text(json.dumps(INVENTORY))
    InventoryService(runtime).import_file(path)
    with runtime.sessions() as s, s.begin():
        batch = StageBatch(s, [{"events": [e.to_dict() for e in events]}], bus=runtime.bus, stage="attribute")
        AttributeStage(runtime).handle(batch)
    assert {o.subject for o in batch.outputs} == {EVENTS_ATTRIBUTED}
    return [e for o in batch.outputs for e in o.payload["events"]]


def test_url_forms(runtime: Runtime, tmp_path: Path) -> None:
    t = T0 - timedelta(hours=1)
    events = [
        Event.create(kind="copyright", time=t, feed="x", source_url="http://[2001:db8:5::7]/f.mkv"),
        Event.create(kind="copyright", time=t, feed="x", source_url="http://[2001:db8:5::7/broken"),
        Event.create(kind="phishing", time=t, feed="x", source_url="https://www.shop.example.net/login"),
        Event.create(kind="phishing", time=t, feed="x", source_url="https://elsewhere.example.com/login"),
    ]
    out = {d["source.url"]: d for d in _attribute(runtime, tmp_path, events)}
    assert out["http://[2001:db8:5::7]/f.mkv"]["subject.service_id"] == "s1"
    assert "subject.service_id" not in out["http://[2001:db8:5::7/broken"]
    assert out["https://www.shop.example.net/login"]["subject.customer_id"] == "c1"
    assert "subject.service_id" not in out["https://elsewhere.example.com/login"]
