"""Console and portal sessions: sign-in by password (and TOTP), a session cookie, and the Principal it stands for.

A session is a row of ``web_sessions`` keyed by ``HMAC-SHA256(auth key, cookie token)``: the cookie holds 256
random bits, the table only their keyed hash (as for API tokens), so a copy of the table cannot be turned into
cookies. Sign-in runs in up to two steps:

1. **password**: the user name and password (argon2id). A user whose role is in ``web.totp_roles``, or who has
   a TOTP secret, gets a session of level ``password``, good only for step 2; anyone else a ``full`` session.
   A role that must have a second factor and has none enrolled is refused, naming the command that enrols one.
2. **TOTP**: a code of the user's secret, each time step good once; the ``password`` session is deleted and a
   new ``full`` one made.

Every step that succeeds makes a *new* session token (the id is regenerated at each change of privilege, so a
token planted before sign-in, session fixation, is worth nothing). A session ends after ``web.session_idle_minutes``
unused or ``web.session_absolute_hours`` after sign-in, at sign-out, when the user's password or second factor is
set, or when the user is disabled. Sign-ins and sign-outs are audited; failed attempts are logged (not audited:
an attacker must not be able to grow the audit chain at will) and limited by the caller (web/auth.py).

The Principal of a session has the user's role and customer and both scopes; it is passed to the same services
the API and the CLI call, so a page can do nothing its user could not do with a token.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from abusedesk.domain.errors import Conflict, Unauthenticated
from abusedesk.domain.identity import Principal, Role
from abusedesk.domain.timeutil import as_utc
from abusedesk.evidence import audit
from abusedesk.identity import secondfactor
from abusedesk.identity.service import IdentityService, fold_name
from abusedesk.runtime import Runtime
from abusedesk.store.tables.identity import UserRow, WebSessionRow

log = logging.getLogger(__name__)

FULL = "full"
PASSWORD = "password"  # noqa: S105 - a session level (a second factor is owed), not a secret
#: last_seen_at is written at most this often per session (a page view is not a write)
TOUCH_EVERY = timedelta(seconds=60)
WRONG = "wrong user name or password"


@dataclass(frozen=True, slots=True)
class WebSession:
    """A live session: who, at what level, its CSRF token and the cookie token it was found by."""

    token: str
    principal: Principal
    level: str
    csrf: str
    expires_at: datetime

    @property
    def is_full(self) -> bool:
        return self.level == FULL


class WebSessionService:
    """Sign-in, second factor, the session of a cookie, sign-out."""

    def __init__(self, rt: Runtime, identities: IdentityService | None = None) -> None:
        self.rt = rt
        self.identities = identities or IdentityService(rt)

    # ------------------------------------------------------------------------------------------------ sign-in

    def needs_totp(self, row: UserRow) -> bool:
        return row.role in self.rt.settings.web.totp_roles or row.totp_secret is not None

    def sign_in(
        self, name: str, password: str, *, client: str = "", user_agent: str = "", replacing: str | None = None
    ) -> WebSession:
        """Check a password; a new session (``password`` level when a TOTP code is owed, else ``full``).
        Unauthenticated with one message for every wrong name, password or disabled user."""
        with self.rt.sessions() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == fold_name(name)))
            stored = row.password_hash if row is not None and row.disabled_at is None else None
        if not secondfactor.verify_password(stored, password) or row is None:
            log.warning("console sign-in refused for %r from %s", name[:120], client or "?")
            raise Unauthenticated(WRONG)
        if row.role in (Role.SERVICE.value, Role.INTEGRATION.value):
            raise Unauthenticated(f"user {row.name} is a {row.role} account; it has no console")
        if self.needs_totp(row) and row.totp_secret is None:
            raise Conflict(
                f"user {row.name} ({row.role}) must sign in with a second factor and has none enrolled; an admin "
                f"runs `abusedesk user totp {row.name}` and hands over the secret"
            )
        if stored is not None and secondfactor.needs_rehash(stored):
            self._rehash(row.id, password)
        level = PASSWORD if self.needs_totp(row) else FULL
        return self._open(row, level, client=client, user_agent=user_agent, replacing=replacing)

    def second_factor(self, token: str, code: str) -> WebSession:
        """Check a TOTP code for a ``password`` session: a new ``full`` session, the old one deleted."""
        current = self.authenticate(token, level=PASSWORD)
        now = self.rt.clock.now()
        with self.rt.sessions() as s, s.begin():
            row = s.get(UserRow, current.principal.id, with_for_update=True)
            if row is None:
                raise Unauthenticated("not signed in (or the session ended)")
            secret = self.identities.totp_secret(row)
            step = secondfactor.match_totp(secret, code, now.timestamp(), row.totp_last_step) if secret else None
            if step is None:
                log.warning("console TOTP code refused for %s", current.principal.id)
                raise Unauthenticated("that code is not right (or was used already); type the current one")
            row.totp_last_step = step
        return self._open(row, FULL, replacing=token)

    def _open(
        self, row: UserRow, level: str, *, client: str = "", user_agent: str = "", replacing: str | None = None
    ) -> WebSession:
        token = secrets.token_urlsafe(32)
        now = self.rt.clock.now()
        expires = now + timedelta(hours=self.rt.settings.web.session_absolute_hours)
        csrf = secrets.token_urlsafe(32)
        with self.rt.sessions() as s, s.begin():
            if replacing:
                s.execute(delete(WebSessionRow).where(WebSessionRow.id == self.identities.digest(replacing)))
            # sessions past their absolute expiry go at each sign-in (an indexed delete; idle ones when presented)
            s.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= now))
            s.add(
                WebSessionRow(
                    id=self.identities.digest(token), user_id=row.id, level=level, csrf=csrf, created_at=now,
                    last_seen_at=now, expires_at=expires, client=client[:64], user_agent=user_agent[:200],
                )
            )  # fmt: skip
            if level == FULL:
                audit.append(
                    s, at=now, actor=row.id, action="session.signed_in", subject_type="user", subject_id=row.id,
                    payload={"client": client[:64], "second_factor": self.needs_totp(row)},
                )  # fmt: skip
        return WebSession(token, _principal(row), level, csrf, expires)

    def _rehash(self, user_id: str, password: str) -> None:
        with self.rt.sessions() as s, s.begin():
            row = s.get(UserRow, user_id)
            if row is not None:
                row.password_hash = secondfactor.hash_password(password)

    # ------------------------------------------------------------------------------------------------ use

    def authenticate(self, token: str | None, *, level: str = FULL) -> WebSession:
        """The live session of a cookie token at ``level``; Unauthenticated when it is missing, unknown, idle
        too long, past its absolute expiry, of another level, or its user is disabled."""
        if not token or len(token) > 100:
            raise Unauthenticated("not signed in")
        digest = self.identities.digest(token)
        now = self.rt.clock.now()
        with self.rt.sessions() as s:
            found = s.execute(
                select(WebSessionRow, UserRow)
                .join(UserRow, UserRow.id == WebSessionRow.user_id)
                .where(WebSessionRow.id == digest)
            ).first()
            if found is None:
                raise Unauthenticated("not signed in (or the session ended)")
            session, user = found
            idle = timedelta(minutes=self.rt.settings.web.session_idle_minutes)
            seen = as_utc(session.last_seen_at)
            if as_utc(session.expires_at) <= now or seen + idle <= now or user.disabled_at is not None:
                s.execute(delete(WebSessionRow).where(WebSessionRow.id == digest))
                s.commit()
                raise Unauthenticated("the session is over; sign in again")
            if session.level != level:
                raise Unauthenticated("this session has not finished signing in")
            out = WebSession(token, _principal(user), session.level, session.csrf, as_utc(session.expires_at))
            if now - seen >= TOUCH_EVERY:
                session.last_seen_at = now
                s.commit()
            return out

    def sign_out(self, token: str | None) -> None:
        if not token:
            return
        digest = self.identities.digest(token)
        now = self.rt.clock.now()
        with self.rt.sessions() as s, s.begin():
            row = s.get(WebSessionRow, digest)
            if row is None:
                return
            s.delete(row)
            if row.level == FULL:
                audit.append(
                    s, at=now, actor=row.user_id, action="session.signed_out", subject_type="user",
                    subject_id=row.user_id, payload={},
                )  # fmt: skip

    def purge(self) -> int:
        """Delete sessions past their absolute expiry now (each sign-in does it too)."""
        with self.rt.sessions() as s, s.begin():
            result = s.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= self.rt.clock.now()))
            return int(getattr(result, "rowcount", 0) or 0)


def _principal(row: UserRow) -> Principal:
    return Principal(id=row.id, name=row.name, role=Role(row.role), customer_id=row.customer_id)
