"""The parser interface: recognise a raw input by its bytes, and turn it into Events.

A parser is one module and one class with a unique snake_case ``name``, a pydantic ``Params`` with defaults and
a docstring saying what it reads, from whom, and its known false positives. ``parse`` yields Events and
ParseIssues (a bad line is an issue, not a failure); a whole input it cannot read raises ``ParseError`` and the
input goes to quarantine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from email.message import Message
from functools import cached_property
from typing import ClassVar, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from abusedesk.domain.records import Event, ParseIssue, RawInput
from abusedesk.parsers import mime

_V = TypeVar("_V")


class Report:
    """A raw input handed to parsers, with lazily decoded views so sniffing many parsers costs one decode.

    Every parser's ``recognises``, and then the chosen one's ``parse``, reads the same Report: what one of them
    decodes (the MIME parse of a mail, above all) is decoded once and shared by all. Anything a parser derives
    from one input is kept here (:meth:`view`), never on the parser, whose one instance serves every input.
    """

    def __init__(self, raw: RawInput, data: bytes, *, limits: mime.Limits | None = None) -> None:
        self.raw = raw
        self.data = data
        self.limits = limits or mime.Limits()
        self._views: dict[Callable[[Report], object], object] = {}

    @cached_property
    def message(self) -> Message | None:
        """The input as an e-mail message (compat32), or None when it does not look like one.

        The one MIME parse of the input: every mail parser's sniffing and parsing reads this object, so however
        many parsers look at a mail, it is parsed once.
        """
        return mime.parse_message(self.data) if mime.looks_like_mail(self.data) else None

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
        return self.data[:4096]

    @property
    def filename(self) -> str | None:
        return self.raw.filename


class Parser(ABC):
    """Base of every parser. Subclasses set ``name`` and implement ``recognises`` and ``parse``."""

    name: ClassVar[str]
    #: lower runs first when sniffing; specific formats (ARF, XARF) before generic ones (free text)
    priority: ClassVar[int] = 50

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
    return int(v) if v and v.isdigit() and int(v) <= 65535 else None
