"""Deterministic identifiers: the same source and content always give the same id, so replays change nothing."""

from __future__ import annotations

import hashlib
import json
from json import encoder as _json_encoder
from typing import Any

# one encoder for every call: json.dumps builds a new one per call when given options, a fifth of Event.create
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
# JSONEncoder.encode of a list or dict comes down to the C encoder json builds on each call with these same
# settings (markers for the circular check, default=str, no indent, sorted keys); building it here skips the Python
# layers around it, a third of the cost (issue 4). None where the C accelerator is missing.
_C_MAKE_ENCODER: Any = getattr(_json_encoder, "c_make_encoder", None)


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no spaces: the byte form that ids and hashes are computed over."""
    if _C_MAKE_ENCODER is not None and isinstance(value, (list, dict)):
        encode = _C_MAKE_ENCODER(
            {}, str, _json_encoder.encode_basestring, None, ":", ",", True, False, True
        )  # markers, default, string encoder, indent, key and item separators, sort_keys, skipkeys, allow_nan
        return "".join(encode(value, 0)).encode()
    return _ENCODER.encode(value).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stable_id(prefix: str, *parts: Any) -> str:
    """``prefix`` + 32 hex digits of SHA-256 over the canonical JSON of ``parts``."""
    return f"{prefix}_{sha256_hex(canonical_json(list(parts)))[:32]}"
