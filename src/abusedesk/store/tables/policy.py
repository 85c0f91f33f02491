"""Every policy version ever loaded, so a case can cite the exact text in force when it opened."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from abusedesk.store.base import Base


class PolicyVersionRow(Base):
    __tablename__ = "policy_versions"
    version: Mapped[str] = mapped_column(String(80), primary_key=True)  # "<policy id>@<sha256[:12]>"
    policy_id: Mapped[str] = mapped_column(String(80))
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column()
