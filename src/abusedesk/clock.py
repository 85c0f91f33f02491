"""The clock every service reads, so tests (and the demo) can drive time: deadlines, windows, rate limits."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from abusedesk.domain.timeutil import as_utc, utcnow


class Clock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return utcnow()


class ManualClock(Clock):
    """A clock that only moves when told to: ``advance(timedelta)`` or ``set(datetime)``."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = as_utc(when)
