"""Signup screening (issue 14): the MX hosts learned to belong to disposable e-mail providers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from abusedesk.store.base import Base


class DisposableMxRow(Base):
    """An MX host that ``mx_min_domains`` or more listed disposable domains use (``abusedesk screen learn-mx``)."""

    __tablename__ = "disposable_mx_hosts"
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    domains: Mapped[list[Any]] = mapped_column(default=list)  # a sample of the listed domains that use it
    domain_count: Mapped[int] = mapped_column(default=0)
    knowledge: Mapped[str] = mapped_column(String(400), default="")  # the lists' versions when it was learned
    learned_at: Mapped[datetime] = mapped_column()
