"""The bus interface, and the in-process bus used by ``abusedesk serve`` and the tests.

Subjects (each message is a JSON-able dict):

- ``raw.stored``        ``{"raw_id": ...}``: a raw input is durably stored; parse it
- ``events.parsed``     ``{"raw_id": ..., "events": [event dicts]}``: attribute them
- ``events.attributed`` ``{"events": [event dicts]}``: run the event detectors
- ``findings.new``      ``{"findings": [finding dicts]}``: group into cases

Delivery is at least once; every handler is idempotent (deterministic ids), so a redelivery changes nothing.
"""

from __future__ import annotations

import logging
import threading
import traceback
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[dict[str, Any]], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    subject: str
    message: dict[str, Any]
    error: str
    traceback: str


class Bus(ABC):
    @abstractmethod
    def publish(self, subject: str, message: dict[str, Any]) -> None: ...

    @abstractmethod
    def subscribe(self, subject: str, handler: Handler) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook: buses with a connection close it here
        """Release connections; the in-process bus has none."""


class InProcessBus(Bus):
    """A FIFO queue and a drain loop: handlers run one at a time, in publish order.

    A handler that raises is retried ``max_attempts`` times, then the message goes to the dead-letter list
    with its traceback (``dead_letters``), and the drain goes on with the next message.
    """

    def __init__(self, *, max_attempts: int = 3) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._lock = threading.RLock()
        self._draining = False
        self.max_attempts = max_attempts
        self.dead_letters: list[DeadLetter] = []
        # where dead letters are also kept (bus/deadletters.py sets it to the dead_letters table)
        self.on_dead_letter: Callable[[DeadLetter], None] | None = None

    def subscribe(self, subject: str, handler: Handler) -> None:
        self._handlers[subject].append(handler)

    def publish(self, subject: str, message: dict[str, Any]) -> None:
        with self._lock:
            self._queue.append((subject, message))

    def drain(self) -> int:
        """Deliver until the queue is empty; return the number of messages delivered. Re-entrant calls no-op."""
        with self._lock:
            if self._draining:
                return 0
            self._draining = True
        delivered = 0
        try:
            while True:
                with self._lock:
                    if not self._queue:
                        return delivered
                    subject, message = self._queue.popleft()
                for handler in self._handlers.get(subject, []):
                    self._deliver(handler, subject, message)
                delivered += 1
        finally:
            with self._lock:
                self._draining = False

    def _deliver(self, handler: Handler, subject: str, message: dict[str, Any]) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                handler(message)
                return
            except Exception as exc:
                if attempt == self.max_attempts:
                    log.error("dead-lettered a message on %s after %d attempts: %s", subject, attempt, exc)
                    letter = DeadLetter(subject, message, repr(exc), traceback.format_exc())
                    self.dead_letters.append(letter)
                    if self.on_dead_letter is not None:
                        self.on_dead_letter(letter)
