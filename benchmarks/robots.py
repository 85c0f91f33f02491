"""robots.txt benchmark: our RFC 9309 matcher against protego on the same files and URLs, same run.

Files: ``../shared/corpus/robots/bench_robots_{mixed,prefix}.txt`` (20 KB each; 44% and 16% of rules use ``*`` or
``$``). URLs (seeded): ``--urls`` a file (100,000 by default), built from the files' own patterns (wildcards filled
in, anchors dropped, queries added) and from paths no rule names, so both allowed and disallowed verdicts occur.
Agents: ``Googlebot`` (a 25-rule group), ``ExampleCrawler`` (no group of its own: the ~500-rule ``*`` group) and
``Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)`` (a header naming a group).

* parse: median of ``--repeat`` parses of each file (ours ``RobotsTxt``, protego ``Protego.parse``);
* checks/s: every URL for every agent, ours ``RobotsTxt.check`` (the full verdict with rule, line and state),
  protego ``can_fetch``; runs alternate and the median is kept. The verdicts must be identical, URL for URL,
  but for one documented difference (docs/reference/robots.md): an allow and a disallow rule of equal length as
  written, where protego, measuring its percent-quoted patterns, lets the one with a ``?`` win; each such URL is
  checked to be that case and counted as ``known_differences``.

The last line is one JSON object. Run: ``PYTHONPATH=src .venv/bin/python benchmarks/robots.py [--urls N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import time
from pathlib import Path
from typing import Any

from protego import Protego
from protego._ruleset import _quote_pattern

from abusedesk.robots import RobotsTxt, normalise_path, path_of
from abusedesk.robots.matcher import _pattern_regex

AGENTS = ("Googlebot", "ExampleCrawler", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)")
PROTEGO_AGENTS = {AGENTS[2]: "bingbot"}  # protego is handed the token: it matches files by substring
_RULE = re.compile(r"(?im)^\s*(?:dis)?allow\s*:\s*(\S+)")


def corpus_dir() -> Path:
    env = os.environ.get("ABUSEDESK_TEST_CORPUS")
    here = Path(__file__).resolve()
    for candidate in ([Path(env)] if env else []) + [here.parents[1].parent / "shared" / "corpus",
                                                      here.parents[2].parent / "shared" / "corpus"]:  # fmt: skip
        if (candidate / "robots").is_dir():
            return candidate
    raise SystemExit("the shared corpus (robots/) was not found; set ABUSEDESK_TEST_CORPUS")


def make_urls(text: str, n: int, seed: int = 13) -> list[str]:
    rng = random.Random(seed)
    patterns = _RULE.findall(text)
    words = ["product", "item", "page", "a", "b", "static", "img", "blog", "2024", "news", "x.php", "y.pdf"]
    urls: list[str] = []
    for i in range(n):
        if rng.random() < 0.7:
            path = patterns[rng.randrange(len(patterns))].rstrip("$")
            path = path.replace("*", rng.choice(["", "x", f"p{i}/", "a/b"]))
            path = path if path.startswith("/") else "/" + path
            if rng.random() < 0.4:
                path += rng.choice(["", "/", f"/{i}", f"/{rng.choice(words)}.html"])
        else:
            path = "/" + "/".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
        if rng.random() < 0.3:
            path += rng.choice(["?sort=price", f"?page={i}", "?utm_source=x&sid=1", "?q=a+b"])
        urls.append("https://www.example-shop.com" + path)
    return urls


def quoted_priority_tie(robots: RobotsTxt, agent: str, url: str) -> bool:
    """Whether ``url`` is a documented difference: the best allow and disallow rules tie in octets as written
    (RFC 9309 and Google: allow wins), while protego measures its percent-quoted patterns (``?`` counts 3)."""
    group = robots._select(agent)[0]
    if group is None:
        return False
    path = normalise_path(path_of(url))
    best: dict[bool, Any] = {}
    for rule in group.rules:
        matches = re.match(_pattern_regex(rule.normalised), path, re.DOTALL) is not None
        if matches and (rule.allow not in best or rule.priority > best[rule.allow].priority):
            best[rule.allow] = rule
    if len(best) < 2 or len(best[True].normalised) != len(best[False].normalised):
        return False
    return len(_quote_pattern(best[True].pattern)) != len(_quote_pattern(best[False].pattern))


def machine() -> str:
    load = os.getloadavg()
    return (f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_implementation()} "
            f"{platform.python_version()}, load {load[0]:.1f} at start (shared with other work)")  # fmt: skip


def run(n_urls: int, repeat: int) -> dict[str, Any]:
    corpus = corpus_dir() / "robots"
    files: dict[str, Any] = {}
    total_checks = 0
    ours_time = theirs_time = 0.0
    for name in ("mixed", "prefix"):
        text = (corpus / f"bench_robots_{name}.txt").read_text()
        urls = make_urls(text, n_urls)
        parse_ours, parse_theirs = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            RobotsTxt(text)
            t1 = time.perf_counter()
            Protego.parse(text)
            parse_theirs.append(time.perf_counter() - t1)
            parse_ours.append(t1 - t0)
        ours, theirs = RobotsTxt(text), Protego.parse(text)
        per_agent: dict[str, Any] = {}
        for agent in AGENTS:
            peer_agent = PROTEGO_AGENTS.get(agent, agent)
            t_ours, t_theirs = [], []
            mine: list[bool] = []
            peer: list[bool] = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                mine = [ours.check(agent, u).allowed for u in urls]
                t1 = time.perf_counter()
                peer = [theirs.can_fetch(u, peer_agent) for u in urls]
                t_theirs.append(time.perf_counter() - t1)
                t_ours.append(t1 - t0)
            differ = [u for u, a, b in zip(urls, mine, peer, strict=True) if a != b]
            unexplained = [u for u in differ if not quoted_priority_tie(ours, agent, u)]
            if unexplained:
                raise SystemExit(f"{name} {agent}: {len(unexplained)} verdicts differ from protego, e.g. "
                                 f"{unexplained[:3]}")  # fmt: skip
            m_ours, m_theirs = statistics.median(t_ours), statistics.median(t_theirs)
            ours_time += m_ours
            theirs_time += m_theirs
            total_checks += len(urls)
            per_agent[agent.split("(")[-1].split(";")[-2].strip() if "(" in agent else agent] = {
                "checks_per_s": round(len(urls) / m_ours),
                "peer_checks_per_s": round(len(urls) / m_theirs),
                "ratio": round(m_theirs / m_ours, 2),
                "disallowed": mine.count(False),
                "known_differences": len(differ),
            }
        files[name] = {
            "parse_ms": round(statistics.median(parse_ours) * 1000, 2),
            "peer_parse_ms": round(statistics.median(parse_theirs) * 1000, 2),
            "agents": per_agent,
        }
        print(f"{name}: {json.dumps(files[name])}", flush=True)
    return {
        "benchmark": "robots",
        "machine": machine(),
        "urls": n_urls,
        "files": files,
        "checks_per_s": round(total_checks / ours_time),
        "peer": "protego",
        "peer_checks_per_s": round(total_checks / theirs_time),
        "ratio": round(theirs_time / ours_time, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--urls", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    result = run(args.urls, args.repeat)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
