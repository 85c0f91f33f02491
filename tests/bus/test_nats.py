"""NatsBus against a real nats-server -js on loopback: ack, de-dup, retry with backoff, dead letters, partitions."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from abusedesk.bus.factory import make_bus
from abusedesk.bus.nats import NatsBus, Partition, durable_name, message_id, slot_of
from abusedesk.config import Settings, load_settings
from abusedesk.domain.errors import ConfigError, NotFound, SourceUnavailable
from abusedesk.runtime import Runtime
from abusedesk.stages import routes
from tests.support.components import free_port


def drain(bus: NatsBus, subject: str, handle: Any, *, rounds: int = 20, partition: Partition | None = None) -> int:
    """Fetch and handle until nothing comes for a round: success acks, failure retries or dead-letters."""
    done = 0
    quiet = 0
    while quiet < 2 and rounds > 0:
        rounds -= 1
        got = bus.fetch(subject, partition=partition, batch=10, wait=0.5)
        quiet = 0 if got else quiet + 1
        for d in got:
            try:
                handle(d.message)
            except Exception as exc:
                if d.is_last_attempt:
                    d.dead_letter(repr(exc), "traceback here")
                else:
                    d.retry()
                continue
            d.ack()
            done += 1
    return done


def test_publish_then_fetch_and_ack(nats_bus: NatsBus) -> None:
    seen: list[dict[str, Any]] = []
    nats_bus.publish("raw.stored", {"raw_id": "a"})
    nats_bus.publish("raw.stored", {"raw_id": "b"})
    assert drain(nats_bus, "raw.stored", seen.append) == 2
    assert sorted(m["raw_id"] for m in seen) == ["a", "b"]
    # acked: nothing comes again, even after the ack wait of another fetch
    assert nats_bus.fetch("raw.stored", wait=0.3) == []


def test_an_outbox_row_relayed_twice_is_delivered_once(nats_bus: NatsBus, monkeypatch: pytest.MonkeyPatch) -> None:
    # a crash between the publish and the delete of the outbox row: the next relay publishes it again
    from sqlalchemy import delete

    real_delete = delete
    skipped: list[int] = []

    def keep_rows_once(*args: Any) -> Any:
        if not skipped:
            skipped.append(1)
            return real_delete(*args).where(False)  # the rows stay, as after a crash before the delete
        return real_delete(*args)

    monkeypatch.setattr("abusedesk.bus.nats.delete", keep_rows_once)
    with nats_bus.sessions.begin() as s:
        nats_bus.put(s, "events.parsed", {"events": [{"id": "ev_1"}]})
    assert nats_bus.relay_pending() == 1  # published, but the row survived
    assert nats_bus.relay_pending() == 1  # published again with the same Nats-Msg-Id
    assert nats_bus.relay_pending() == 0
    seen: list[dict[str, Any]] = []
    assert drain(nats_bus, "events.parsed", seen.append) == 1


def test_message_id_is_deterministic_and_content_bound() -> None:
    a = message_id("raw.stored", {"raw_id": "x", "n": 1})
    assert a == message_id("raw.stored", {"n": 1, "raw_id": "x"})
    assert a != message_id("raw.stored", {"raw_id": "y", "n": 1})
    assert a != message_id("events.parsed", {"raw_id": "x", "n": 1})


def test_failure_is_redelivered_after_backoff_then_acked(nats_bus: NatsBus) -> None:
    attempts: list[float] = []

    def flaky(message: dict[str, Any]) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 2:
            raise RuntimeError("database busy")

    nats_bus.publish("raw.stored", {"raw_id": "flaky"})
    assert drain(nats_bus, "raw.stored", flaky) == 1
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= 0.04  # the first backoff step (0.05 s) was honoured
    assert nats_bus.dead_letters() == []


def test_always_failing_message_is_dead_lettered_with_payload_error_and_traceback(nats_bus: NatsBus) -> None:
    calls: list[int] = []

    def broken(message: dict[str, Any]) -> None:
        calls.append(1)
        raise ValueError("bad event")

    message = {"raw_id": "poison"}
    nats_bus.publish("raw.stored", message)
    drain(nats_bus, "raw.stored", broken)
    assert len(calls) == nats_bus.max_attempts
    [letter] = nats_bus.dead_letters()
    assert letter.subject == "raw.stored"
    assert letter.message == message
    assert "bad event" in letter.error
    assert letter.traceback == "traceback here"
    assert letter.attempts == nats_bus.max_attempts
    assert letter.location.startswith("nats:")
    # nothing left on the stage's subject
    assert nats_bus.fetch("raw.stored", wait=0.3) == []


def test_replay_publishes_again_and_removes_the_dead_letter(nats_bus: NatsBus) -> None:
    nats_bus.publish("raw.stored", {"raw_id": "later-fixed"})

    def broken(message: dict[str, Any]) -> None:
        raise ValueError("parser bug")

    drain(nats_bus, "raw.stored", broken)
    [letter] = nats_bus.dead_letters()
    with pytest.raises(NotFound, match="no dead letter with id nope"):
        nats_bus.replay_dead_letters(["nope"])
    replayed = nats_bus.replay_dead_letters([letter.id])
    assert [r.id for r in replayed] == [letter.id]
    assert nats_bus.dead_letters() == []
    seen: list[dict[str, Any]] = []
    # the replay got through JetStream's duplicate window although the message is the same
    assert drain(nats_bus, "raw.stored", seen.append) == 1
    assert seen == [{"raw_id": "later-fixed"}]


def test_dead_letter_of_a_replayed_message_that_fails_again_is_kept(nats_bus: NatsBus) -> None:
    def broken(message: dict[str, Any]) -> None:
        raise ValueError("still broken")

    nats_bus.publish("raw.stored", {"raw_id": "twice"})
    drain(nats_bus, "raw.stored", broken)
    nats_bus.replay_dead_letters(None)
    drain(nats_bus, "raw.stored", broken)
    [letter] = nats_bus.dead_letters()
    assert letter.message == {"raw_id": "twice"}


def test_partition_key_keeps_a_subject_on_one_worker(nats_bus: NatsBus) -> None:
    for i in range(12):
        nats_bus.publish("events.attributed", {"partition_key": f"svc-{i % 3}", "n": i})
    by_worker: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    for index in (0, 1):
        drain(nats_bus, "events.attributed", by_worker[index].append, partition=Partition(index, 2))
    assert len(by_worker[0]) + len(by_worker[1]) == 12
    for key in ("svc-0", "svc-1", "svc-2"):
        owners = {w for w, msgs in by_worker.items() if any(m["partition_key"] == key for m in msgs)}
        assert len(owners) == 1, f"{key} went to workers {owners}"
        slot = slot_of({"partition_key": key}, "", nats_bus.slots)
        assert owners == {slot % 2}


def test_competing_unpartitioned_workers_share_one_durable(nats_bus: NatsBus, nats_url: str) -> None:
    other = NatsBus(nats_url, stream=nats_bus.stream, prefix=nats_bus.prefix, timeout=5.0)
    try:
        for i in range(20):
            nats_bus.publish("raw.stored", {"raw_id": f"r{i}"})
        seen: list[str] = []
        lock = threading.Lock()

        def take(bus: NatsBus) -> None:
            def handle(m: dict[str, Any]) -> None:
                with lock:
                    seen.append(m["raw_id"])

            drain(bus, "raw.stored", handle)

        threads = [threading.Thread(target=take, args=(b,)) for b in (nats_bus, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(seen) == sorted(f"r{i}" for i in range(20))  # each exactly once
    finally:
        other.close()


def test_partition_parse_and_slots() -> None:
    assert Partition.parse("1/4").slots(16) == [1, 5, 9, 13]
    for bad in ("x", "4/4", "1/0", "-1/2", "1"):
        with pytest.raises(ConfigError, match="partition"):
            Partition.parse(bad)
    with pytest.raises(ConfigError, match="more workers than the 16 slots"):
        Partition(0, 17).slots(16)
    assert durable_name("events.attributed", 3) == "events_attributed_s3"


def test_dlq_prefix_is_reserved(nats_bus: NatsBus) -> None:
    with pytest.raises(ConfigError, match="reserved"):
        nats_bus.publish("dlq.raw.stored", {})


def test_unreachable_server_is_source_unavailable(runtime: Runtime) -> None:
    bus = NatsBus(f"nats://127.0.0.1:{free_port()}", timeout=1.0)
    bus.bind(runtime.sessions, runtime.clock, routes())
    try:
        with pytest.raises(SourceUnavailable, match=r"cannot connect to NATS at nats://127\.0\.0\.1"):
            bus.publish("raw.stored", {"raw_id": "x"})
    finally:
        bus.close()


def test_make_bus_follows_the_bus_setting(tmp_path: Any, nats_url: str) -> None:
    from abusedesk.bus.base import InProcessBus

    assert isinstance(make_bus(Settings(data_dir=tmp_path)), InProcessBus)
    bus = make_bus(Settings(data_dir=tmp_path, bus="nats", nats_url=nats_url))
    assert isinstance(bus, NatsBus)
    assert bus.url == nats_url
    bus.close()


@pytest.mark.parametrize("round_", range(3))
def test_workers_starting_at_once_on_a_new_stream_all_connect(nats_url: str, round_: int, runtime: Runtime) -> None:
    """Several processes creating the stream at the same moment: the losers of the race use the winner's stream
    (the server may refuse their create as "subjects overlap" rather than "exists")."""
    name = f"RACE{round_}x{threading.get_ident() % 100000}"
    buses = [NatsBus(nats_url, stream=name, prefix=name.lower(), timeout=5.0) for _ in range(6)]
    start = threading.Barrier(len(buses), timeout=30)
    errors: list[BaseException] = []

    def connect(bus: NatsBus) -> None:
        try:
            start.wait()
            bus.connect()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=connect, args=(b,)) for b in buses]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        buses[0].bind(runtime.sessions, runtime.clock, routes())
        buses[0].publish("raw.stored", {"raw_id": "r1"})
        seen: list[str] = []
        drain(buses[-1], "raw.stored", lambda m: seen.append(m["raw_id"]))
        assert seen == ["r1"]
    finally:
        for b in buses:
            b.close()


def test_subjects_held_by_another_stream_are_a_named_setting_error(nats_url: str) -> None:
    first = NatsBus(nats_url, stream="HOLDER", prefix="held", timeout=5.0)
    second = NatsBus(nats_url, stream="SECOND", prefix="held", timeout=5.0)
    try:
        first.connect()
        with pytest.raises(ConfigError, match=r"cannot create stream SECOND for subjects held\.>.*another stream"):
            second.connect()
    finally:
        first.close()
        second.close()


def test_two_deployments_on_one_server_do_not_see_each_others_messages(
    tmp_path: Any, nats_url: str, runtime: Runtime
) -> None:
    """Stream and subject prefix come from the settings (defaults: ABUSEDESK, abusedesk), issue 9."""
    defaults = load_settings(data_dir=tmp_path / "one", bus="nats", nats_url=nats_url)
    assert (defaults.nats_stream, defaults.nats_subject_prefix) == ("ABUSEDESK", "abusedesk")
    default_bus = make_bus(defaults)
    assert isinstance(default_bus, NatsBus) and (default_bus.stream, default_bus.prefix) == ("ABUSEDESK", "abusedesk")
    # the default stream is test_worker's (same session server): this test uses two others
    one = make_bus(defaults.model_copy(update={"nats_stream": "DESK_A", "nats_subject_prefix": "desk.a"}))
    two = make_bus(
        load_settings(
            data_dir=tmp_path / "two", bus="nats", nats_url=nats_url, nats_stream="DESK_B", nats_subject_prefix="desk.b"
        )
    )
    assert isinstance(one, NatsBus) and isinstance(two, NatsBus)
    for bus in (one, two):  # each relays what it puts, right after (their databases are the test's one here)
        bus.bind(runtime.sessions, runtime.clock, routes())
    try:
        one.publish("raw.stored", {"raw_id": "from-one"})
        two.publish("raw.stored", {"raw_id": "from-two"})
        # one's message goes to its dead letters at once; two's is handled
        (delivery,) = one.fetch("raw.stored", wait=2.0)
        assert delivery.message == {"raw_id": "from-one"}
        delivery.dead_letter("ValueError('cannot handle it')", "traceback here")
        seen_two: list[str] = []
        assert drain(two, "raw.stored", lambda m: seen_two.append(m["raw_id"])) == 1
        assert seen_two == ["from-two"]
        assert one.fetch("raw.stored", wait=0.3) == []
        assert [letter.message["raw_id"] for letter in one.dead_letters()] == ["from-one"]
        assert two.dead_letters() == []
        assert one.backlog("raw.stored") == 0 and two.backlog("raw.stored") == 0
        info = two._run(two.connect().stream_info("DESK_B"))
        assert info.config.subjects == ["desk.b.>"]
        assert two.consumers("raw.stored") == [("raw_stored", "desk.b.raw.stored.*")]
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("nats_stream", "ABUSE.DESK"),
        ("nats_stream", "ABUSE DESK"),
        ("nats_stream", "DESK>"),
        ("nats_stream", ""),
        ("nats_subject_prefix", "abusedesk.>"),
        ("nats_subject_prefix", "desk.*"),
        ("nats_subject_prefix", "desk..b"),
        ("nats_subject_prefix", ".desk"),
        ("nats_subject_prefix", "desk b"),
        ("nats_subject_prefix", "$JS"),
    ],
)
def test_bad_stream_or_prefix_is_a_named_setting_error(tmp_path: Any, key: str, value: str) -> None:
    what = "JetStream stream name" if key == "nats_stream" else "NATS subject prefix"
    with pytest.raises(ConfigError, match=rf"setting '{key}' \(env ABUSEDESK_{key.upper()}\): .* is not a {what}"):
        load_settings(data_dir=tmp_path, **{key: value})


def test_a_stage_backlog_look_creates_no_consumer(nats_bus: NatsBus) -> None:
    """`pipeline status` must not make consumers: one made by a look would hold messages no worker reads."""
    nats_bus.publish("events.attributed", {"events": [{"id": "ev_1"}], "partition_key": "svc-1"})
    assert nats_bus.stage_backlog("events.attributed", "detect") == 0  # no detect worker has run yet
    names = nats_bus._run(nats_bus.connect().consumers_info(nats_bus.stream))
    assert [c.name for c in names] == []
    got = nats_bus.fetch("events.attributed", name="detect", wait=2.0)  # the shared consumer of the stage
    assert nats_bus.stage_backlog("events.attributed", "detect") == 1  # delivered, not acked
    for d in got:
        d.ack()
    assert nats_bus.stage_backlog("events.attributed", "detect") == 0
