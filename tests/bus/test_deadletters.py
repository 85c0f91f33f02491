"""In-process dead letters land in the dead_letters table; the same message again counts up."""

from __future__ import annotations

from typing import Any, ClassVar

from abusedesk.bus.base import InProcessBus, StageBatch
from abusedesk.bus.deadletters import DeadLetterTable, dead_letter_id
from abusedesk.bus.dlq import list_dead_letters, replay_dead_letters
from abusedesk.bus.runner import InProcessPipeline
from abusedesk.runtime import Runtime
from abusedesk.stages import StageSpec
from tests.support.components import missing


class Broken:
    """A stage handler that always fails (the bug a dead letter waits out)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def handle(self, batch: StageBatch) -> None:
        raise KeyError("events")


def test_in_process_dead_letters_are_persisted_and_counted(runtime: Runtime) -> None:
    bus = runtime.bus
    assert isinstance(bus, InProcessBus)
    bus.routes["test.subject"] = ("broken",)
    pipeline = InProcessPipeline(runtime, [StageSpec("broken", "test.subject", "tests.bus.test_deadletters:Broken")])
    bus.publish("test.subject", {"n": 1})
    pipeline.drain()
    [letter] = list_dead_letters(runtime)
    assert letter.id == dead_letter_id("test.subject", {"n": 1})
    assert (letter.subject, letter.message, letter.attempts) == ("test.subject", {"n": 1}, 3)
    assert letter.extra["stage"] == "broken"
    assert "KeyError" in letter.error and "raise KeyError" in letter.traceback
    assert letter.failed_at == runtime.clock.now()
    assert bus.pending("broken", 10) == []  # out of the outbox, in the same transaction
    bus.publish("test.subject", {"n": 1})
    pipeline.drain()
    [again] = DeadLetterTable(runtime).list()
    assert again.id == letter.id
    assert again.attempts == 6 and again.extra["times_dead_lettered"] == 2
    assert again.to_dict()["location"] == "table"


def test_one_bad_message_does_not_hold_back_its_batch(runtime: Runtime) -> None:
    bus = runtime.bus
    assert isinstance(bus, InProcessBus)
    bus.routes["test.subject"] = ("picky",)
    pipeline = InProcessPipeline(runtime, [StageSpec("picky", "test.subject", "tests.bus.test_deadletters:Picky")])
    for n in range(5):
        bus.publish("test.subject", {"n": n})
    pipeline.drain()
    assert sorted(Picky.done) == [0, 1, 3, 4]
    [letter] = list_dead_letters(runtime)
    assert letter.message == {"n": 2}


class Picky:
    """Fails on message n=2 only; counts what it handled in committed batches."""

    done: ClassVar[list[int]] = []

    def __init__(self, rt: Runtime) -> None:
        Picky.done = []

    def handle(self, batch: StageBatch) -> None:
        ns = [int(m["n"]) for m in batch.messages]
        if 2 in ns:
            raise ValueError("n=2 is bad")
        batch.after_commit(lambda: Picky.done.extend(ns))


def test_replay_on_the_in_process_bus_reports_what_failed_again(runtime: Runtime) -> None:
    try:
        import abusedesk.inventory.service  # noqa: F401 - replay wires every stage, attribution included
    except ImportError as exc:
        missing(f"the attribute stage cannot run yet: {exc}")
    bus = runtime.bus
    assert isinstance(bus, InProcessBus)
    DeadLetterTable(runtime, attempts=3).record(_letter("findings.new", {"findings": []}))
    # replay wires the real stages: the case engine takes an empty batch without complaint
    result = replay_dead_letters(runtime, None)
    assert result.replayed == [dead_letter_id("findings.new", {"findings": []})]
    assert result.failed_again == []
    assert list_dead_letters(runtime) == []


def _letter(subject: str, message: dict[str, Any]) -> Any:
    from abusedesk.bus.base import DeadLetter

    return DeadLetter(subject, message, "RuntimeError('x')", "Traceback ...")
