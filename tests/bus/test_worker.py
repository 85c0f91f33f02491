"""The worker loop's edges: wrong stage or bus, ConfigError stops it, timer stages, the CLI over NATS."""

from __future__ import annotations

import threading
import time

import pytest
from typer.testing import CliRunner

from abusedesk.bus.base import InProcessBus, StageBatch
from abusedesk.bus.nats import NatsBus
from abusedesk.bus.worker import STAGE_NAMES, run_embedded, run_worker
from abusedesk.cli.main import app
from abusedesk.domain.errors import ConfigError
from abusedesk.intake.service import IntakeService, ParseStage
from abusedesk.runtime import Runtime
from abusedesk.stages import routes, stage
from abusedesk.store.tables.evidence import AuditRow
from abusedesk.store.tables.intake import RawInputRow


def nats_runtime(runtime: Runtime, bus: NatsBus) -> Runtime:
    return Runtime(runtime.settings, clock=runtime.clock, bus=bus, engine=runtime.engine)


def test_unknown_stage_is_a_config_error(runtime: Runtime) -> None:
    with pytest.raises(ConfigError, match="unknown stage 'enrich'; choose one of parse, attribute"):
        run_worker(runtime, "enrich", threading.Event(), once=True)
    assert STAGE_NAMES == ("parse", "attribute", "detect", "replies", "flows", "weblog", "cases", "scheduler",
                           "actions")  # fmt: skip


def test_message_stage_on_the_in_process_bus_is_a_config_error(runtime: Runtime) -> None:
    assert isinstance(runtime.bus, InProcessBus)
    with pytest.raises(ConfigError, match="setting 'bus' is not 'nats'"):
        run_worker(runtime, "parse", threading.Event(), once=True)


def test_handlers_and_ticks_are_built_for_every_stage(runtime: Runtime) -> None:
    for name in STAGE_NAMES:
        spec = stage(name)
        built = spec.build(runtime)
        assert hasattr(built, "tick" if spec.is_timer else "handle"), name
    assert stage("parse").subject == "raw.stored"
    assert stage("cases").subject == "findings.new"
    with pytest.raises(ConfigError, match="is a timer stage"):
        stage("scheduler").build_handler(runtime)


def test_timer_stage_ticks_once(runtime: Runtime) -> None:
    stats = run_worker(runtime, "scheduler", threading.Event(), once=True)
    assert (stats.ticks, stats.errors) == (1, [])


def test_config_error_in_a_handler_stops_the_worker_and_gives_the_message_back(
    runtime: Runtime, nats_bus: NatsBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = nats_runtime(runtime, nats_bus)

    def misconfigured(self: ParseStage, batch: StageBatch) -> None:
        raise ConfigError("parser plugin 'x' cannot be loaded")

    monkeypatch.setattr(ParseStage, "handle", misconfigured)
    nats_bus.publish("raw.stored", {"raw_id": "r1"})
    with pytest.raises(ConfigError, match="cannot be loaded"):
        run_worker(rt, "parse", threading.Event(), once=True, wait=0.3)
    monkeypatch.undo()
    # the message was released, not acked or dead-lettered: a fixed worker gets it
    got = nats_bus.fetch("raw.stored", name="parse", wait=2.0)
    assert [d.message for d in got] == [{"raw_id": "r1"}]
    assert nats_bus.dead_letters() == []


def test_parse_worker_dead_letters_a_poison_message(runtime: Runtime, nats_bus: NatsBus) -> None:
    rt = nats_runtime(runtime, nats_bus)
    nats_bus.publish("raw.stored", {"raw_id": "not-a-stored-input"})  # NotFound on every attempt
    stop = threading.Event()
    stats = None
    for _ in range(10):
        stats = run_worker(rt, "parse", stop, once=True, wait=0.3)
        if stats.dead_lettered:
            break
    [letter] = nats_bus.dead_letters()
    assert "raw input not-a-stored-input is not recorded" in letter.error
    assert "NotFound" in letter.traceback


def test_worker_command_runs_a_stage_once_over_nats(runtime: Runtime, nats_url: str) -> None:
    import signal

    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    env = {"ABUSEDESK_BUS": "nats", "ABUSEDESK_NATS_URL": nats_url}
    bus = NatsBus(nats_url, timeout=5.0)  # the stream and prefix the command uses
    door = Runtime(runtime.settings, clock=runtime.clock, bus=bus, engine=runtime.engine)
    bus.flush = lambda: None  # type: ignore[method-assign] # the door dies after its commit, before the relay
    IntakeService(door).accept(b"no parser knows this\n", channel="test")
    base = ["--data-dir", str(runtime.settings.data_dir), "--database-url", runtime.settings.sqlalchemy_url]
    result = CliRunner().invoke(app, [*base, "worker", "--stage", "parse", "--once", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert '"recovered": 1' in result.output and '"handled": 1' in result.output
    # the worker's stop handlers are gone again: a later test's Ctrl-C (test_smtp's SIGINT test) still works
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    with runtime.sessions() as s:
        [row] = s.query(RawInputRow).all()
    assert row.status == "quarantined"
    bad = CliRunner().invoke(app, [*base, "worker", "--stage", "parse", "--partition", "3/2"], env=env)
    assert bad.exit_code == 2 and "INDEX must be in 0..COUNT-1" in bad.output
    wrong_bus = CliRunner().invoke(app, [*base, "worker", "--stage", "detect", "--once"])
    assert wrong_bus.exit_code == 2 and "setting 'bus' is not 'nats'" in wrong_bus.output


def test_embedded_loop_drains_and_ticks(runtime: Runtime) -> None:
    intake = IntakeService(runtime)
    intake.accept(b"nothing recognises me\n", channel="test")  # waits in the outbox
    stats = run_embedded(runtime, threading.Event(), max_loops=1)
    assert stats.handled >= 1
    assert stats.ticks == 2  # scheduler and action runner
    assert stats.errors == []
    with runtime.sessions() as s:
        [row] = s.query(RawInputRow).all()
    assert row.status == "quarantined"


def test_embedded_loop_needs_the_in_process_bus(runtime: Runtime, nats_bus: NatsBus) -> None:
    with pytest.raises(ConfigError, match="needs setting 'bus' = 'inprocess'"):
        run_embedded(nats_runtime(runtime, nats_bus), threading.Event(), max_loops=1)


def test_dlq_commands_over_nats(runtime: Runtime, nats_url: str) -> None:
    bus = NatsBus(nats_url, timeout=5.0)  # the stream and prefix the commands use
    try:
        bus.publish_dead_letter("raw.stored", {"raw_id": "cli-dl"}, "ValueError('x')", "Traceback ...", 5, 42)
        env = {"ABUSEDESK_BUS": "nats", "ABUSEDESK_NATS_URL": nats_url}
        base = ["--data-dir", str(runtime.settings.data_dir), "--database-url", runtime.settings.sqlalchemy_url]
        cli = CliRunner()
        shown = cli.invoke(app, [*base, "dlq", "show", "--json"], env=env)
        assert shown.exit_code == 0, shown.output
        assert '"raw_id": "cli-dl"' in shown.output and '"location": "nats:' in shown.output
        text = cli.invoke(app, [*base, "dlq", "show"], env=env)
        assert "raw.stored" in text.output and "attempts=5" in text.output
        replayed = cli.invoke(app, [*base, "dlq", "replay", "--all"], env=env)
        assert replayed.exit_code == 0 and "replayed 1 dead letter(s)" in replayed.output
        assert bus.dead_letters() == []
        got = bus.fetch("raw.stored", wait=2.0)
        # the default stream is shared with the worker command's test: look for this test's message
        assert {"raw_id": "cli-dl"} in [d.message for d in got]
        for d in got:
            d.ack()
    finally:
        bus.close()


def test_a_long_handler_keeps_its_message_with_in_progress_signals(
    runtime: Runtime, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    stream = f"LONG{time.monotonic_ns()}"
    bus = NatsBus(nats_url, stream=stream, prefix=stream.lower(), ack_wait=1.0, timeout=5.0)
    rival = NatsBus(nats_url, stream=stream, prefix=stream.lower(), ack_wait=1.0, timeout=5.0)
    calls: list[str] = []

    def slow(self: ParseStage, batch: StageBatch) -> None:
        calls.extend(m["raw_id"] for m in batch.messages)
        time.sleep(3.0)  # three ack waits

    monkeypatch.setattr(ParseStage, "handle", slow)
    try:
        bus.bind(runtime.sessions, runtime.clock, routes())
        bus.publish("raw.stored", {"raw_id": "big-feed"})
        rt = nats_runtime(runtime, bus)
        worker = threading.Thread(target=run_worker, args=(rt, "parse", threading.Event()), kwargs={"once": True})
        worker.start()
        time.sleep(0.5)
        stolen = rival.fetch("raw.stored", name="parse", wait=3.5)  # would get it if the ack wait ran out
        worker.join(15)
        assert stolen == []
        assert calls == ["big-feed"]
        assert rival.backlog("raw.stored", name="parse") == 0  # acked once the handler returned
    finally:
        bus.close()
        rival.close()


def test_worker_command_takes_the_stages_own_batch_unless_told(runtime: Runtime, nats_url: str) -> None:
    """Without --batch a worker fetches its stage's batch (parse: 100), so 25 waiting inputs are one parse batch:
    one ``raw.parsed`` audit entry (the command once fetched 10 at a time whatever the stage: three entries)."""
    stream = f"BATCH{time.monotonic_ns()}"
    env = {
        "ABUSEDESK_BUS": "nats",
        "ABUSEDESK_NATS_URL": nats_url,
        "ABUSEDESK_NATS_STREAM": stream,
        "ABUSEDESK_NATS_SUBJECT_PREFIX": stream.lower(),
    }
    bus = NatsBus(nats_url, timeout=5.0, stream=stream, prefix=stream.lower())
    door = Runtime(runtime.settings, clock=runtime.clock, bus=bus, engine=runtime.engine)
    for i in range(25):
        IntakeService(door).accept(f"no parser knows this, {i}\n".encode(), channel="test")
    bus.close()
    base = ["--data-dir", str(runtime.settings.data_dir), "--database-url", runtime.settings.sqlalchemy_url]
    result = CliRunner().invoke(app, [*base, "worker", "--stage", "parse", "--once", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert '"handled": 25' in result.output
    with runtime.sessions() as s:
        batches = s.query(AuditRow).filter(AuditRow.action == "raw.parsed").count()
    assert batches == 1
    told = CliRunner().invoke(app, [*base, "worker", "--stage", "parse", "--once", "--batch", "0"], env=env)
    assert told.exit_code == 2  # an explicit --batch is still checked
