"""A drop folder: files put into it are accepted, then moved to ``.done`` (or ``.rejected`` with a reason file).

The watcher polls (no inotify needed, works on network file systems). A file is taken only once its size has
stayed the same over one poll, so a file still being copied in is not read half-way. It is moved away only
after ``IntakeService.accept`` returned, so a crash in between takes the file again on the next poll and the
raw store recognises the same bytes. Names starting with ``.`` are ignored (the convention for partial uploads).
A folder with a format hint (setting ``intake.parser_hints.folders``) names its parser in each file's meta.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from abusedesk.domain.errors import InputRejected
from abusedesk.intake.channels import MailDoor
from abusedesk.intake.hints import ParserHints
from abusedesk.intake.mailbox import ImportItem

log = logging.getLogger(__name__)

DONE = ".done"
REJECTED = ".rejected"


@dataclass(slots=True)
class PollResult:
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    #: each file taken or refused, as ``intake file`` reports them (``mailbox.outcomes``)
    items: list[ImportItem] = field(default_factory=list)


class DropFolder:
    """Watches ``root``; ``poll`` takes what is ready, ``watch`` polls until told to stop."""

    def __init__(self, door: MailDoor, root: Path, *, settle: bool = True) -> None:
        self.door = door
        self.root = root
        self.settle = settle
        self._sizes: dict[str, int] = {}
        #: the folder's format hint (setting intake.parser_hints.folders): its files skip sniffing
        self.hint = door.intake.hints.for_folder(root)
        for sub in (DONE, REJECTED):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def poll(self) -> PollResult:
        result = PollResult()
        limit = self.door.rt.settings.intake.max_input_bytes
        seen: dict[str, int] = {}
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            size = path.stat().st_size
            seen[path.name] = size
            if self.settle and self._sizes.get(path.name) != size:
                result.waiting.append(path.name)
                continue
            try:
                if size > limit:
                    raise InputRejected(
                        f"file {path.name} is {size} bytes, over the limit of {limit} bytes "
                        "(setting intake.max_input_bytes); it was not stored"
                    )
                meta: dict[str, object] = {"filename": path.name}
                ParserHints.apply(meta, self.hint)
                receipt = self.door.receive(path.read_bytes(), channel="folder", meta=meta)
            except InputRejected as exc:
                self._move(path, REJECTED)
                (self.root / REJECTED / f"{path.name}.reason.txt").write_text(exc.message + "\n", encoding="utf-8")
                result.rejected.append(path.name)
                result.items.append(ImportItem(path.name, error=exc.message))
                seen.pop(path.name, None)
                continue
            self._move(path, DONE)
            seen.pop(path.name, None)
            result.accepted.append(path.name)
            result.items.append(ImportItem(path.name, receipt))
            log.info("drop folder: %s accepted as %s", path.name, receipt.raw_id)
        self._sizes = seen
        if result.accepted:
            self.door.rt.drain()
        return result

    def _move(self, path: Path, sub: str) -> None:
        target = self.root / sub / path.name
        if target.exists():  # the same name again: keep both, the newer one gets a time suffix
            target = target.with_name(f"{path.name}.{time.time_ns()}")
        os.replace(path, target)

    def watch(self, interval: float = 2.0, *, stop: Callable[[], bool] = lambda: False) -> None:
        while not stop():
            self.poll()
            time.sleep(interval)
