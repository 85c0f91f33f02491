"""The Google reference tests (../shared/corpus/robots, transcribed from google/robotstxt) against our matcher.

Every case not marked ``google_only`` must give Google's answer, with certainty (not ``ambiguous``). The
``google_only`` cases rest on Google leniencies RFC 9309 does not require: for each one our answer is pinned here
and explained in docs/reference/robots.md ("Google-only cases").
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from abusedesk.robots import RobotsTxt, is_product_token, path_of
from abusedesk.robots.matcher import _normalise_pattern

pytestmark = [pytest.mark.unit, pytest.mark.corpus]

#: id -> (our allowed, our state) for every google_only case; docs/reference/robots.md says why for each
GOOGLE_ONLY: dict[str, tuple[bool, str]] = {
    "g001": (True, "allowed"), "g002": (True, "allowed"), "g003": (False, "disallowed"), "g004": (True, "allowed"),
    # a line without a colon is not a rule by RFC 9309; Google's reading would decide otherwise -> ambiguous
    "g007": (True, "ambiguous"),
    # 'User-Agent: FOO BAR' is no product token: read by its leading token, so the verdict is ambiguous
    **{f"g0{n}": (True, "ambiguous") for n in (28, 29, 30, 34, 35, 36, 40)},
    **{f"g0{n}": (False, "ambiguous") for n in (31, 32, 33, 37, 38, 39)},
    # the crawler-side 'Foo Bar' is a header: we read its first product ('Foo'), ambiguous by the file's value
    "g041": (True, "ambiguous"),
    # RFC 9309 2.2.2: both sides percent-normalised, so raw UTF-8 and %62%61%7A compare equal to their encodings
    "g064": (True, "allowed"), "g066": (True, "allowed"), "g067": (True, "allowed"),
    # no index.html leniency: 'Allow: /dir/index.html' does not allow '/dir/'
    "g079": (False, "disallowed"), "g080": (False, "disallowed"), "g081": (True, "allowed"),
    "g082": (False, "disallowed"),
    # long lines are not cut (the 500 KiB file limit is the only cut)
    "g083": (True, "allowed"), "g084": (True, "allowed"), "g085": (False, "disallowed"), "g086": (True, "allowed"),
    "g087": (False, "disallowed"),
    "g158": (True, "allowed"),
    # missing colons and typos: strict reading, ambiguous because Google's reading differs
    "g159": (False, "ambiguous"), "g160": (True, "ambiguous"), "g161": (True, "ambiguous"),
}  # fmt: skip


def _cases(corpus: Path) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((corpus / "robots" / "google_cases.json").read_text())
    return cases


def test_every_rfc_case_passes_with_certainty(corpus: Path) -> None:
    failures = []
    for case in _cases(corpus):
        if case["google_only"]:
            continue
        verdict = RobotsTxt(case["robots_txt"]).check(case["user_agent"], case["url"])
        if verdict.allowed != case["allowed"] or verdict.state == "ambiguous":
            failures.append((case["id"], case["note"], verdict))
    assert failures == []
    assert sum(1 for c in _cases(corpus) if not c["google_only"]) == 127


def test_every_google_only_case_has_a_documented_answer(corpus: Path) -> None:
    only = {c["id"]: c for c in _cases(corpus) if c["google_only"]}
    assert set(only) == set(GOOGLE_ONLY)
    docs = (Path(__file__).parents[2] / "docs" / "reference" / "robots.md").read_text()
    named = set(re.findall(r"g\d{3}", docs))
    for first, last in re.findall(r"g(\d{3})–g(\d{3})", docs):
        named.update(f"g{n:03d}" for n in range(int(first), int(last) + 1))
    for cid, case in only.items():
        verdict = RobotsTxt(case["robots_txt"]).check(case["user_agent"], case["url"])
        assert (verdict.allowed, verdict.state) == GOOGLE_ONLY[cid], (cid, case["note"], verdict)
        assert cid in named, f"{cid} is not explained in docs/reference/robots.md"


def test_other_assertions(corpus: Path) -> None:
    data = json.loads((corpus / "robots" / "google_other_assertions.json").read_text())
    for case in data["ua_token_validity"]["cases"]:
        assert is_product_token(case["token"] or "") == case["valid"], case
    for case in data["path_params_query_extraction"]["cases"]:
        assert path_of(case["url"]) == case["path"], case
    for case in data["pattern_escaping"]["cases"]:
        assert _normalise_pattern(case["pattern"]) == case["escaped"], case


def test_line_endings_and_bom_count_the_same_lines(corpus: Path) -> None:
    data = json.loads((corpus / "robots" / "google_other_assertions.json").read_text())
    files = data["parse_level"][0]["files"]
    for name, text in files.items():
        robots = RobotsTxt(text)
        bar = robots.check("bar", "/x")
        assert (bar.allowed, bar.line) == (False, 6), name
        assert robots.check("foo", "/some/path").line == 2, name
    for bom in (b"\xef\xbb\xbf", b"\xef\xbb", b"\xef"):
        verdict = RobotsTxt(bom + b"User-Agent: foo\nDisallow: /AnyValue\n").check("foo", "/AnyValue")
        assert (verdict.allowed, verdict.line) == (False, 2)
    broken = RobotsTxt(b"\xef\x11\xbfUser-Agent: foo\nDisallow: /AnyValue\n")
    assert broken.check("foo", "/AnyValue").allowed  # the first line is garbage: the rule belongs to no group
    assert [i.kind for i in broken.issues] == ["unknown", "orphan"]
