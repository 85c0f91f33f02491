"""Golden files for every parser: ``tests/golden/<parser>/<case>.in`` → ``<case>.out.json``, one parametrised test.

The case name (without ``.in``) is the input's file name, so Shadowserver cases carry their report type in it;
``<case>.meta.json`` adds channel metadata (``feed``, ``columns`` ...). Inputs use documentation addresses only.
Every parser has well-formed, truncated and malformed cases; the expected output of an unreadable input is the
ParseError message. ``UPDATE_GOLDEN=1`` rewrites the outputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event
from abusedesk.parsers.abusehub import AbusehubParser
from abusedesk.parsers.acns import AcnsParser
from abusedesk.parsers.arf import ArfParser
from abusedesk.parsers.base import Parser
from abusedesk.parsers.dmca import DmcaParser
from abusedesk.parsers.freetext import FreetextParser
from abusedesk.parsers.honeypot import HoneypotParser
from abusedesk.parsers.intelmq import IntelmqParser
from abusedesk.parsers.listfeeds import ListFeedParser
from abusedesk.parsers.shadowserver import ShadowserverParser
from abusedesk.parsers.spamcop import SpamcopParser
from abusedesk.parsers.urlreport import UrlReportParser
from abusedesk.parsers.xarf import XarfParser
from abusedesk.parsers.xarf_legacy import XarfLegacyParser
from tests.parsers.feedsupport import make_report

HERE = Path(__file__).parent
PARSERS: dict[str, type[Parser]] = {
    "arf": ArfParser,
    "xarf_legacy": XarfLegacyParser,
    "xarf": XarfParser,
    "spamcop": SpamcopParser,
    "urlreport": UrlReportParser,
    "freetext": FreetextParser,
    "projecthoneypot": HoneypotParser,
    "shadowserver": ShadowserverParser,
    "abusehub": AbusehubParser,
    "acns": AcnsParser,
    "dmca": DmcaParser,
    "intelmq": IntelmqParser,
    "listfeeds": ListFeedParser,
}


def cases(parser: str) -> list[Path]:
    return sorted((HERE / parser).glob("*.in"))


def outcome(parser: Parser, path: Path) -> dict[str, Any]:
    name = path.name[: -len(".in")]
    meta_path = path.with_name(name + ".meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    report = make_report(path.read_bytes(), name, **meta)
    out: dict[str, Any] = {"recognised": parser.recognises(report), "events": [], "issues": [], "error": None}
    try:
        for item in parser.parse(report):
            if isinstance(item, Event):
                out["events"].append(item.to_dict())
            else:
                out["issues"].append({"reason": item.reason, "line": item.line})
    except ParseError as exc:
        out["error"] = exc.message
    return dict(json.loads(json.dumps(out, default=str)))


@pytest.mark.parametrize(
    ("parser", "path"),
    [(name, path) for name in PARSERS for path in cases(name)],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_golden(parser: str, path: Path) -> None:
    got = outcome(PARSERS[parser](), path)
    expected_path = path.with_name(path.name[: -len(".in")] + ".out.json")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(got, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert expected_path.exists(), f"{expected_path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert got == json.loads(expected_path.read_text())


@pytest.mark.parametrize("parser", PARSERS)
def test_every_parser_has_truncated_and_malformed_cases(parser: str) -> None:
    names = [p.name for p in cases(parser)]
    assert any("truncated" in n for n in names), parser
    assert any("malformed" in n for n in names), parser


#: golden folders of other outputs than a parser's, with the test that reads them
OTHER_GOLDEN = {"notices": "tests/actions/test_notice_golden.py"}


def test_every_case_folder_is_a_parser() -> None:
    folders = {p.name for p in HERE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders == set(PARSERS) | set(OTHER_GOLDEN)
