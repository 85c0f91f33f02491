"""Users and their API tokens (domain/identity.py describes roles and service accounts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from abusedesk.store.base import Base


class UserRow(Base):
    """A person who acts on the desk: one role; a customer's users are bound to one customer id."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # us_...: what audit entries name
    name: Mapped[str] = mapped_column(String(120), unique=True)  # stored folded (casefold, trimmed)
    role: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(120))
    disabled_at: Mapped[datetime | None] = mapped_column()


class ApiTokenRow(Base):
    """An API token, stored as HMAC-SHA256(server key, token): the token itself is shown once and never kept."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # tk_...: what `token revoke` takes
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(120), default="")
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
