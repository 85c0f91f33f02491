"""``RobotsTxt.disallowed``: the batch form the weblog detector uses gives, path by path, what ``check`` gives.

Generated files and paths (escapes, non-ASCII, ``//``, ``*`` and ``$`` patterns, statuses), the Google reference
files, and the two benchmark files with paths built from their own patterns.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abusedesk.robots import RobotsTxt

pytestmark = pytest.mark.unit

CORPUS = Path(os.environ.get("ABUSEDESK_TEST_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"))
_SEG = st.sampled_from(["a", "b", "ab", "x.php", "?q=1", "?", "&s=2", "-", "~", "%41", "%2f", "é", " ", "*", "$",
                        "#f", "", "/", "robots.txt", "%zz", "\t"])  # fmt: skip
_PATH = st.lists(_SEG, max_size=5).map(lambda parts: "/" + "/".join(parts)) | st.text(max_size=12)
_PATTERN = st.lists(_SEG, max_size=4).map(lambda parts: "/" + "/".join(parts))


def _same(parsed: RobotsTxt, agent: str, paths: list[str]) -> None:
    want = [(i, parsed.check(agent, p)) for i, p in enumerate(paths)]
    want = [(i, v) for i, v in want if v.state == "disallowed"]
    assert parsed.disallowed(agent, paths) == want


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=st.lists(st.tuples(st.sampled_from(["Allow", "Disallow", "Disalow"]), _PATTERN), max_size=6),
       agent=st.sampled_from(["FooBot", "foobot/1.0 (+http://x)", "Other"]),
       status=st.sampled_from([200, 200, 200, 404, 503, 0, 301]), paths=st.lists(_PATH, max_size=12))  # fmt: skip
def test_batch_equals_check_on_generated_files(rules: list[tuple[str, str]], agent: str, status: int,
                                               paths: list[str]) -> None:  # fmt: skip
    robots = "User-agent: FooBot\nUser-agent: *\n" + "".join(f"{k}: {v}\n" for k, v in rules)
    _same(RobotsTxt(robots, status), agent, paths)


def test_batch_equals_check_on_the_reference_and_benchmark_files() -> None:
    cases = json.loads((CORPUS / "robots" / "google_cases.json").read_text())
    for case in cases if isinstance(cases, list) else cases.get("cases", []):
        robots, agent, url = case.get("robots_txt"), case.get("user_agent"), case.get("url")
        if isinstance(robots, str) and isinstance(agent, str) and isinstance(url, str):
            path = url.split("://", 1)[-1]
            path = path[path.find("/") :] if "/" in path else "/"
            _same(RobotsTxt(robots), agent, [path, "/", path + "x"])
    rng = random.Random(3)
    for name in ("bench_robots_mixed.txt", "bench_robots_prefix.txt"):
        text = (CORPUS / "robots" / name).read_text()
        patterns = [line.split(":", 1)[1].strip() for line in text.splitlines() if ":" in line
                    and line.split(":", 1)[0].strip().lower() in ("allow", "disallow")]  # fmt: skip
        paths = []
        for _ in range(3000):
            base = rng.choice(patterns).replace("*", rng.choice(["", "x/", "a.b"])).rstrip("$") or "/"
            paths.append(base + rng.choice(["", "x", "/y.html", "?q=1", "%41"]))
        parsed = RobotsTxt(text)
        for agent in ("Googlebot", "ExampleCrawler", "Mozilla/5.0 (compatible; bingbot/2.0)"):
            _same(parsed, agent, paths)
