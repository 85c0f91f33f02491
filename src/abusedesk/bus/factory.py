"""Choosing the bus from the settings, and binding it to a Runtime.

``make_bus(settings)``: ``bus = "inprocess"`` (default) gives an ``InProcessBus``; ``bus = "nats"`` a ``NatsBus``
on ``nats_url``, stream ``nats_stream``, subjects under ``nats_subject_prefix`` (it connects on first use, so
commands that never publish never need the server).
``bind_bus(rt)``: the in-process bus keeps its dead letters in the ``dead_letters`` table of the runtime's
database, so ``abusedesk dlq show`` sees them after the process is gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from abusedesk.bus.base import Bus, InProcessBus

if TYPE_CHECKING:
    from abusedesk.config import Settings
    from abusedesk.runtime import Runtime


def make_bus(settings: Settings) -> Bus:
    if settings.bus == "nats":
        from abusedesk.bus.nats import NatsBus

        return NatsBus(
            settings.nats_url,
            stream=settings.nats_stream,
            prefix=settings.nats_subject_prefix,
            ack_wait=settings.nats_ack_wait,
        )
    return InProcessBus()


def bind_bus(rt: Runtime) -> None:
    """Give the runtime's bus its database, clock and the stage table's routes; the in-process bus keeps its
    dead letters in the runtime's database."""
    from abusedesk.stages import routes

    bus = rt.bus
    bus.bind(rt.sessions, rt.clock, routes())
    if isinstance(bus, InProcessBus) and bus.on_dead_letter is None:
        from abusedesk.bus.deadletters import DeadLetterTable

        table = DeadLetterTable(rt, attempts=bus.max_attempts)
        bus.on_dead_letter = lambda session, letter: table.record(letter, session)
