"""Golden files for the complaint-mail and XARF parsers: ``tests/golden/<parser>/<case>.in`` → ``.out.json``.

Inputs use documentation addresses only. Each parser has well-formed, truncated and malformed cases; the
expected output of an unreadable input is the ParseError message. ``UPDATE_GOLDEN=1`` rewrites the outputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event
from abusedesk.parsers.arf import ArfParser
from abusedesk.parsers.base import Parser
from abusedesk.parsers.freetext import FreetextParser
from abusedesk.parsers.honeypot import HoneypotParser
from abusedesk.parsers.spamcop import SpamcopParser
from abusedesk.parsers.urlreport import UrlReportParser
from abusedesk.parsers.xarf import XarfParser
from abusedesk.parsers.xarf_legacy import XarfLegacyParser
from tests.parsers.mailsupport import make_report

HERE = Path(__file__).parent
MAIL_PARSERS: dict[str, type[Parser]] = {
    "arf": ArfParser,
    "xarf_legacy": XarfLegacyParser,
    "xarf": XarfParser,
    "spamcop": SpamcopParser,
    "urlreport": UrlReportParser,
    "freetext": FreetextParser,
    "projecthoneypot": HoneypotParser,
}


def cases(parser: str) -> list[Path]:
    return sorted((HERE / parser).glob("*.in"))


def outcome(parser: Parser, path: Path) -> dict[str, Any]:
    report = make_report(path.read_bytes(), path.name[: -len(".in")])
    out: dict[str, Any] = {"recognised": parser.recognises(report), "events": [], "issues": [], "error": None}
    try:
        for item in parser.parse(report):
            if isinstance(item, Event):
                out["events"].append(item.to_dict())
            else:
                out["issues"].append({"reason": item.reason, "line": item.line})
    except ParseError as exc:
        out["error"] = exc.message
    return json.loads(json.dumps(out, default=str))


def check(parser: Parser, path: Path) -> None:
    got = outcome(parser, path)
    expected_path = path.with_name(path.name[: -len(".in")] + ".out.json")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(got, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert expected_path.exists(), f"{expected_path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert got == json.loads(expected_path.read_text())


@pytest.mark.parametrize("path", cases("arf"), ids=lambda p: p.name)
def test_arf_golden(path: Path) -> None:
    check(ArfParser(), path)


@pytest.mark.parametrize("path", cases("xarf_legacy"), ids=lambda p: p.name)
def test_xarf_legacy_golden(path: Path) -> None:
    check(XarfLegacyParser(), path)


@pytest.mark.parametrize("path", cases("xarf"), ids=lambda p: p.name)
def test_xarf_golden(path: Path) -> None:
    check(XarfParser(), path)


@pytest.mark.parametrize("path", cases("spamcop"), ids=lambda p: p.name)
def test_spamcop_golden(path: Path) -> None:
    check(SpamcopParser(), path)


@pytest.mark.parametrize("path", cases("urlreport"), ids=lambda p: p.name)
def test_urlreport_golden(path: Path) -> None:
    check(UrlReportParser(), path)


@pytest.mark.parametrize("path", cases("freetext"), ids=lambda p: p.name)
def test_freetext_golden(path: Path) -> None:
    check(FreetextParser(), path)


@pytest.mark.parametrize("path", cases("projecthoneypot"), ids=lambda p: p.name)
def test_projecthoneypot_golden(path: Path) -> None:
    check(HoneypotParser(), path)


def test_every_mail_parser_has_truncated_and_malformed_cases() -> None:
    for parser in MAIL_PARSERS:
        names = [p.name for p in cases(parser)]
        assert any("truncated" in n for n in names), parser
        assert any("malformed" in n for n in names), parser
