"""IdentityService: users, API tokens and the one question every request asks: whose token is this?

A token is ``adk_`` + 32 random bytes (URL-safe base64), shown once. The database keeps only
``HMAC-SHA256(auth key, token)``: a keyed hash, not a slow password hash, because the token has 256 bits of
entropy (nothing to guess) and is checked on every request (one HMAC and one indexed lookup). The key is the
setting ``auth_key``, or the file ``auth.key`` in the data directory (made 0600 on first use), so a copy of the
database alone cannot be used to test guessed tokens. Every serve process of one deployment needs the same key.

Users are created, tokens made and revoked by an admin (``Can.USER_ADMIN``); the first admin is made by
:meth:`IdentityService.bootstrap`, which works only while no admin exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from abusedesk.domain.errors import ConfigError, Conflict, Forbidden, NotFound, Unauthenticated
from abusedesk.domain.identity import PERSON_ROLES, SCOPES, Can, Principal, Role, is_service_id
from abusedesk.domain.ids import new_id
from abusedesk.domain.timeutil import as_utc, iso
from abusedesk.evidence import audit
from abusedesk.runtime import Runtime
from abusedesk.store.tables.identity import ApiTokenRow, UserRow
from abusedesk.store.tables.inventory import CustomerRow

TOKEN_PREFIX = "adk_"  # noqa: S105 - the prefix that marks our tokens, not a secret
KEY_FILE = "auth.key"


def fold_name(name: str) -> str:
    """The form a user name is stored and compared in: trimmed, NFKC case-folded ("Alice " == "alice")."""
    import unicodedata

    return unicodedata.normalize("NFKC", name).strip().casefold()


def load_key(rt: Runtime) -> bytes:
    """The HMAC key: the ``auth_key`` setting, else ``data_dir/auth.key`` (32 random bytes, made on first use)."""
    if rt.settings.auth_key is not None:
        value = rt.settings.auth_key.get_secret_value().encode()
        if len(value) < 16:
            raise ConfigError("auth_key is shorter than 16 characters; use a long random value", field="auth_key")
        return value
    path: Path = rt.settings.data_dir / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    return key


@dataclass(frozen=True, slots=True)
class NewToken:
    id: str
    token: str  # shown once
    user_id: str
    expires_at: datetime
    scopes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "id": self.id,
            "user_id": self.user_id,
            "expires_at": iso(self.expires_at),
            "scopes": list(self.scopes),
        }


def user_dict(row: UserRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "customer_id": row.customer_id,
        "created_at": iso(row.created_at),
        "created_by": row.created_by,
        "disabled": row.disabled_at is not None,
        "password": row.password_hash is not None,
        "totp": row.totp_secret is not None,
    }


_LOOKUP = (
    select(
        ApiTokenRow.expires_at,
        ApiTokenRow.revoked_at,
        ApiTokenRow.scopes,
        UserRow.id.label("user_id"),
        UserRow.name,
        UserRow.role,
        UserRow.customer_id,
        UserRow.disabled_at,
    )
    .join(UserRow, UserRow.id == ApiTokenRow.user_id)
    .where(ApiTokenRow.digest == bindparam("digest"))
)


class IdentityService:
    """Users and tokens; :meth:`authenticate` turns a bearer token into a :class:`Principal`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._key = load_key(rt)
        #: digest -> (monotonic time it is good until, principal, token expiry)
        self._cache: dict[str, tuple[float, Principal, datetime]] = {}

    def digest(self, token: str) -> str:
        return hmac.new(self._key, token.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()

    def report_token(self, reference: str) -> str:
        """The token that shows a report's status to whoever submitted it (given once, in the submission's
        answer): keyed by the server's key, so only the submitter (and staff) can read a report's status."""
        return "rpt_" + hmac.new(self._key, b"report:" + reference.encode(), hashlib.sha256).hexdigest()[:40]

    def is_report_token(self, reference: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.report_token(reference), str(token))

    # --------------------------------------------------------------------------------------------- authenticate

    def cached(self, token: str, digest: str | None = None) -> Principal | None:
        """The principal of a token checked within ``token_cache_seconds``, without any I/O; None otherwise."""
        hit = self._cache.get(digest or self.digest(token))
        if hit is not None and hit[0] > time.monotonic() and hit[2] > self.rt.clock.now():
            return hit[1]
        return None

    def authenticate(self, token: str | None) -> Principal:
        """The principal a token stands for; Unauthenticated (401 at the API) if it is missing, unknown, expired,
        revoked, or its user is disabled.

        One HMAC and one indexed query, sent outside a transaction (autocommit: no BEGIN/ROLLBACK round trips).
        A token seen in the last ``token_cache_seconds`` (setting; 0 turns it off) is answered from memory; this
        process forgets a token it revokes, or a user it disables, at once, other processes within that time.
        """
        if not token:
            raise Unauthenticated("no API token given (Authorization: Bearer TOKEN, or ABUSEDESK_TOKEN for the CLI)")
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise Unauthenticated("the API token is not one this desk issued")
        digest = self.digest(token)
        now = self.rt.clock.now()
        tick = time.monotonic()
        known = self.cached(token, digest)
        if known is not None:
            return known
        with self.rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            row = conn.execute(_LOOKUP, {"digest": digest}).first()
        if row is None:
            raise Unauthenticated("the API token is not one this desk issued (or it was deleted)")
        expires_at = as_utc(row.expires_at)
        if row.revoked_at is not None:
            raise Unauthenticated(f"the API token was revoked at {iso(as_utc(row.revoked_at))}")
        if expires_at <= now:
            raise Unauthenticated(f"the API token expired at {iso(expires_at)}; ask an admin for a new one")
        if row.disabled_at is not None:
            raise Unauthenticated(f"user {row.name} is disabled")
        scopes = row.scopes if isinstance(row.scopes, list) else json.loads(row.scopes)
        principal = Principal(
            id=row.user_id, name=row.name, role=Role(row.role), customer_id=row.customer_id, scopes=frozenset(scopes)
        )
        ttl = self.rt.settings.token_cache_seconds
        if ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (tick + ttl, principal, expires_at)
        return principal

    # --------------------------------------------------------------------------------------------- users

    def bootstrap(self, name: str) -> tuple[dict[str, Any], NewToken]:
        """Make the first admin and a token for it; Conflict once an admin exists (then an admin adds users)."""
        with self.rt.sessions() as s:
            admins = s.scalar(select(func.count()).select_from(UserRow).where(UserRow.role == Role.ADMIN.value))
        if admins:
            raise Conflict("an admin exists already; an admin adds users with `abusedesk user add` (ABUSEDESK_TOKEN)")
        user = self._add(name, Role.ADMIN, None, created_by="bootstrap")
        token = self._token(user["id"], label="bootstrap", scopes=SCOPES, days=None)
        return user, token

    def add_user(self, by: Principal, name: str, role: str, customer_id: str | None = None) -> dict[str, Any]:
        by.require(Can.USER_ADMIN)
        try:
            r = Role(role)
        except ValueError:
            r = None
        if r not in PERSON_ROLES or r is None:
            raise Conflict(f"{role!r} is not a role; the roles are {', '.join(PERSON_ROLES)}")
        return self._add(name, r, customer_id, created_by=by.id)

    def _add(self, name: str, role: Role, customer_id: str | None, *, created_by: str) -> dict[str, Any]:
        folded = fold_name(name)
        if not folded or len(folded) > 120 or any(c.isspace() for c in folded) or not folded.isprintable():
            raise Conflict(f"user name {name!r} must be 1 to 120 printable characters without spaces")
        if is_service_id(folded) or ":" in folded:
            raise Conflict(f"user name {name!r} is reserved: names with ':' belong to service accounts")
        if role is Role.CUSTOMER and not customer_id:
            raise Conflict("a customer user needs --customer ID (the customer it belongs to)")
        if role is not Role.CUSTOMER and customer_id:
            raise Conflict(f"only customer users are bound to a customer; {role} sees all")
        now = self.rt.clock.now()
        try:
            with self.rt.sessions() as s, s.begin():
                if customer_id and s.get(CustomerRow, customer_id) is None:
                    raise NotFound(f"customer {customer_id!r} is not in the inventory (`abusedesk inventory import`)")
                row = UserRow(
                    id=new_id("us"),
                    name=folded,
                    role=role.value,
                    customer_id=customer_id,
                    created_at=now,
                    created_by=created_by,
                    disabled_at=None,
                )
                s.add(row)
                s.flush()
                audit.append(
                    s,
                    at=now,
                    actor=created_by,
                    action="user.added",
                    subject_type="user",
                    subject_id=row.id,
                    payload={"name": folded, "role": role.value, "customer_id": customer_id},
                )
                return user_dict(row)
        except IntegrityError:
            raise Conflict(f"user {folded!r} exists already") from None

    def list_users(self, by: Principal) -> list[dict[str, Any]]:
        by.require(Can.USER_ADMIN)
        with self.rt.sessions() as s:
            return [user_dict(u) for u in s.scalars(select(UserRow).order_by(UserRow.name))]

    def disable_user(self, by: Principal, name: str) -> dict[str, Any]:
        by.require(Can.USER_ADMIN)
        now = self.rt.clock.now()
        with self.rt.sessions() as s, s.begin():
            row = self._user(s, name)
            if row.id == by.id:
                raise Conflict("an admin cannot disable itself; another admin can")
            row.disabled_at = row.disabled_at or now
            self._cache.clear()
            audit.append(
                s, at=now, actor=by.id, action="user.disabled", subject_type="user", subject_id=row.id, payload={}
            )
            return user_dict(row)

    def _user(self, s: Any, name: str) -> UserRow:
        row = s.scalar(select(UserRow).where((UserRow.name == fold_name(name)) | (UserRow.id == name.strip())))
        if row is None:
            raise NotFound(f"user {name!r} does not exist (`abusedesk user list`)")
        assert isinstance(row, UserRow)
        return row

    # --------------------------------------------------------------------------------------------- console

    def _self_or_admin(self, by: Principal, row: UserRow, what: str) -> None:
        if row.id != by.id:
            by.require(Can.USER_ADMIN)
        elif "write" not in by.scopes:
            raise Forbidden(f"a read-scope token cannot {what}")

    def set_password(self, by: Principal, name: str, password: str) -> dict[str, Any]:
        """Set ``name``'s console password (an admin for anyone, a user for itself); ends its console sessions."""
        from abusedesk.identity import secondfactor

        digest = secondfactor.hash_password(password)  # before the transaction: argon2 takes ~50 ms

        def change(row: UserRow) -> dict[str, Any]:
            row.password_hash = digest
            return {}

        return self._credential(by, name, "set a password", "user.password_set", change)

    def enrol_totp(self, by: Principal, name: str, *, issuer: str = "abusedesk") -> dict[str, Any]:
        """A new TOTP secret for ``name`` (enrol, or reset a lost one): returned once, as text and as an
        ``otpauth://`` URI for an authenticator app; the table keeps it sealed. Ends the user's console sessions."""
        from abusedesk.identity import secondfactor

        secret = secondfactor.new_totp_secret()

        def change(row: UserRow) -> dict[str, Any]:
            row.totp_secret = secondfactor.seal(self._key, row.id, secret)
            row.totp_last_step = None
            return {
                "secret": secondfactor.secret_text(secret),
                "uri": secondfactor.provisioning_uri(secret, row.name, issuer),
            }

        return self._credential(by, name, "enrol a second factor", "user.totp_enrolled", change)

    def _credential(
        self, by: Principal, name: str, what: str, action: str, change: Callable[[UserRow], dict[str, Any]]
    ) -> dict[str, Any]:
        """Change a console credential of ``name`` (an admin, or the user itself with a write token), end the
        user's console sessions, audit it; one transaction."""
        from abusedesk.store.tables.identity import WebSessionRow

        now = self.rt.clock.now()
        with self.rt.sessions() as s, s.begin():
            row = self._user(s, name)
            self._self_or_admin(by, row, what)
            shown = change(row)
            ended = s.query(WebSessionRow).filter(WebSessionRow.user_id == row.id).delete()
            audit.append(
                s, at=now, actor=by.id, action=action, subject_type="user", subject_id=row.id,
                payload={"sessions_ended": ended},
            )  # fmt: skip
            return user_dict(row) | shown | {"sessions_ended": ended}

    def totp_secret(self, row: UserRow) -> bytes | None:
        """The user's TOTP secret unsealed (None if not enrolled)."""
        from abusedesk.identity import secondfactor

        return secondfactor.unseal(self._key, row.id, row.totp_secret) if row.totp_secret else None

    # --------------------------------------------------------------------------------------------- tokens

    def create_token(
        self,
        by: Principal,
        user: str,
        *,
        scopes: tuple[str, ...] = SCOPES,
        days: int | None = None,
        label: str = "",
    ) -> NewToken:
        """A new token for ``user`` (an admin for anyone; anyone for themself, never wider than their own)."""
        with self.rt.sessions() as s:
            row = self._user(s, user)
            user_id, disabled = row.id, row.disabled_at is not None
        if user_id != by.id:
            by.require(Can.USER_ADMIN)
        elif "write" in scopes and "write" not in by.scopes:
            raise Forbidden("a read-scope token cannot make a write-scope token")
        if disabled:
            raise Conflict(f"user {user!r} is disabled; no new tokens")
        bad = [x for x in scopes if x not in SCOPES]
        if bad or not scopes:
            raise Conflict(f"scopes must be among {', '.join(SCOPES)}, not {', '.join(bad) or 'none'}")
        return self._token(user_id, label=label, scopes=scopes, days=days, by=by.id)

    def _token(
        self, user_id: str, *, label: str, scopes: tuple[str, ...], days: int | None, by: str = "bootstrap"
    ) -> NewToken:
        token = TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        now = self.rt.clock.now()
        expires = now + timedelta(days=days or self.rt.settings.token_lifetime_days)
        with self.rt.sessions() as s, s.begin():
            row = ApiTokenRow(
                id=new_id("tk"),
                digest=self.digest(token),
                user_id=user_id,
                label=label,
                scopes=sorted(scopes),
                created_at=now,
                expires_at=expires,
                revoked_at=None,
            )
            s.add(row)
            audit.append(
                s,
                at=now,
                actor=by,
                action="token.created",
                subject_type="token",
                subject_id=row.id,
                payload={"user": user_id, "scopes": sorted(scopes), "expires_at": iso(expires)},
            )
            return NewToken(row.id, token, user_id, expires, tuple(sorted(scopes)))

    def revoke_token(self, by: Principal, token_id: str) -> dict[str, Any]:
        now = self.rt.clock.now()
        with self.rt.sessions() as s, s.begin():
            row = s.get(ApiTokenRow, token_id.strip())
            if row is None:
                raise NotFound(f"token {token_id!r} does not exist (`abusedesk token list`)")
            if row.user_id != by.id:
                by.require(Can.USER_ADMIN)
            row.revoked_at = row.revoked_at or now
            self._cache.clear()
            audit.append(
                s,
                at=now,
                actor=by.id,
                action="token.revoked",
                subject_type="token",
                subject_id=row.id,
                payload={"user": row.user_id},
            )
            return {"id": row.id, "user_id": row.user_id, "revoked_at": iso(row.revoked_at)}

    def list_tokens(self, by: Principal) -> list[dict[str, Any]]:
        with self.rt.sessions() as s:
            q = select(ApiTokenRow, UserRow.name).join(UserRow, UserRow.id == ApiTokenRow.user_id)
            if not by.can(Can.USER_ADMIN):
                q = q.where(ApiTokenRow.user_id == by.id)
            return [
                {
                    "id": t.id,
                    "user_id": t.user_id,
                    "user": name,
                    "label": t.label,
                    "scopes": list(t.scopes),
                    "created_at": iso(t.created_at),
                    "expires_at": iso(t.expires_at),
                    "revoked": t.revoked_at is not None,
                }
                for t, name in s.execute(q.order_by(ApiTokenRow.created_at))
            ]

    def names(self, ids: set[str]) -> dict[str, str]:
        """user id -> name (for timelines people read); service ids are their own names."""
        want = {i for i in ids if i and not is_service_id(i)}
        if not want:
            return {}
        with self.rt.sessions() as s:
            return dict(s.execute(select(UserRow.id, UserRow.name).where(UserRow.id.in_(want))).all())
