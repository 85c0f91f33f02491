"""The service behind ``abusedesk dlq show|replay``, for either bus.

In-process bus: dead letters are rows of ``dead_letters``; a replay hands each message back to the stage that
failed on it and drains the pipeline in this process, so the command's answer says whether it failed again.
NATS: dead letters are messages on ``abusedesk.dlq.<subject>``; a replay publishes each to its subject again
(with a fresh ``Nats-Msg-Id``) and deletes it from the stream; the workers then take it, and a message that
fails again comes back as a new dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from abusedesk.bus.base import InProcessBus
from abusedesk.bus.deadletters import DeadLetterTable, StoredDeadLetter
from abusedesk.domain.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from abusedesk.runtime import Runtime


@dataclass(slots=True)
class ReplayResult:
    replayed: list[str] = field(default_factory=list)
    failed_again: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"replayed": self.replayed, "failed_again": self.failed_again}


def list_dead_letters(rt: Runtime) -> list[StoredDeadLetter]:
    from abusedesk.bus.nats import NatsBus

    if isinstance(rt.bus, NatsBus):
        return rt.bus.dead_letters()
    if isinstance(rt.bus, InProcessBus):
        return DeadLetterTable(rt).list()
    raise ConfigError(f"dead letters of a {type(rt.bus).__name__} cannot be listed", field="bus")


def replay_dead_letters(rt: Runtime, ids: list[str] | None) -> ReplayResult:
    """Replay the named dead letters (``None``: all); NotFound names ids that are not dead letters."""
    from abusedesk.bus.nats import NatsBus

    result = ReplayResult()
    if isinstance(rt.bus, NatsBus):
        result.replayed = [letter.id for letter in rt.bus.replay_dead_letters(ids)]
        return result
    if not isinstance(rt.bus, InProcessBus):
        raise ConfigError(f"dead letters of a {type(rt.bus).__name__} cannot be replayed", field="bus")
    table = DeadLetterTable(rt)
    letters = table.list(ids)
    if ids is not None:
        missing = sorted(set(ids) - {letter.id for letter in letters})
        if missing:
            raise NotFound(f"no dead letter with id {', '.join(missing)} (see `abusedesk dlq show`)")
    bus = rt.bus
    for letter in letters:
        # back to the stage that failed on it (not every stage of its subject), in one transaction with the removal
        stage = letter.extra.get("stage")
        with rt.sessions.begin() as s:
            table.remove(letter.id, s)
            if stage:
                bus.put_to(s, str(stage), letter.subject, letter.message)
            else:
                bus.put(s, letter.subject, letter.message)
        rt.drain()
        result.replayed.append(letter.id)
    still = {letter.id for letter in table.list([letter.id for letter in letters])}
    result.failed_again = [i for i in result.replayed if i in still]
    return result
