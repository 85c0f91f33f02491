"""Console credentials: argon2id password hashes and TOTP second factors (RFC 6238), no I/O.

**Passwords** are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended option: 64 MiB,
3 passes). A hash made with older parameters is re-hashed at the next good sign-in (:func:`needs_rehash`).
A password must be 12 to 1024 characters; nothing else is demanded (NIST SP 800-63B 5.1.1.2: length, not
composition rules).

**TOTP secrets** are 160 random bits (RFC 4226's recommendation), SHA-1, 6 digits, 30 s steps: what every
authenticator app reads from an ``otpauth://`` URI. The users table keeps the secret *sealed*: XORed with
``HMAC-SHA256(auth key, "totp:" + user id)``, so a copy of the database alone gives no codes (as it gives no
API tokens). A code is accepted for the current step and one step either side (clock drift), and each step only
once per user (``users.totp_last_step``), so a code seen over a shoulder cannot be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from abusedesk.domain.errors import Conflict

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
TOTP_DIGITS = 6
TOTP_STEP = 30
TOTP_BYTES = 20


def check_password_rules(password: str) -> None:
    """Conflict naming the rule a new password breaks."""
    if len(password) < MIN_PASSWORD:
        raise Conflict(f"the password is {len(password)} characters; it needs at least {MIN_PASSWORD}")
    if len(password) > MAX_PASSWORD:
        raise Conflict(f"the password is longer than {MAX_PASSWORD} characters")
    if password != password.strip() and not password.strip():
        raise Conflict("the password is only white space")


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    check_password_rules(password)
    return PasswordHasher().hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; a missing hash still costs one hash (no timing hint of which
    users have a password)."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = PasswordHasher()
    if stored is None or len(password) > MAX_PASSWORD:
        hasher.hash("x" * MIN_PASSWORD)
        return False
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    from argon2 import PasswordHasher

    return PasswordHasher().check_needs_rehash(stored)


def _pad(key: bytes, user_id: str) -> bytes:
    return hmac.new(key, b"totp:" + user_id.encode(), hashlib.sha256).digest()[:TOTP_BYTES]


def new_totp_secret() -> bytes:
    return secrets.token_bytes(TOTP_BYTES)


def seal(key: bytes, user_id: str, secret: bytes) -> str:
    """The form the users table keeps: the secret XOR a pad only the auth key makes, base32."""
    return base64.b32encode(bytes(a ^ b for a, b in zip(secret, _pad(key, user_id), strict=True))).decode()


def unseal(key: bytes, user_id: str, sealed: str) -> bytes:
    raw = base64.b32decode(sealed)
    return bytes(a ^ b for a, b in zip(raw, _pad(key, user_id), strict=True))


def secret_text(secret: bytes) -> str:
    """The secret as an authenticator app takes it typed in (base32, no padding)."""
    return base64.b32encode(secret).decode().rstrip("=")


def provisioning_uri(secret: bytes, name: str, issuer: str) -> str:
    import pyotp

    return pyotp.TOTP(secret_text(secret), digits=TOTP_DIGITS, interval=TOTP_STEP).provisioning_uri(
        name=name, issuer_name=issuer
    )


def totp_code(secret: bytes, at: float) -> str:
    """The code of the step holding Unix time ``at`` (tests and the demo print one)."""
    import pyotp

    return pyotp.TOTP(secret_text(secret), digits=TOTP_DIGITS, interval=TOTP_STEP).at(int(at))


def match_totp(secret: bytes, code: str, at: float, last_step: int | None) -> int | None:
    """The time step ``code`` is good for (now, or one step either side), if later than ``last_step``."""
    import pyotp

    code = code.strip().replace(" ", "")
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret_text(secret), digits=TOTP_DIGITS, interval=TOTP_STEP)
    now_step = int(at) // TOTP_STEP
    for step in (now_step, now_step - 1, now_step + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * TOTP_STEP), code):
            return step
    return None
