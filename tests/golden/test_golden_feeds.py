"""Golden files for the feed and legal-notice parsers: ``tests/golden/<parser>/<case>.in`` → ``<case>.out.json``.

The case name (without ``.in``) is the input's file name, so Shadowserver cases carry their report type in it;
``<case>.meta.json`` adds channel metadata (``feed``, ``kind`` ...). ``UPDATE_GOLDEN=1`` rewrites the outputs.
Truncated and malformed inputs are cases too: their expected output is the ParseError message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event
from abusedesk.parsers.acns import AcnsParser
from abusedesk.parsers.base import Parser
from abusedesk.parsers.dmca import DmcaParser
from abusedesk.parsers.intelmq import IntelmqParser
from abusedesk.parsers.listfeeds import ListFeedParser
from abusedesk.parsers.shadowserver import ShadowserverParser
from tests.parsers.feedsupport import make_report

HERE = Path(__file__).parent


def cases(parser: str) -> list[Path]:
    return sorted((HERE / parser).glob("*.in"))


def outcome(parser: Parser, path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    meta_path = path.with_name(path.name[: -len(".in")] + ".meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    report = make_report(data, path.name[: -len(".in")], **meta)
    out: dict[str, Any] = {"recognised": parser.recognises(report), "events": [], "issues": [], "error": None}
    try:
        for item in parser.parse(report):
            if isinstance(item, Event):
                out["events"].append(item.to_dict())
            else:
                out["issues"].append({"reason": item.reason, "line": item.line})
    except ParseError as exc:
        out["error"] = exc.message
    return out


def check(parser: Parser, path: Path) -> None:
    got = outcome(parser, path)
    expected_path = path.with_name(path.name[: -len(".in")] + ".out.json")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(got, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert expected_path.exists(), f"{expected_path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert got == json.loads(expected_path.read_text())


@pytest.mark.parametrize("path", cases("shadowserver"), ids=lambda p: p.name)
def test_shadowserver_golden(path: Path) -> None:
    check(ShadowserverParser(), path)


@pytest.mark.parametrize("path", cases("acns"), ids=lambda p: p.name)
def test_acns_golden(path: Path) -> None:
    check(AcnsParser(), path)


@pytest.mark.parametrize("path", cases("dmca"), ids=lambda p: p.name)
def test_dmca_golden(path: Path) -> None:
    check(DmcaParser(), path)


@pytest.mark.parametrize("path", cases("intelmq"), ids=lambda p: p.name)
def test_intelmq_golden(path: Path) -> None:
    check(IntelmqParser(), path)


@pytest.mark.parametrize("path", cases("listfeeds"), ids=lambda p: p.name)
def test_listfeeds_golden(path: Path) -> None:
    check(ListFeedParser(), path)


def test_every_parser_has_truncated_and_malformed_cases() -> None:
    for parser in ("shadowserver", "acns", "dmca", "intelmq", "listfeeds"):
        names = [p.name for p in cases(parser)]
        assert any("truncated" in n for n in names), parser
        assert any("malformed" in n for n in names), parser
