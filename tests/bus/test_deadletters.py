"""In-process dead letters land in the dead_letters table; the same message again counts up."""

from __future__ import annotations

from typing import Any

from abusedesk.bus.base import InProcessBus
from abusedesk.bus.deadletters import DeadLetterTable, dead_letter_id
from abusedesk.bus.dlq import list_dead_letters, replay_dead_letters
from abusedesk.runtime import Runtime
from tests.support.components import missing


def test_in_process_dead_letters_are_persisted_and_counted(runtime: Runtime) -> None:
    bus = runtime.bus
    assert isinstance(bus, InProcessBus)

    def broken(message: dict[str, Any]) -> None:
        raise KeyError("events")

    bus.subscribe("test.subject", broken)
    bus.publish("test.subject", {"n": 1})
    bus.drain()
    [letter] = list_dead_letters(runtime)
    assert letter.id == dead_letter_id("test.subject", {"n": 1})
    assert (letter.subject, letter.message, letter.attempts) == ("test.subject", {"n": 1}, 3)
    assert "KeyError" in letter.error and "raise KeyError" in letter.traceback
    assert letter.failed_at == runtime.clock.now()
    bus.publish("test.subject", {"n": 1})
    bus.drain()
    [again] = DeadLetterTable(runtime).list()
    assert again.id == letter.id
    assert again.attempts == 6 and again.extra["times_dead_lettered"] == 2
    assert again.to_dict()["location"] == "table"


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
