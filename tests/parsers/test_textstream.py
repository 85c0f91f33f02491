"""parsers.textstream: a stream read a chunk at a time gives what the whole text gives (issue 9 item 3)."""

from __future__ import annotations

import io
import random

import pytest

from abusedesk.parsers import mime, textstream

pytestmark = pytest.mark.unit

# line ends of every kind, BOMs, white space and a character outside Latin-1
_ALPHABET = [
    "a",
    "b",
    " ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\v",
    "\f",
    "\x1c",
    "\x85",
    "\u2028",
    "\ufeff",
    "é",
    "€",
    "{",
    ",",
]


def _texts(seed: int, count: int = 300) -> list[str]:
    rng = random.Random(seed)
    out = ["", "\n", "\r", "\r\n", "\ufeff", "\ufeff\n", "\ufeff\ufeffa\r", "a\r\nb", "  \n x \n\n  "]
    out += ["".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 60))) for _ in range(count)]
    return out


def _stream(text: str) -> io.StringIO:
    return io.StringIO(text, newline="")


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1024])
def test_iter_lines_is_splitlines(chunk: int) -> None:
    for text in _texts(chunk):
        assert list(textstream.iter_lines(_stream(text), chunk)) == text.splitlines(), repr(text)


def test_strip_bom_is_lstrip_then_splitlines() -> None:
    for text in _texts(11):
        streamed = list(textstream.strip_bom(textstream.iter_lines(_stream(text), 3)))
        expected = text.lstrip("\ufeff").splitlines()
        # the one difference: a text of nothing but U+FEFF is one empty line, which every line reader skips
        assert streamed == expected or (streamed == [""] and expected == []), repr(text)


def test_strip_bom_for_csv_is_what_stringio_gives() -> None:
    for text in _texts(12):
        streamed = list(textstream.strip_bom(iter(_stream(text)), keep_empty=False))
        assert streamed == list(_stream(text.lstrip("\ufeff"))), repr(text)


def test_stripped_lines_is_strip_then_splitlines() -> None:
    for text in _texts(13):
        streamed = list(textstream.stripped_lines(textstream.iter_lines(_stream(text), 2)))
        expected = text.strip().splitlines()
        assert len(streamed) == len(expected), repr(text)
        # blank lines between lines with content come out empty: only their count matters to the readers
        assert all(s == e or (not s and not e.strip()) for s, e in zip(streamed, expected, strict=True)), repr(text)


@pytest.mark.parametrize(
    ("data", "codec"),
    [
        (b"plain ascii\n", "utf-8"),
        ("caf\u00e9 \u20ac\n".encode(), "utf-8"),
        ("caf\u00e9 \u20ac\n".encode("cp1252"), "cp1252"),
        (b"ok\n" * 5000 + b"\x81\x8d", "latin-1"),  # bytes cp1252 has no character for, at the very end
        (("x" * 2_000_000 + "\u00e9").encode("cp1252"), "cp1252"),  # past the first chunk read
    ],
    ids=["ascii", "utf-8", "cp1252", "latin-1", "late-byte"],
)
def test_detect_encoding_is_decode_bytes_choice(data: bytes, codec: str) -> None:
    found = textstream.detect_encoding(lambda: io.BytesIO(data))
    assert found == codec
    assert data.decode(found) == mime.decode_bytes(data)
    with textstream.open_text(lambda: io.BytesIO(data)) as text:
        assert text.read() == mime.decode_bytes(data)
