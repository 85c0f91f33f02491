"""The plugin contract for the complaint-mail and XARF parsers: registered, named, documented, deterministic."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event
from abusedesk.parsers.base import Parser
from abusedesk.plugins import BUILTIN_PARSERS, load_parsers, sniff
from tests.parsers.mailsupport import make_report
from tests.parsers.test_fuzz_mail import PARSERS

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


@pytest.mark.parametrize("name", list(PARSERS))
def test_registered_named_documented(name: str) -> None:
    parser = PARSERS[name]
    cls = type(parser)
    assert parser.name == name
    assert re.fullmatch(r"[a-z][a-z0-9_]*", name)
    assert f"{cls.__module__}:{cls.__name__}" in BUILTIN_PARSERS
    assert cls.__doc__ and len(cls.__doc__) > 30
    assert ((cls.__module__ and __import__(cls.__module__, fromlist=["x"]).__doc__) or "").count("False positives") == 1
    cls.Params()  # defaults are enough to construct
    assert isinstance(cls.priority, int)


def test_specific_formats_sniff_before_free_text() -> None:
    order = [p.name for p in load_parsers()]
    for name in ("xarf", "xarf_legacy", "arf", "spamcop", "projecthoneypot", "urlreport", "abusehub"):
        assert order.index(name) < order.index("freetext")
    assert order.index("abusehub") < order.index("shadowserver")  # AbuseHub mails carry the notifier's CSV too
    assert order.index("xarf") < order.index("arf")  # ARF envelopes carrying XARF JSON go to xarf


@pytest.mark.parametrize("name", list(PARSERS))
@pytest.mark.parametrize("data", [b"", b"\n\n", b"{}", b"From: a@example.net\n\n"])
def test_empty_inputs_are_refused_or_empty(name: str, data: bytes) -> None:
    parser = PARSERS[name]
    report = make_report(data)
    parser.recognises(report)
    message = ""
    events: list[Event] = []
    try:
        events = [o for o in parser.parse(report) if isinstance(o, Event)]
    except ParseError as exc:
        message = exc.message
    assert events == []
    assert message == "" or len(message) > 20  # a reason an analyst can read, not a bare code


@pytest.mark.parametrize("name", list(PARSERS))
def test_parsing_is_deterministic(name: str) -> None:
    parser: Parser = PARSERS[name]
    for path in sorted((GOLDEN / name).glob("*.in")):
        runs = []
        for _ in range(2):
            try:
                runs.append(
                    [o.to_dict() if isinstance(o, Event) else o for o in parser.parse(make_report(path.read_bytes()))]
                )
            except ParseError as exc:
                runs.append([exc.message])
        assert runs[0] == runs[1], path.name


@pytest.mark.parametrize("name", list(PARSERS))
def test_each_golden_input_is_sniffed_by_its_parser_when_it_yields_events(name: str) -> None:
    parsers = load_parsers()
    for path in sorted((GOLDEN / name).glob("*.in")):
        report = make_report(path.read_bytes())
        try:
            events = [o for o in PARSERS[name].parse(report) if isinstance(o, Event)]
        except ParseError:
            continue
        if events and "malformed" not in path.name:
            chosen = sniff(report, parsers)
            assert chosen is not None and chosen.name == name, path.name
