"""benchmarks/cli_startup.py in --quick mode: every command starts and the run ends with its JSON line.

A smoke test of the benchmark, not of speed: no figure is compared with a goal or a bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "cli_startup.py"


def test_quick_run_ends_with_the_json_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], env=env, capture_output=True, timeout=300, check=False
    )
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out[-3000:] + proc.stderr.decode(errors="replace")[-3000:]
    last = json.loads(out.strip().splitlines()[-1])
    assert last["benchmark"] == "cli_startup"
    assert set(last["ours_s"]) == {
        "--help",
        "version",
        "kinds",
        "policy show",
        "inventory whois",
        "pipeline status",
        "audit verify",
    }
    assert last["peer_s"] > 0 and last["ratio_slowest_read_to_peer"] > 0
