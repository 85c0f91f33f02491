"""RobotsStore: the robots.txt each target host served, fetched by abusedesk itself or imported from files.

A fetch goes through httpx with the desk's own honest user agent (setting ``robots.user_agent``), follows up to
five redirects (RFC 9309 2.3.1.2), keeps at most 500 KiB, and records the status (0 when the host could not be
reached). A host's newest record is used for ``robots.cache_hours`` (24 h, RFC 9309 2.4) before ``ensure``
fetches again. ``imported`` records a file as the host's robots.txt, with the status it was served with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import select

from abusedesk.robots.matcher import MAX_BYTES, RobotsTxt
from abusedesk.store.tables.robots import RobotsFileRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from abusedesk.runtime import Runtime


@dataclass(frozen=True, slots=True)
class RobotsRecord:
    host: str
    scheme: str
    fetched_at: datetime
    status: int
    content: bytes
    source: str
    origin: str

    def parsed(self) -> RobotsTxt:
        return RobotsTxt(self.content, self.status)

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "scheme": self.scheme, "fetched_at": self.fetched_at.isoformat(),
                "status": self.status, "bytes": len(self.content), "source": self.source,
                "origin": self.origin}  # fmt: skip


def _record(row: RobotsFileRow) -> RobotsRecord:
    return RobotsRecord(row.host, row.scheme, row.fetched_at, row.status, bytes(row.content), row.source, row.origin)


class RobotsStore:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.settings = rt.settings.robots

    def latest(self, session: Session, host: str) -> RobotsRecord | None:
        """The host's newest robots.txt record, or None when it has none."""
        row = session.scalars(
            select(RobotsFileRow).where(RobotsFileRow.host == host.lower())
            .order_by(RobotsFileRow.fetched_at.desc(), RobotsFileRow.id.desc()).limit(1)
        ).first()  # fmt: skip
        return _record(row) if row is not None else None

    def imported(self, host: str, content: bytes, status: int = 200, *, origin: str = "",
                 scheme: str = "http", at: datetime | None = None) -> RobotsRecord:  # fmt: skip
        """Record ``content`` as the robots.txt ``host`` served at ``at`` (default now) with ``status``."""
        return self._save(host, scheme, at or self.rt.clock.now(), status, content[:MAX_BYTES], "import", origin)

    def fetch(self, host: str, scheme: str = "http") -> RobotsRecord:
        """Fetch ``scheme://host/robots.txt`` now and record what came back (status 0 when unreachable)."""
        url = f"{scheme}://{host}/robots.txt"
        status, body = 0, b""
        try:
            with httpx.Client(headers={"User-Agent": self.settings.user_agent}, timeout=self.settings.timeout,
                              follow_redirects=True, max_redirects=5, trust_env=False) as client, \
                    client.stream("GET", url) as response:  # fmt: skip
                status = response.status_code
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= MAX_BYTES:
                        break
                body = b"".join(chunks)[:MAX_BYTES]
        except httpx.TooManyRedirects:
            status = 310  # more than five redirects: RFC 9309 2.3.1.2 lets a crawler take that as unavailable
        except httpx.HTTPError:
            status = 0
        return self._save(host, scheme, self.rt.clock.now(), status, body, "fetch", url)

    def ensure(self, host: str, scheme: str = "http") -> RobotsRecord:
        """The host's record if it is younger than ``robots.cache_hours``, else a new fetch."""
        with self.rt.sessions() as s:
            record = self.latest(s, host)
        if record is not None and self.rt.clock.now() - record.fetched_at < timedelta(hours=self.settings.cache_hours):
            return record
        return self.fetch(host, scheme)

    def _save(self, host: str, scheme: str, at: datetime, status: int, content: bytes, source: str,
              origin: str) -> RobotsRecord:  # fmt: skip
        row = RobotsFileRow(host=host.lower(), scheme=scheme, fetched_at=at, status=status, content=content,
                            source=source, origin=origin)  # fmt: skip
        with self.rt.sessions() as s, s.begin():
            s.add(row)
        return RobotsRecord(host.lower(), scheme, at, status, content, source, origin)
