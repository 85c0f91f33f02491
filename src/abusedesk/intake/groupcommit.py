"""Group commit: callers that arrive while a commit is running share the next one (as MTAs and Kafka do).

``submit(item)`` blocks until the item was committed and returns its result. The first caller to find no commit
running becomes the leader: it takes everything queued, runs ``commit_many`` on it, hands each caller its result,
and goes on while more is queued. One caller alone pays one commit, as before; N concurrent callers pay about one
commit for all of them, so the door's throughput grows with its concurrency instead of its fsync rate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    def __init__(self, commit_many: Callable[[Sequence[T]], list[R]], *, max_batch: int = 500) -> None:
        self.commit_many = commit_many
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Slot[T, R]] = []
        self._leading = False

    def submit(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._cond:
            self._queue.append(slot)
            while self._leading and not slot.done:
                self._cond.wait()
            if slot.done:
                return self._answer(slot)
            self._leading = True
        try:
            while True:
                with self._cond:
                    batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                if not batch:
                    break
                try:
                    results = self.commit_many([s.item for s in batch])
                    for s, r in zip(batch, results, strict=True):
                        s.result = r
                except BaseException as exc:  # every caller of the failed batch gets the error
                    for s in batch:
                        s.error = exc
                with self._cond:
                    for s in batch:
                        s.done = True
                    self._cond.notify_all()
                if slot.done and not self._queue:
                    break
        finally:
            with self._cond:
                self._leading = False
                self._cond.notify_all()
        return self._answer(slot)

    @staticmethod
    def _answer(slot: _Slot[T, R]) -> R:
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result
