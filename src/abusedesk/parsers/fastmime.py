"""A strict, fast reader for the common shape of a MIME mail: one flat multipart, and the header blocks in it.

The standard library's feed parser (``email.feedparser``) walks a mail line by line in Python, bodies included,
which was most of what reading a feedback-loop report cost (~0.35 ms for an 8 KB mail; benchmarks/intake.py).
A parser that needs only headers — the top message's, each part's and an attached message's — can find the parts
by their delimiter lines with ``str.find`` and look fields up with regular expressions, in C, and can stop
reading once it has the parts it wants.

Everything here reproduces what ``email.feedparser`` with the ``compat32`` policy stores: the same
``(name, raw value)`` fields in the same order (the blanks after the colon dropped, continuation lines kept with
their line ends, the line end after the last line dropped), the same header-block and delimiter-line rules (RFC
2046 §5.1.1; the line end before a delimiter belongs to it) and the same content types and parameters as
``Message.get_content_type`` / ``get_param``. :class:`HeaderBlock` answers ``get``, ``get_all`` and ``items`` as a
compat32 ``Message`` does, so ``mime.header`` and friends read it unchanged.

It is strict rather than complete: what it cannot reproduce for certain — a lone CR line end; an mbox ``From ``
line, a nameless field or a continuation line first in a header block; RFC 2231, escaped or unbalanced quoted
parameters; a boundary outside RFC 2046's characters; no delimiter, or the close delimiter first; two delimiters
in a row; non-ASCII bytes in a Content-Type — gives None, and the caller parses the mail with the standard
library instead. Nested multiparts are the caller's to refuse (each :class:`Part` says its content type).
``tests/parsers/test_fastmime.py`` holds all of it to the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import policy
from email.header import Header
from typing import TypeVar, overload

# A header block is the run of lines email.feedparser.headerRE accepts: "name:" (the name possibly empty), an
# mbox "From " line, or a continuation. Read here as a first "name:" line, then up to the first line that is
# neither "name:" nor a continuation; if that is an mbox "From " line or a nameless field, compat32 would drop or
# skip it, which is not reproduced here. (Patterns use [^\n] rather than [^\r\n]: the regex engine runs a single
# excluded character much faster than a class.)
_FIELD_START = re.compile(r"[!-9;-~]+:")
_NOT_FIELD_LINE = re.compile(r"\n(?![ \t]|[!-9;-~]+:)")
# a field value from the colon on, as compat32 stores it once a trailing CR is dropped: blanks after the colon
# dropped, continuation lines kept with their line ends, the final line end dropped (a lone CR never gets here)
_VALUE = r"[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)"
_VALUE_RE = re.compile(_VALUE)
# every field of a block, in order (each match takes its line end, so the next one starts a line)
_FIELDS = re.compile(r"([!-9;-~]+):" + _VALUE + r"\n?")
_LONE_CR = re.compile(r"\r(?!\n)")
# the rest of a delimiter line after "--boundary": "--" for the close delimiter, blanks, the line end
_DELIMITER_TAIL = re.compile(r"(--)?[ \t]*(?:\r?\n|\Z)")
# RFC 2046 bchars without the space (a boundary with blanks is left to the standard library)
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=?]{1,200}")
#: compat32's reading of a field value with non-ASCII bytes
fetch = policy.compat32.header_fetch_parse
_INDEX_UP_TO = 2048  # characters: a longer block is searched per name even when asked for many
_PATTERNS: dict[str, re.Pattern[str]] = {}
_T = TypeVar("_T")


def _stored(name: str, value: str) -> str | Header:
    """A value as ``Message.get`` returns it under compat32, from what the patterns capture (a CR line end kept)."""
    if value.endswith("\r"):
        value = value[:-1]
    return value if value.isascii() else fetch(name, value)


def _pattern(name: str) -> re.Pattern[str]:
    """Fields called ``name`` (any case) that start after a line end: their name as written and raw value."""
    pattern = _PATTERNS.get(name)
    if pattern is None:
        if len(_PATTERNS) > 256:
            _PATTERNS.clear()
        pattern = _PATTERNS[name] = re.compile(r"\n(" + re.escape(name) + r"):" + _VALUE, re.IGNORECASE | re.ASCII)
    return pattern


class HeaderBlock:
    """The fields of one message or part as compat32 stores them, read like a compat32 ``Message``.

    Each look-up is one search for that name (the parsers read a handful of the dozens of fields a mail's top
    headers carry), except in a short block that will be asked for ``many`` names (a feedback report's fields):
    that one is split into an index of lower-case name → values on the first look-up.
    """

    __slots__ = ("_index", "_indexed", "_start", "_stop", "_text")

    def __init__(self, text: str, start: int, stop: int, *, many: bool = False) -> None:
        self._text, self._start, self._stop = text, start, stop
        self._index: dict[str, list[str | Header]] | None = None
        self._indexed = many and stop - start <= _INDEX_UP_TO

    def _search(self, name: str) -> list[str | Header]:
        """The values of the fields called ``name``, in order (a block always follows a line end)."""
        pattern = _PATTERNS.get(name) or _pattern(name)
        return [_stored(k, v) for k, v in pattern.findall(self._text, self._start - 1, self._stop)]

    def mapping(self) -> dict[str, list[str | Header]]:
        """Lower-case name → every value of that name, in order (as ``get_all`` returns them); do not change it."""
        index = self._index
        if index is None:
            index = self._index = {}
            for key, value in _FIELDS.findall(self._text, self._start, self._stop):
                lower = key.lower()
                item = _stored(key, value)
                if lower in index:
                    index[lower].append(item)
                else:
                    index[lower] = [item]
        return index

    def raw_items(self) -> list[tuple[str, str]]:
        """Every field as (name, raw value), in order: what compat32 stores (``Message.set_raw`` takes these)."""
        return [(k, v[:-1] if v.endswith("\r") else v) for k, v in _FIELDS.findall(self._text, self._start, self._stop)]

    def items(self) -> list[tuple[str, str | Header]]:
        """Every field as (name, value), in order, as ``Message.items`` returns them under compat32."""
        return [(k, _stored(k, v)) for k, v in _FIELDS.findall(self._text, self._start, self._stop)]

    @overload
    def get(self, name: str, failobj: None = None) -> str | Header | None: ...
    @overload
    def get(self, name: str, failobj: _T) -> str | Header | _T: ...
    def get(self, name: str, failobj: object = None) -> object:
        """The first field of that name, as ``Message.get`` returns it under compat32; ``failobj`` if absent."""
        if self._indexed:
            found = self.mapping().get(name.lower())
            return found[0] if found else failobj
        m = (_PATTERNS.get(name) or _pattern(name)).search(self._text, self._start - 1, self._stop)
        return failobj if m is None else _stored(m[1], m[2])

    @overload
    def get_all(self, name: str, failobj: None = None) -> list[str | Header] | None: ...
    @overload
    def get_all(self, name: str, failobj: _T) -> list[str | Header] | _T: ...
    def get_all(self, name: str, failobj: object = None) -> object:
        """Every field of that name, in order, as ``Message.get_all`` returns them under compat32."""
        found = self.mapping().get(name.lower()) if self._indexed else self._search(name)
        return list(found) if found else failobj

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None


def read_block(text: str, start: int, end: int, *, many: bool = False) -> tuple[HeaderBlock, int] | None:
    """The header block at ``start`` (a line start, up to ``end``) and where the body begins; None: not reproduced.

    As ``email.feedparser``: the block is the run of header-shaped lines; an empty line after it is the separator
    and is skipped; any other line starts the body. None for a continuation line first, and for an mbox ``From ``
    line or a nameless field in the block.
    """
    if _FIELD_START.match(text, start, end) is None:
        stop = start
    else:
        found = _NOT_FIELD_LINE.search(text, start, end)
        stop = end if found is None else found.end()
    if text.startswith((" ", "\t", ":", "From "), stop, end):
        return None  # a continuation line first, or a line compat32 drops or skips
    block = HeaderBlock(text, start, stop, many=many)
    if text.startswith("\n", stop, end):
        stop += 1
    elif text.startswith("\r\n", stop, end):
        stop += 2
    return block, stop


def content_type(value: object) -> str | None:
    """``Message.get_content_type`` (outside a digest) for a fetched Content-Type value; None: not ASCII."""
    if value is None:
        return "text/plain"
    if not isinstance(value, str) or not value.isascii():
        return None
    ctype = value.partition(";")[0].strip().lower()
    return ctype if ctype.count("/") == 1 else "text/plain"


def content_params(value: str) -> dict[str, str] | None:
    """The parameters of a Content-Type value as ``Message.get_param`` reads them; None unless plainly written.

    Plainly written: ASCII, no backslash, no RFC 2231 ``*`` names, an even number of quotes in each ``;``
    segment and no ``=`` in the type. Then the standard library's splitting comes down to ``str.split(";")``, and
    a value loses one pair of quotes (or angle brackets).
    """
    if not value.isascii() or "\\" in value:
        return None
    segments = value.split(";")
    if "=" in segments[0] or segments[0].count('"') % 2:
        return None
    params: dict[str, str] = {}
    for segment in segments[1:]:
        if segment.count('"') % 2:
            return None
        name, eq, val = segment.partition("=")
        name = name.strip().lower()
        if "*" in name:
            return None
        val = val.strip() if eq else ""
        if len(val) > 1 and ((val[0] == '"' and val[-1] == '"') or (val[0] == "<" and val[-1] == ">")):
            val = val[1:-1]
        params.setdefault(name, val)
    return params


class Part:
    """One part of a flat multipart: its fields, content type, and where its body begins in the mail's text."""

    __slots__ = ("_end", "_mail", "body_start", "content_type", "headers", "start")

    def __init__(self, mail: Multipart, start: int, headers: HeaderBlock, content_type: str, body_start: int) -> None:
        self._mail, self.start, self.headers, self.content_type, self.body_start = (
            mail,
            start,
            headers,
            content_type,
            body_start,
        )
        self._end: int | None = None

    @property
    def end(self) -> int:
        """Where the part ends: the start of the next delimiter line, or the end of the text."""
        if self._end is None:
            self._end = self._mail.next_delimiter(self.body_start)[0]
        return self._end

    def payload(self) -> str:
        """The body as compat32 stores a leaf part's payload: the line end before the next delimiter dropped."""
        body = self._mail.text[self.body_start : self.end]
        if body.endswith("\r\n"):
            return body[:-2]
        if body.endswith("\n"):
            return body[:-1]
        return body

    def message_headers(self, *, many: bool = False) -> HeaderBlock | None:
        """For a ``message/*`` part: the fields of the message it carries (None: not reproducible)."""
        block = self._mail.block(self.body_start, many=many)
        return None if block is None else block[0]


class Multipart:
    """A top-level multipart mail: its fields, content type and Content-Type parameters; :meth:`parts` reads on."""

    __slots__ = ("_first", "_needle", "content_type", "delimiter", "headers", "params", "text")

    def __init__(
        self, text: str, headers: HeaderBlock, ctype: str, params: dict[str, str], delimiter: str, first: int
    ) -> None:
        self.text, self.headers, self.content_type, self.params, self.delimiter = (
            text,
            headers,
            ctype,
            params,
            delimiter,
        )
        self._needle = "\n" + delimiter
        self._first = first  # where the first part starts (after the first delimiter line)

    def next_delimiter(self, pos: int) -> tuple[int, int, bool]:
        """The first delimiter line from ``pos`` (a line start) on: (start, end, is the close delimiter).

        (length of the text, same, True) when there is none: the last part runs to the end of the text.
        """
        text, delimiter, needle = self.text, self.delimiter, self._needle
        at = pos if text.startswith(delimiter, pos) else text.find(needle, pos) + 1
        while at > 0:
            tail = _DELIMITER_TAIL.match(text, at + len(delimiter))
            if tail is not None:
                return at, tail.end(), tail[1] is not None
            at = text.find(needle, at + len(delimiter)) + 1
        return len(text), len(text), True

    def block(self, start: int, *, many: bool = False) -> tuple[HeaderBlock, int] | None:
        """The header block at ``start`` (a line start inside a part), ending at a delimiter line if one comes first.

        Read up to the end of the text: a delimiter line ends a block anyway, being no field, unless the boundary
        has a colon ("--a:b" has the shape of a field); only then is the next delimiter looked for.
        """
        text = self.text
        block = read_block(text, start, len(text), many=many)
        if block is not None and ":" in self.delimiter:
            end = self.next_delimiter(start)[0]
            if end < block[1]:
                block = read_block(text, start, end, many=many)
        return block

    def parts(self) -> Iterator[Part | None]:
        """The parts, read one at a time as they are asked for; None (and the end) where one is not reproduced."""
        at = self._first
        while True:
            block = self.block(at)
            if block is None:
                yield None
                return
            headers, body_start = block
            if at == body_start and self.next_delimiter(at)[0] == at:
                yield None  # two delimiters in a row (or one at the very end): the feed parser folds them
                return
            ctype = content_type(headers.get("content-type")) if headers._stop > at else "text/plain"
            if ctype is None:
                yield None
                return
            part = Part(self, at, headers, ctype, body_start)
            yield part
            end, after, closing = self.next_delimiter(body_start)
            part._end = end
            if closing:
                return
            at = after


def _text(data: bytes) -> str | None:
    """The bytes as ``mime.parse_message`` reads them (a leading mbox ``From `` line dropped, other bytes escaped),
    after a line end of its own, so that every header block follows one (the mail's text starts at 1).

    None when a CR is not followed by LF: the feed parser ends a line there, this reader does not.
    """
    if data.startswith(b"From "):
        data = data.split(b"\n", 1)[-1]
    text = "\n" + data.decode("ascii", "surrogateescape")
    if "\r" in text and _LONE_CR.search(text):
        return None
    return text


def read_multipart(data: bytes) -> Multipart | None:
    """A mail whose top level is a multipart, up to its first part; None when it is not read for certain.

    The parts are read as they are asked for (:meth:`Multipart.parts`), so a reader that has what it needs can
    stop before the rest of the mail.
    """
    text = _text(data)
    if text is None:
        return None
    n = len(text)
    top = read_block(text, 1, n)
    if top is None:
        return None
    headers, pos = top
    value = headers.get("content-type")
    if not isinstance(value, str) or not value.isascii():
        return None
    ctype = value.partition(";")[0].strip().lower()
    if not ctype.startswith("multipart/") or ctype.count("/") != 1:
        return None
    params = content_params(value)
    if params is None:
        return None
    boundary = params.get("boundary")
    if boundary is None or not _BOUNDARY.fullmatch(boundary):
        return None
    mail = Multipart(text, headers, ctype, params, "--" + boundary, 0)
    _, first, closing = mail.next_delimiter(pos)
    if closing:
        return None  # no delimiter, or the close delimiter first: the whole body is the preamble
    mail._first = first
    return mail


def read_headers(data: bytes) -> HeaderBlock | None:
    """The fields of a mail given as bytes, as ``mime.parse_message`` would read them; None: not reproduced."""
    text = _text(data)
    if text is None:
        return None
    block = read_block(text, 1, len(text))
    return None if block is None else block[0]
