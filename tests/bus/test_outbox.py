"""The outbox as the in-process queue: a batch is bounded by the items its messages carry, not their number."""

from __future__ import annotations

from abusedesk.bus.base import InProcessBus, weight_of
from abusedesk.runtime import Runtime


def events(n: int) -> list[dict[str, str]]:
    return [{"id": f"ev_{i}"} for i in range(n)]


def test_a_batch_holds_at_most_max_items_and_always_one_message(runtime: Runtime) -> None:
    bus = runtime.bus
    assert isinstance(bus, InProcessBus)
    for n in (3000, 3000, 8000, 10):
        bus.publish("events.parsed", {"events": events(n)})
    first = bus.pending("attribute", 100, 5000)
    assert [len(p["events"]) for _, p in first] == [3000]  # a second 3,000 would pass 5,000
    assert [len(p["events"]) for _, p in bus.pending("attribute", 100, 6000)] == [3000, 3000]
    assert len(bus.pending("attribute", 100)) == 4  # no item bound: the message count alone
    with runtime.sessions.begin() as s:
        bus.consume(s, "attribute", [seq for seq, _ in bus.pending("attribute", 100, 6000)])
    # a message larger than the bound comes alone, never not at all
    assert [len(p["events"]) for _, p in bus.pending("attribute", 100, 5000)] == [8000]


def test_weight_counts_events_and_findings() -> None:
    assert weight_of({"raw_id": "x"}) == 1
    assert weight_of({"events": events(7)}) == 7
    assert weight_of({"findings": [{}, {}], "events": []}) == 2
