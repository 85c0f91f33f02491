"""`abusedesk robots check`: one URL, --json, and the JSON-lines batch on stdin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abusedesk.cli.main import app

pytestmark = pytest.mark.unit

ROBOTS = "User-agent: *\nCrawl-delay: 1.5\nDisallow: /private/\nAllow: /private/ok$\n"


@pytest.fixture
def robots_file(tmp_path: Path) -> Path:
    path = tmp_path / "robots.txt"
    path.write_text(ROBOTS)
    return path


def test_check_one_url(robots_file: Path) -> None:
    result = CliRunner().invoke(app, ["robots", "check", str(robots_file), "Wget/1.21", "http://192.0.2.1/private/x"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("disallowed (Disallow: /private/, line 3); group *; crawl-delay 1.5s")


def test_check_json_and_status(robots_file: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["robots", "check", str(robots_file), "FooBot", "/private/ok", "--json"])
    assert json.loads(result.output) == {
        "allowed": True, "state": "allowed", "rule": "Allow: /private/ok$", "line": 4, "group": "*",
        "crawl_delay": 1.5, "reason": "longest matching rule",
    }  # fmt: skip
    down = runner.invoke(app, ["robots", "check", str(robots_file), "FooBot", "/", "--status", "503", "--json"])
    assert json.loads(down.output)["allowed"] is False


def test_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["robots", "check", str(tmp_path / "nope.txt"), "a", "/"]).exit_code == 2
    assert runner.invoke(app, ["robots", "check"]).exit_code == 2


def test_batch_reads_json_lines() -> None:
    lines = [
        {"robots_txt": ROBOTS, "status": 200, "user_agent": "FooBot", "url": "http://e.com/private/a"},
        {"robots_txt": ROBOTS, "status": 404, "user_agent": "FooBot", "url": "http://e.com/private/a"},
        {"robots_txt": None, "status": 0, "user_agent": "FooBot", "url": "/x"},
    ]
    stdin = "\n".join(json.dumps(x) for x in lines) + "\n{not json\n"
    result = CliRunner().invoke(app, ["robots", "check", "--batch"], input=stdin)
    assert result.exit_code == 1
    out = [json.loads(x) for x in result.output.splitlines()]
    assert [o.get("allowed") for o in out[:3]] == [False, True, False]
    assert out[0]["rule"] == "Disallow: /private/" and out[0]["line"] == 3 and out[0]["crawl_delay"] == 1.5
    assert out[3]["line"] == 4 and "stdin line 4" in out[3]["error"]
