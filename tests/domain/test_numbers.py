"""Numbers outsiders write: ASCII digits or nothing (the fuzzer's superscript port, CI run of 2026-12-07)."""

from __future__ import annotations

import pytest

from abusedesk.domain.numbers import ascii_uint, port_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("22", 22),
        ("0080", 80),
        ("", None),
        (None, None),
        ("2²", None),
        ("٣", None),
        ("-1", None),
        (" 1", None),
    ],
)
def test_ascii_uint_takes_ascii_digits_only(text: str | None, expected: int | None) -> None:
    assert ascii_uint(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("65535", 65535), ("65536", None), ("0", 0), ("¹", None)])
def test_port_number_is_in_range(text: str, expected: int | None) -> None:
    assert port_number(text) == expected
