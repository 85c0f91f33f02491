"""NatsBus at the edges of the server: payload limit (batches cut in parts) and a server restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from abusedesk.bus.nats import NatsBus
from abusedesk.bus.worker import run_worker
from abusedesk.domain.errors import ConfigError
from abusedesk.domain.ids import canonical_json
from abusedesk.intake.service import IntakeService
from abusedesk.runtime import Runtime
from abusedesk.stages import routes
from abusedesk.store.tables.intake import RawInputRow
from tests.bus.natsserver import NatsServer, nats_server

SMALL = "max_payload: 65536\n"


@pytest.fixture(scope="module")
def small_server() -> Iterator[NatsServer]:
    with nats_server(SMALL) as server:
        yield server


@pytest.fixture
def small_bus(small_server: NatsServer, runtime: Runtime) -> Iterator[NatsBus]:
    n = time.monotonic_ns()
    bus = NatsBus(small_server.url, stream=f"SMALL{n}", prefix=f"small{n}", timeout=5.0)
    bus.bind(runtime.sessions, runtime.clock, routes())
    yield bus
    bus.close()


def events(n: int) -> list[dict[str, Any]]:
    return [{"id": f"ev_{i:05d}", "source.ip": "192.0.2.7", "note": "x" * 150} for i in range(n)]


def fetch_all(bus: NatsBus, subject: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while got := bus.fetch(subject, batch=50, wait=0.5):
        for d in got:
            out.append(d.message)
            d.ack()
    return out


def test_a_batch_over_the_payload_limit_is_published_in_parts(small_bus: NatsBus) -> None:
    assert small_bus.max_payload == 65536
    batch = events(1500)  # about 300 KB of JSON
    small_bus.publish("events.parsed", {"raw_id": "big", "events": batch})
    parts = fetch_all(small_bus, "events.parsed")
    assert len(parts) >= 5
    assert all(p["raw_id"] == "big" for p in parts)
    assert sorted(e["id"] for p in parts for e in p["events"]) == [e["id"] for e in batch]


def test_a_message_that_cannot_be_cut_names_the_server_setting(small_bus: NatsBus) -> None:
    with pytest.raises(ConfigError, match=r"over the NATS server's max_payload of 65536 bytes .* raise max_payload"):
        small_bus.publish("raw.stored", {"raw_id": "x" * 70_000})


def test_a_dead_letter_too_large_to_carry_its_message_is_replayed_from_the_stream(small_bus: NatsBus) -> None:
    n = 1
    while len(canonical_json({"raw_id": "r", "events": events(n + 1)})) < 65536 - 4096 - 200:
        n += 1
    message = {"raw_id": "r", "events": events(n)}  # just fits alone; not with a 4 KB traceback
    small_bus.publish("events.parsed", message)
    [delivery] = small_bus.fetch("events.parsed", wait=2.0)
    delivery.dead_letter("RuntimeError('boom')", "Traceback\n" + "  frame\n" * 4000)
    [letter] = small_bus.dead_letters()
    assert letter.message == {} and letter.extra["message_in_stream"] is True
    assert len(letter.traceback) < 4100
    small_bus.replay_dead_letters([letter.id])
    assert fetch_all(small_bus, "events.parsed") == [message]


def test_a_worker_rides_out_a_nats_restart(runtime: Runtime, tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")
    (tmp_path / "nats").mkdir()
    server.start()
    bus = NatsBus(server.url, timeout=3.0)
    rt = Runtime(runtime.settings, clock=runtime.clock, bus=bus, engine=runtime.engine)
    stop = threading.Event()
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(run_worker(rt, "parse", stop, wait=0.2)), daemon=True)
    try:
        worker.start()
        intake = IntakeService(rt)
        intake.accept(b"first input, before the restart\n", channel="test")
        _wait_parsed(runtime, 1)
        # the status is written before the ack: stop the server only once the ack is in, or the ack is lost with
        # it and the message comes back only after ack_wait (a fresh-clone CI run once saw handled=1 so)
        deadline = time.monotonic() + 30
        while bus.backlog("raw.stored") and time.monotonic() < deadline:
            time.sleep(0.05)
        server.stop()
        time.sleep(1.0)
        server.start()  # same port, same JetStream store
        deadline = time.monotonic() + 30
        while True:  # the publisher's connection is back once a publish goes through
            try:
                intake.rt.bus.publish("raw.stored", {"raw_id": "probe-does-not-exist"})
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        intake.accept(b"second input, after the restart\n", channel="test")
        _wait_parsed(runtime, 2)
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(15)
        bus.close()
        server.stop()
    assert not worker.is_alive()
    [stats] = result
    assert stats.handled >= 2


def _wait_parsed(rt: Runtime, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with rt.sessions() as s:
            done = s.query(RawInputRow).filter(RawInputRow.status != "stored").count()
        if done >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"{n} inputs not parsed within {timeout}s")
