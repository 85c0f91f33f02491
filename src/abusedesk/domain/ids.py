"""Deterministic identifiers: the same source and content always give the same id, so replays change nothing."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# one encoder for every call: json.dumps builds a new one per call when given options, a fifth of Event.create
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no spaces: the byte form that ids and hashes are computed over."""
    return _ENCODER.encode(value).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stable_id(prefix: str, *parts: Any) -> str:
    """``prefix`` + 32 hex digits of SHA-256 over the canonical JSON of ``parts``."""
    return f"{prefix}_{sha256_hex(canonical_json(list(parts)))[:32]}"
