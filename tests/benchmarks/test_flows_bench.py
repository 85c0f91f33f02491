"""benchmarks/flows.py in --quick mode: every part runs (decode against the netflow package and nfdump, detection,
socket to findings) and the last line is the JSON summary. A smoke test, not a speed check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.components import require_program

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.integration
def test_quick_run_ends_with_the_json_line(tmp_path: Path) -> None:
    require_program("nfcapd")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "flows.py"), "--quick"],
        env=env, capture_output=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out[-3000:] + proc.stderr.decode(errors="replace")[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["decode_flows_per_s"] > 0 and summary["netflow_pkg_flows_per_s"] > 0
    assert summary["nfdump_filter_flows_per_s"] > 0
    assert summary["detection_rows"] == 20_000 and summary["e2e_socket_drops"] == 0
