"""Written consent for load or security testing (clause 1.3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from abusedesk.store.base import Base


class ConsentRow(Base):
    """status: requested → approved | rejected; approved → revoked."""

    __tablename__ = "consents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    service_id: Mapped[str | None] = mapped_column(String(64))
    targets: Mapped[list[Any]] = mapped_column(default=list)  # prefixes or host names under test
    kind: Mapped[str] = mapped_column(String(20), default="load")  # load | security
    window_from: Mapped[datetime] = mapped_column()
    window_to: Mapped[datetime] = mapped_column()
    max_rate: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    requested_by: Mapped[str] = mapped_column(String(320))
    decided_by: Mapped[str | None] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column()
