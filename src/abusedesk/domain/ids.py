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


# how _ENCODER writes a value of these exact types (ensure_ascii=False: json's own encode_basestring for text)
_SCALARS: dict[type, Any] = {str: json.encoder.encode_basestring, type(None): lambda _: "null", int: int.__repr__}


def stable_id(prefix: str, *parts: Any) -> str:
    """``prefix`` + 32 hex digits of SHA-256 over the canonical JSON of ``parts``.

    Parts that are all text, None or int (an event's identity, nearly always) are written directly, as the
    encoder writes them (tests/domain/test_ids.py holds the two to the same bytes); the rest go to the encoder.
    """
    try:
        text = "[" + ",".join([_SCALARS[type(part)](part) for part in parts]) + "]"
    except KeyError:
        return f"{prefix}_{sha256_hex(canonical_json(list(parts)))[:32]}"
    return f"{prefix}_{sha256_hex(text.encode())[:32]}"


def new_id(prefix: str) -> str:
    """``prefix`` + 32 random hex digits: for things that are made, not observed (users, tokens)."""
    import secrets

    return f"{prefix}_{secrets.token_hex(16)}"
