"""Times are timezone-aware UTC everywhere; these helpers enforce it at the edges."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Convert an aware datetime to UTC; a naive one is refused (its zone is unknown)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone; abusedesk needs aware UTC times")
    return value.astimezone(UTC)


def parse_time(text: str, *, assume_utc: bool = False) -> datetime:
    """Parse ISO 8601 (``Z`` allowed). A time without zone is refused unless ``assume_utc``."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    value = datetime.fromisoformat(s)
    if value.tzinfo is None:
        if not assume_utc:
            raise ValueError(f"time {text!r} has no time zone")
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, microseconds only when present."""
    return as_utc(value).isoformat().replace("+00:00", "Z")
