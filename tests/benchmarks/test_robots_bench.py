"""benchmarks/robots.py at a tiny size: both matchers run on both corpus files and agree; the JSON line is last.

A smoke test of the benchmark, not of speed: no figure is compared with a goal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS
from tests.support.components import missing

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.corpus
def test_tiny_run_agrees_with_protego_and_ends_with_the_json_line() -> None:
    if not (CORPUS / "robots").is_dir():
        missing(f"the shared corpus is not at {CORPUS}")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "ABUSEDESK_TEST_CORPUS": str(CORPUS)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "robots.py"), "--urls", "2000", "--repeat", "1"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "robots" and result["peer"] == "protego"
    assert set(result["files"]) == {"mixed", "prefix"}
    for figures in result["files"].values():
        for agent in figures["agents"].values():
            assert agent["checks_per_s"] > 0 and agent["peer_checks_per_s"] > 0
            assert 0 < agent["disallowed"] < 2000
