"""Event and finding ids are stored: canonical_json must keep writing exactly what json.JSONEncoder writes."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abusedesk.domain.ids import canonical_json, stable_id

_REFERENCE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
T = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

VALUES: list[Any] = [
    [],
    {},
    ["ev", "spam", "2026-03-01T10:00:00Z", "arf", None, "192.0.2.7", 25, None, "example.net", True, False],
    {"b": [1, None, {"z": 1, "a": 2}], "a": 'é\u2028\x00"\\', "c": (1, 2)},
    {2: "int key", 1: "int key"},
    {2.5: "float key", -1.5: "float key"},
    {"x": {None: "none key"}, "y": {True: "bool key"}},
    [1.0, -0.0, 1e300, 0.1 + 0.2, math.inf, -math.inf, math.nan, 10**30],
    [T, {"when": T}, b"bytes", {1, 2}.__class__.__name__],
    "a plain string",
    3,
    None,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_canonical_json_is_what_json_writes(value: Any) -> None:
    assert canonical_json(value) == _REFERENCE.encode(value).encode()


def test_canonical_json_refuses_what_json_refuses() -> None:
    mixed = {1: "int key", "a": "str key"}  # sorting the keys fails for both
    with pytest.raises(TypeError):
        _REFERENCE.encode(mixed)
    with pytest.raises(TypeError):
        canonical_json(mixed)


def test_canonical_json_still_refuses_circular_values_and_recovers() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    for _ in range(2):  # no state is left behind by the failed call
        with pytest.raises(ValueError, match="Circular reference"):
            canonical_json(loop)
    assert canonical_json([1, [1]]) == b"[1,[1]]"


def test_stable_id_is_pinned() -> None:
    # ids are stored, so they must never change
    assert (
        stable_id(
            "ev", "spam", "2026-03-01T10:00:00Z", "arf", None, "192.0.2.7", 25, 1.5, {"b": [1, None], "a": "é\u2028"}, T
        )
        == "ev_47f49e24f66ccf76f9338ff151118147"
    )


def _reference_id(prefix: str, *parts: Any) -> str:
    return f"{prefix}_{hashlib.sha256(_REFERENCE.encode(list(parts)).encode()).hexdigest()[:32]}"


_SCALAR = st.one_of(st.none(), st.text(), st.integers(), st.booleans(), st.floats(allow_nan=False))


@given(parts=st.lists(st.one_of(_SCALAR, st.lists(_SCALAR, max_size=3)), max_size=14))
def test_stable_id_writes_what_the_encoder_writes(parts: list[Any]) -> None:
    """Text, None and int parts are written without the encoder: the same bytes, so the same id, for any mix."""
    try:
        expected = _reference_id("ev", *parts)
    except UnicodeEncodeError:  # a lone surrogate: refused on both paths
        with pytest.raises(UnicodeEncodeError):
            stable_id("ev", *parts)
        return
    assert stable_id("ev", *parts) == expected


def test_stable_id_of_plain_parts_is_pinned() -> None:
    assert stable_id("ev", "spam", "2026-03-01T10:00:00Z", "arf", None, "192.0.2.7", 25, 'é\u2028\x00"\\') == (
        _reference_id("ev", "spam", "2026-03-01T10:00:00Z", "arf", None, "192.0.2.7", 25, 'é\u2028\x00"\\')
    )
