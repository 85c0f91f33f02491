"""Reading a feed as a stream of text with bounded memory, decoded exactly as the whole bytes would be.

``mime.decode_bytes`` picks UTF-8 when the *whole* input decodes as UTF-8, else Windows-1252, else Latin-1; a
streamed reader must pick the same codec before it yields its first row, or a report with one stray byte at
its end would read differently streamed and whole. :func:`detect_encoding` makes that choice in one pass over
the bytes (a second pass only when they are not UTF-8); then :func:`iter_lines` gives the lines that
``str.splitlines`` would give, reading a chunk at a time (issue 9 item 3).
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterator
from typing import BinaryIO, TextIO

CHUNK = 1024 * 1024

# the characters str.splitlines ends a line at ("\r\n" is one line end)
_LINE_ENDS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def detect_encoding(opener: Callable[[], BinaryIO]) -> str:
    """The codec ``mime.decode_bytes`` (no declared charset) would use for all the bytes ``opener`` gives; each
    pass opens (and closes) a fresh stream, so the bytes may come from a file or an archive being unpacked."""
    for codec in ("utf-8", "cp1252"):
        decoder = codecs.getincrementaldecoder(codec)()
        try:
            with opener() as stream:
                while chunk := stream.read(CHUNK):
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return codec
    return "latin-1"


def iter_lines(text: TextIO, chunk: int = CHUNK) -> Iterator[str]:
    """The lines of ``text`` without their line ends, as ``text.read().splitlines()`` gives them, a chunk at a time.

    ``text`` must not translate line ends (``newline=""``). The last piece of each chunk waits for the next one:
    it may be an unfinished line, or end in ``\\r`` whose ``\\n`` is in the next chunk.
    """
    pending = ""
    while block := text.read(chunk):
        pieces = (pending + block).splitlines(keepends=True)
        pending = pieces.pop()
        for piece in pieces:
            yield piece.rstrip(_LINE_ENDS)  # exactly its one line end: any of these inside would have ended it
    if pending:
        yield pending.rstrip(_LINE_ENDS)


def strip_bom(lines: Iterator[str], *, keep_empty: bool = True) -> Iterator[str]:
    """The lines with leading U+FEFF removed from the first, as ``text.lstrip("\ufeff")`` would.

    ``keep_empty=False`` for lines that keep their line ends (csv): a first line of nothing but U+FEFF is then the
    whole text, which ``lstrip`` makes empty, so it goes.
    """
    first = True
    for line in lines:
        if first:
            first = False
            line = line.lstrip("\ufeff")
            if not line and not keep_empty:
                continue
        yield line


def open_text(opener: Callable[[], BinaryIO]) -> TextIO:
    """The bytes ``opener`` gives (a file, an archive member) as a text stream decoded as ``mime.decode_bytes``
    would decode them whole, line ends untranslated (``newline=""``)."""
    encoding = detect_encoding(opener)
    return io.TextIOWrapper(opener(), encoding=encoding, newline="")


def stripped_lines(lines: Iterator[str]) -> Iterator[str]:
    """``text.strip().splitlines()`` for the lines of ``text``: leading blank lines dropped, the first line with
    content stripped on the left, the last on the right, blank lines after it dropped.

    Blank lines between two lines with content come out as ``""`` (only their count is kept, so a file of blank
    lines costs no memory).
    """
    it = iter(lines)
    for line in it:
        if line.strip():
            prev = line.lstrip()
            break
    else:
        return
    blanks = 0
    for line in it:
        if line.strip():
            yield prev
            for _ in range(blanks):
                yield ""
            blanks = 0
            prev = line
        else:
            blanks += 1
    yield prev.rstrip()
