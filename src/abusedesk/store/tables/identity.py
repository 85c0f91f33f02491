"""Users and their API tokens (domain/identity.py describes roles and service accounts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String
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
    #: the console password as an argon2id hash (``abusedesk user passwd``); None: no console sign-in
    password_hash: Mapped[str | None] = mapped_column(String(200))
    #: the TOTP secret, sealed with the auth key (identity/secondfactor.py); None: not enrolled
    totp_secret: Mapped[str | None] = mapped_column(String(120))
    #: the last TOTP time step accepted: a code is good once (RFC 6238 5.2)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


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


class WebSessionRow(Base):
    """A console or portal sign-in. The cookie holds a random token; the row is keyed by its HMAC (as API tokens
    are), so a copy of the table cannot be replayed as cookies. ``level`` is ``password`` while a second factor is
    still owed and ``full`` once the session may act."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # HMAC-SHA256(auth key, cookie token), hex
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    level: Mapped[str] = mapped_column(String(10))
    csrf: Mapped[str] = mapped_column(String(64))  # the synchroniser token of this session's forms
    created_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(index=True)  # absolute expiry
    client: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")
