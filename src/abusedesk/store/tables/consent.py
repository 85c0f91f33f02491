"""Written consent for load or security testing (clause 1.3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from abusedesk.store.base import Base


class ConsentRow(Base):
    """status: requested → approved | rejected; approved → revoked.

    ``service_ids``: the services the test traffic comes from; ``targets``: the provider's CIDRs or addresses under
    test; ``max_rate``: packets per second toward the targets (None: no limit). Who asked and who decided are
    recorded (``requested_by``, ``decided_by``, ``revoked_by``) with the times.
    """

    __tablename__ = "consents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    service_ids: Mapped[list[Any]] = mapped_column(default=list)
    targets: Mapped[list[Any]] = mapped_column(default=list)  # prefixes or addresses under test
    kind: Mapped[str] = mapped_column(String(20), default="load")  # load | security
    window_from: Mapped[datetime] = mapped_column()
    window_to: Mapped[datetime] = mapped_column()
    max_rate: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    requested_by: Mapped[str] = mapped_column(String(320))
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decided_at: Mapped[datetime | None] = mapped_column()
    revoked_by: Mapped[str | None] = mapped_column(String(320))
    revoked_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column()
