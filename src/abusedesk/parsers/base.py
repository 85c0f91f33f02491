"""The parser interface: recognise a raw input by its bytes, and turn it into Events.

A parser is one module and one class with a unique snake_case ``name``, a pydantic ``Params`` with defaults and
a docstring saying what it reads, from whom, and its known false positives. ``parse`` yields Events and
ParseIssues (a bad line is an issue, not a failure); a whole input it cannot read raises ``ParseError`` and the
input goes to quarantine.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from email.message import Message
from functools import cached_property
from typing import Any, BinaryIO, ClassVar, TextIO, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from abusedesk.domain.numbers import port_number
from abusedesk.domain.records import Event, ParseIssue, RawInput
from abusedesk.parsers import mime, textstream

_V = TypeVar("_V")


class Report:
    """A raw input handed to parsers, with lazily decoded views so sniffing many parsers costs one decode.

    Every parser's ``recognises``, and then the chosen one's ``parse``, reads the same Report: what one of them
    decodes (the MIME parse of a mail, above all) is decoded once and shared by all. Anything a parser derives
    from one input is kept here (:meth:`view`), never on the parser, whose one instance serves every input.

    The bytes come either whole (``data``, for small inputs and tests) or from ``opener``, a callable that opens
    the stored input as a binary stream (``RawStore.open``); then ``data`` is read only when a parser asks for it,
    and feed parsers read rows from :meth:`open` / :meth:`text_stream` / :meth:`lines` with memory bounded by a
    row, not by the file (issue 9 item 3). ``budget`` is what the input may still spend on unpacking, decoding
    and time; every parser charges it through ``mime`` and ticks it in its row loops.
    """

    def __init__(
        self,
        raw: RawInput,
        data: bytes | None = None,
        *,
        limits: mime.Limits | None = None,
        opener: Callable[[], BinaryIO] | None = None,
    ) -> None:
        if data is None and opener is None:
            raise ValueError("a Report needs its bytes (data) or a way to open them (opener)")
        self.raw = raw
        self.limits = limits or mime.Limits()
        self._views: dict[Callable[[Report], object], object] = {}
        self.budget = mime.Budget(self.limits)
        self._opener = opener
        self._prefix = b""
        if data is not None:
            self.data = data

    @cached_property
    def data(self) -> bytes:
        """The whole input as bytes (read from the opener on first use)."""
        assert self._opener is not None  # __init__ sets data otherwise
        with self._opener() as fh:
            return fh.read()

    @property
    def size(self) -> int:
        """The input's length in bytes (without reading it)."""
        return len(self.data) if "data" in self.__dict__ else self.raw.size

    def open(self) -> BinaryIO:
        """The input as a binary stream from its start; the caller closes it."""
        if "data" in self.__dict__ or self._opener is None:
            return io.BytesIO(self.data)
        return self._opener()

    def peek(self, n: int) -> bytes:
        """The first ``n`` bytes (fewer when the input is shorter), without reading the rest."""
        if "data" in self.__dict__:
            return self.data[:n]
        if len(self._prefix) < n:
            with self.open() as fh:
                self._prefix = fh.read(n)
        return self._prefix[:n]

    @cached_property
    def encoding(self) -> str:
        """The codec ``text`` decodes with (utf-8, cp1252 or latin-1), found in a pass over the bytes."""
        return textstream.detect_encoding(self.open)

    def text_stream(self) -> TextIO:
        """The input as text, decoded as ``text`` is, line ends kept as they are (``newline=""``, what csv needs)."""
        return io.TextIOWrapper(self.open(), encoding=self.encoding, newline="")

    def lines(self) -> Iterator[str]:
        """``text.splitlines()``, read a chunk at a time."""
        with self.text_stream() as fh:
            yield from textstream.iter_lines(fh)

    @cached_property
    def is_mail(self) -> bool:
        """Whether the input looks like an e-mail message (``message`` is not None), from its first 8 KiB."""
        return mime.looks_like_mail(self.peek(8192))

    @cached_property
    def message(self) -> Message | None:
        """The input as an e-mail message (compat32), or None when it does not look like one.

        The one MIME parse of the input: every mail parser's sniffing and parsing reads this object, so however
        many parsers look at a mail, it is parsed once.
        """
        if not self.is_mail:
            return None
        return mime.parse_message(self.data, max_nesting=self.limits.max_nesting)

    def view(self, read: Callable[[Report], _V]) -> _V:
        """``read(self)``, computed on the first call and kept on this report (keyed by ``read`` itself).

        For what one parser derives from an input and reads both when sniffing and when parsing (the ARF
        parser's header view of a feedback report).
        """
        try:
            return cast(_V, self._views[read])
        except KeyError:
            value = self._views[read] = read(self)
            return value

    @cached_property
    def text(self) -> str:
        """The whole input as text (charset sniffed, undecodable bytes replaced)."""
        return mime.decode_bytes(self.data)

    @cached_property
    def head(self) -> bytes:
        """The first 4 KiB, for cheap sniffing."""
        return self.peek(4096)

    @property
    def filename(self) -> str | None:
        return self.raw.filename


class Parser(ABC):
    """Base of every parser. Subclasses set ``name`` and implement ``recognises`` and ``parse``."""

    name: ClassVar[str]
    #: lower runs first when sniffing; specific formats (ARF, XARF) before generic ones (free text)
    priority: ClassVar[int] = 50
    #: a parser of high-volume telemetry (egress logs) whose input is never turned into Events: the parse stage
    #: hands the stored input on whole under this subject (with its format) to the stage that reads it in columns
    hands_on: ClassVar[str | None] = None

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def recognises(self, report: Report) -> bool:
        """True when this input is in this parser's format (look at bytes and structure, not the channel)."""

    @abstractmethod
    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        """Yield Events (and ParseIssues for bad records); raise ParseError when the input cannot be read."""

    def hand_on(self, report: Report) -> dict[str, Any]:
        """For a parser with ``hands_on``: what the stage that reads the input needs besides its id (a log's
        format); raise ParseError when the input cannot be handed on."""
        return {}


def clean_field(value: str | None, empty: frozenset[str]) -> str | None:
    """A field's text without surrounding space, or None when absent or one of ``empty`` (compared in lower case:
    each feed has its own spellings of "no value")."""
    if value is None:
        return None
    v = value.strip()
    return None if v.lower() in empty else v


def port_field(value: str | None, empty: frozenset[str]) -> int | None:
    """A port number 0-65535, or None when the field is empty or not one."""
    v = clean_field(value, empty)
    return port_number(v)
