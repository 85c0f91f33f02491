"""protego (Scrapy's robots.txt parser) as a differential oracle: generated files, agents and paths.

Where both readings are defined the same way they must agree. The inputs stay inside what both read alike; the
places we differ on purpose are pinned by the ``test_differs_*`` tests and listed in docs/reference/robots.md
("Differences from protego").
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protego import Protego

from abusedesk.robots import RobotsTxt

pytestmark = pytest.mark.unit

_SEGMENTS = st.sampled_from(["a", "b", "ab", "x.php", "y.html", "?q=1", "?", "&s=2", "-", "_", "~", "%41", "é"])
_PATH = st.lists(_SEGMENTS, max_size=5).map(lambda parts: "/" + "/".join(parts))
# protego measures a rule's length on its percent-quoted form, where '?' counts 3 octets: patterns here carry no
# '?' (test_differs_on_rule_length_with_a_question_mark pins that difference)
_PATTERN_SEGMENTS = st.sampled_from(["a", "b", "ab", "x.php", "y.html", "&s=2", "-", "_", "~", "%41", "é"])
_PATTERN = st.tuples(st.lists(st.one_of(_PATTERN_SEGMENTS, st.just("*")), max_size=4), st.booleans()).map(
    lambda t: "/" + "/".join(t[0]) + ("$" if t[1] else "")
)
_AGENTS = st.sampled_from(["FooBot", "BarBot", "*"])


@st.composite
def _robots(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        for agent in draw(st.lists(_AGENTS, min_size=1, max_size=2)):
            lines.append(f"User-agent: {agent}")
        for _ in range(draw(st.integers(0, 5))):
            lines.append(f"{draw(st.sampled_from(['Allow', 'Disallow']))}: {draw(_PATTERN)}")
        lines.append("")
    return "\n".join(lines)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(robots=_robots(), agent=st.sampled_from(["FooBot", "foobot", "BarBot", "OtherBot"]), path=_PATH)
def test_agrees_with_protego(robots: str, agent: str, path: str) -> None:
    url = "http://example.com" + path
    ours = RobotsTxt(robots).check(agent, url)
    theirs = Protego.parse(robots).can_fetch(url, agent)
    assert ours.allowed == theirs, (robots, agent, path, ours)


@settings(max_examples=200, deadline=None)
@given(robots=_robots(), agent=st.sampled_from(["FooBot", "BarBot", "OtherBot"]), path=_PATH)
def test_verdicts_are_deterministic_and_cite_their_rule(robots: str, agent: str, path: str) -> None:
    parsed = RobotsTxt(robots)
    verdict = parsed.check(agent, path)
    assert verdict == RobotsTxt(robots).check(agent, path)
    lines = robots.split("\n")
    if verdict.rule is not None:
        assert verdict.line is not None and lines[verdict.line - 1] == verdict.rule
        assert verdict.allowed == verdict.rule.startswith("Allow")
    else:
        assert verdict.allowed


@given(data=st.binary(max_size=2000), agent=st.text(max_size=30), url=st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_bytes_give_a_verdict(data: bytes, agent: str, url: str) -> None:
    verdict = RobotsTxt(data).check(agent, url)
    assert verdict.state in ("allowed", "disallowed", "ambiguous")


def test_differs_on_status_codes() -> None:
    # protego has no status semantics: it is handed a body. RFC 9309 2.3.1.3/2.3.1.4 decide without one.
    assert RobotsTxt(None, 404).check("FooBot", "/x").allowed
    assert not RobotsTxt(None, 503).check("FooBot", "/x").allowed
    assert not RobotsTxt(None, 0).check("FooBot", "/x").allowed
    assert RobotsTxt(None, 503).check("FooBot", "/robots.txt").allowed


def test_differs_on_tokens_by_substring() -> None:
    # protego lets 'Foo' in the file pick up a crawler 'FooBot' (substring); RFC 9309 matches tokens exactly.
    robots = "User-agent: Foo\nDisallow: /\n"
    assert not Protego.parse(robots).can_fetch("http://e.com/x", "FooBot")
    assert RobotsTxt(robots).check("FooBot", "http://e.com/x").allowed


def test_differs_on_rule_length_with_a_question_mark() -> None:
    # 'Allow: /*/*' and 'Disallow: /*/?' are 5 octets each: the tie goes to allow (RFC 9309 2.2.2, Google).
    # protego quotes '?' to '%3F' before measuring, so its disallow is longer and wins.
    robots = "User-agent: FooBot\nAllow: /*/*\nDisallow: /*/?\n"
    assert RobotsTxt(robots).check("FooBot", "/a/?q=1").rule == "Allow: /*/*"
    assert not Protego.parse(robots).can_fetch("http://e.com/a/?q=1", "FooBot")


def test_differs_on_index_html() -> None:
    # protego, like Google, lets 'Allow: /d/index.html' allow '/d/'; RFC 9309 has no such rule (g079)
    robots = "User-agent: *\nAllow: /d/index.html\nDisallow: /\n"
    assert not RobotsTxt(robots).check("FooBot", "/d/").allowed
    assert Protego.parse(robots).can_fetch("http://e.com/d/", "FooBot")


def test_differs_on_crawl_delay_in_merged_groups() -> None:
    robots = "User-agent: FooBot\nCrawl-delay: 2.5\nDisallow: /a\n\nUser-agent: FooBot\nCrawl-delay: 5\n"
    assert RobotsTxt(robots).crawl_delay("FooBot") == 2.5  # merged groups: the smallest, fairest to the crawler
    assert Protego.parse(robots).crawl_delay("FooBot") == 5.0


def test_limit_and_truncation() -> None:
    body = "User-agent: *\n" + "Disallow: /a\n" * 50_000 + "Disallow: /late\n"
    robots = RobotsTxt(body)
    assert robots.truncated
    assert robots.check("FooBot", "/late").allowed  # past 500 KiB: not read
    assert not robots.check("FooBot", "/a").allowed
