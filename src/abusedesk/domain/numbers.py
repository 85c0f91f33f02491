"""Numbers written in text by outsiders: ASCII digits only.

``str.isdigit`` is true for superscripts and other Unicode digits that ``int`` refuses (``'2²'``) or reads in another
script (``'٣'``); a parser that guards ``int(x)`` with it crashes on the first such report. These are the guards.
"""

from __future__ import annotations


def ascii_uint(text: str | None) -> int | None:
    """The non-negative integer ``text`` spells in ASCII digits, or None for anything else (empty, signs, spaces)."""
    if not text or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def port_number(text: str | None) -> int | None:
    """A port number 0-65535 written in ASCII digits, or None."""
    n = ascii_uint(text)
    return n if n is not None and n <= 65535 else None
