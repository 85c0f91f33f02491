"""Importing files: a maildir directory, an mbox file, or plain files (a mail, a feed CSV, a XARF JSON).

``import_paths`` looks at each path: a directory with ``cur``/``new``/``tmp`` is a maildir, a file starting with
``From `` is an mbox, any other file is one input, any other directory is walked (hidden names skipped). Every
message goes through the same door as the listeners, so importing one mailbox twice finds duplicates, never
new inputs. A file over the size limit is refused with the reason and the import goes on with the next one.

``outcomes`` tells, once the pipeline has run, what became of each item: parsed (with its events), quarantined
(with the reason), a duplicate of an earlier input (the same content from the same reporter: never parsed
again, by design), or refused; and the earlier input a new one is related to (same Message-ID, other content).
"""

from __future__ import annotations

import logging
import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from abusedesk.domain.errors import AbuseDeskError
from abusedesk.intake.channels import MailDoor, Receipt
from abusedesk.intake.reporters import reference_of
from abusedesk.parsers import mime
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import RawInputRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ImportItem:
    """One message or file of an import: its receipt, or why it was refused."""

    source: str
    receipt: Receipt | None = None
    error: str | None = None


def is_maildir(path: Path) -> bool:
    return path.is_dir() and all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def is_mbox(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def _messages(path: Path) -> Iterator[tuple[str, str, dict[str, object], bytes | Path]]:
    """(channel, source label, meta, bytes or file) for every input under ``path``."""
    if is_maildir(path):
        box = mailbox.Maildir(path, create=False)
        for key in sorted(box.keys()):
            yield "maildir", f"{path}/{key}", {"maildir": str(path), "key": key}, box.get_bytes(key)
    elif is_mbox(path):
        mbox = mailbox.mbox(path, create=False)
        try:
            for index, key in enumerate(mbox.keys()):
                yield (
                    "mbox",
                    f"{path}#{index + 1}",
                    {"filename": path.name, "mbox_index": index + 1},
                    mbox.get_bytes(key),
                )
        finally:
            mbox.close()
    elif path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and not any(part.startswith(".") for part in child.relative_to(path).parts):
                yield from _messages(child)
    elif path.is_file():
        yield "file", str(path), {"filename": path.name}, path
    else:
        raise FileNotFoundError(f"{path} is neither a file nor a directory")


def is_streamable(path: Path) -> bool:
    """Whether a file can be taken in as a stream: anything but mail (a feed: CSV, JSON lines, an archive)."""
    with open(path, "rb") as fh:
        return not mime.looks_like_mail(fh.read(8192))


def import_paths(door: MailDoor, paths: list[Path], *, chunk: int = 200) -> list[ImportItem]:
    """Accept every message/file under ``paths``, ``chunk`` at a time with one flush and one commit each (group
    commit); an oversized one is listed with its reason, not fatal."""
    limit = door.rt.settings.intake.max_input_bytes
    file_limit = door.rt.settings.intake.max_file_bytes
    items: list[ImportItem] = []
    waiting: list[tuple[str, tuple[bytes | Path, str, dict[str, Any]]]] = []

    def flush() -> None:
        for (label, _), result in zip(waiting, door.receive_many([w for _, w in waiting]), strict=True):
            if isinstance(result, AbuseDeskError):
                log.warning("%s refused: %s", label, result.message)
                items.append(ImportItem(label, error=result.message))
            else:
                items.append(ImportItem(label, result))
        waiting.clear()

    for path in paths:
        for channel, label, meta, payload in _messages(path):
            data: bytes | Path
            if isinstance(payload, Path):
                size = payload.stat().st_size
                if size > limit and is_streamable(payload) and size <= file_limit:
                    data = payload  # a feed too large to hold: streamed into the raw store, parsed as a stream
                elif size > limit:  # refuse before reading a huge file into memory
                    flush()
                    which = "max_file_bytes" if size > file_limit else "max_input_bytes (mail is held whole)"
                    message = (f"file {payload} is {size} bytes, over the limit of "
                               f"{file_limit if size > file_limit else limit} bytes (setting intake.{which}); "
                               "it was not stored")  # fmt: skip
                    log.warning("%s refused: %s", label, message)
                    items.append(ImportItem(label, error=message))
                    continue
                else:
                    data = payload.read_bytes()
            else:
                data = payload
            waiting.append((label, (data, channel, dict(meta))))
            if len(waiting) >= chunk:
                flush()
    flush()
    return items


def outcomes(rt: Runtime, items: list[ImportItem]) -> list[dict[str, Any]]:
    """One row per item: ``status`` parsed | quarantined (``reason``) | stored | duplicate (``duplicate_of``) |
    rejected (``error``); ``related_to`` when a new input shares an earlier one's Message-ID or report id.

    References name raw inputs; ``*_source`` names the item of this import that brought the earlier one in.
    """
    chunk = sorted({i.receipt.raw_id for i in items if i.receipt is not None})
    rows: dict[str, RawInputRow] = {}
    with rt.sessions() as s:
        for at in range(0, len(chunk), 500):
            rows.update(
                (r.id, r) for r in s.scalars(select(RawInputRow).where(RawInputRow.id.in_(chunk[at : at + 500])))
            )
    first_source: dict[str, str] = {}
    for i in items:
        if i.receipt is not None and not i.receipt.duplicate:
            first_source.setdefault(i.receipt.raw_id, i.source)
    out: list[dict[str, Any]] = []
    for item in items:
        row: dict[str, Any] = {"source": item.source}
        receipt = item.receipt
        if receipt is None:
            out.append(row | {"status": "rejected", "error": item.error})
            continue
        raw = rows.get(receipt.raw_id)
        status = raw.status if raw is not None else "?"
        row |= {"raw_id": receipt.raw_id, "reference": receipt.reference, "duplicate": receipt.duplicate}
        if receipt.duplicate:
            # a duplicate is the earlier input itself (accept records no second row): say so, never its status
            row |= {"status": "duplicate", "duplicate_of": reference_of(receipt.original_id), "original_status": status}
            if receipt.original_id in first_source:
                row["duplicate_of_source"] = first_source[receipt.original_id]
        else:
            row |= {"status": status, "parser": raw.parser if raw else None, "events": raw.event_count if raw else 0}
            if status == "quarantined" and raw is not None:
                row["reason"] = raw.error
        if receipt.related_to and not receipt.duplicate:
            row["related_to"] = reference_of(receipt.related_to)
            if receipt.related_to in first_source:
                row["related_to_source"] = first_source[receipt.related_to]
        out.append(row)
    return out
