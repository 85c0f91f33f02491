"""The Runtime: settings, database, raw store, bus, clock and policy, built once and passed to every service.

The CLI and the API app factory build one Runtime; services take it as their only dependency. Nothing below
reads the environment or opens an engine of its own.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from abusedesk.bus.base import Bus, InProcessBus
from abusedesk.bus.factory import bind_bus, make_bus
from abusedesk.clock import Clock
from abusedesk.config import Settings
from abusedesk.evidence import audit
from abusedesk.intake.rawstore import RawStore
from abusedesk.store.db import make_engine, migrate, session_factory

if TYPE_CHECKING:
    from abusedesk.bus.runner import InProcessPipeline
    from abusedesk.policy.model import Policy


class Wakeable(Protocol):
    """What wakes a loop that drains the pipeline elsewhere (a ``threading.Event`` or ``multiprocessing.Event``)."""

    def set(self) -> None: ...


class Runtime:
    #: set by ``abusedesk serve`` while its pipeline loop runs (in this process, or in the parent of an API worker
    #: process): an accepted input wakes that loop instead of being drained by the request that stored it
    pipeline_wake: Wakeable | None = None

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, bus: Bus | None = None, engine: Engine | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self.bus: Bus = bus or make_bus(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = engine or make_engine(settings.sqlalchemy_url)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        self.checkpointer = audit.install_checkpointer(self.sessions, settings, self.clock)
        self.raw_store = RawStore(settings.raw_dir)
        self._draining = threading.Lock()
        self._drain_wanted = False
        bind_bus(self)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        bus: Bus | None = None,
        engine: Engine | None = None,
        upgrade: bool = True,
    ) -> Runtime:
        rt = cls(settings, clock=clock, bus=bus, engine=engine)
        if upgrade:
            migrate(rt.engine)
        return rt

    @cached_property
    def policy(self) -> Policy:
        """The policy in force (settings.policy_file, else the shipped one), recorded as a version on first use."""
        from abusedesk.policy.loader import load_policy
        from abusedesk.policy.versions import record_version

        policy = load_policy(self.settings.policy_file)
        record_version(self, policy)
        return policy

    @cached_property
    def pipeline(self) -> InProcessPipeline:
        """Every message stage of the stage table over the in-process bus (built on first use)."""
        from abusedesk.bus.runner import InProcessPipeline

        return InProcessPipeline(self)

    def drain(self) -> int:
        """Run the in-process pipeline until no message waits (a no-op on other buses)."""
        return self.pipeline.drain() if isinstance(self.bus, InProcessBus) else 0

    def drain_soon(self) -> None:
        """An input was stored: have the pipeline take it, without a pile of drains fighting over the same rows.

        With serve's loop running (``pipeline_wake``) it is woken and this returns at once. Otherwise this drains
        here, unless another thread is draining already: that one goes round again, so the input is taken either
        way and concurrent requests never run concurrent drains (they took the same messages and rolled each other
        back: recording signups ran at 34 requests/s, issue 14).
        """
        if self.pipeline_wake is not None:
            self.pipeline_wake.set()
            return
        self._drain_wanted = True
        while self._draining.acquire(blocking=False):
            try:
                while self._drain_wanted:
                    self._drain_wanted = False
                    self.drain()
            finally:
                self._draining.release()
            if not self._drain_wanted:  # nothing asked for since: done (else a request came while releasing)
                return

    def close(self) -> None:
        self.checkpointer.flush()  # a head put off by audit.checkpoint_interval is signed before we go
        self.bus.close()
        self.engine.dispose()
