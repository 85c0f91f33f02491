"""The robots store: the robots.txt each target host served, when, and with which status (issue 13)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from abusedesk.store.base import Base


class RobotsFileRow(Base):
    """One fetch or import of ``<scheme>://<host>/robots.txt``; the newest row of a host is the one in force.

    ``status`` is the HTTP status (0: unreachable); ``content`` the body as served (at most 500 KiB are kept, all
    RFC 9309 asks a parser to read); ``source`` is ``fetch`` or ``import`` (with the file name in ``origin``).
    """

    __tablename__ = "robots_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    scheme: Mapped[str] = mapped_column(String(10), default="http")
    fetched_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    source: Mapped[str] = mapped_column(String(20))
    origin: Mapped[str] = mapped_column(String(1000), default="")
