"""benchmarks/weblog.py at a tiny size: the log goes through the pipeline to stored findings, GoAccess reads it.

A smoke test of the benchmark, not of speed: no figure is compared with a goal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.components import require_program

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_tiny_run_stores_findings_and_ends_with_the_json_line() -> None:
    require_program("goaccess")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("ABUSEDESK_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "weblog.py"), "--lines", "3000", "--clients", "20", "--span", "300"],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "weblog" and result["peer"] == "goaccess"
    assert result["lines"] == 3000 and result["lines_per_s"] > 0 and result["peer_lines_per_s"] > 0
    assert result["findings"].get("crawler_agent", 0) > 0 and result["findings"].get("robots_ignored", 0) > 0
    assert result["cases"] > 0
