"""benchmarks/screening.py at a tiny size: every measurement runs (wrk against a real uvicorn on loopback) and the
last line is the JSON object. A smoke test of the benchmark, not of speed: no figure is compared with a goal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.components import require_program

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "screening.py"


@pytest.mark.slow
@pytest.mark.integration
def test_quick_run_measures_ours_and_the_peers_and_ends_with_the_json_line(tmp_path: Path) -> None:
    require_program("wrk")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TMPDIR": str(tmp_path)}
    args = ["--addresses", "3000", "--rounds", "1", "--full-sample", "500", "--http-seconds", "1",
            "--record-seconds", "1", "--connections", "1,2"]  # fmt: skip
    proc = subprocess.run([sys.executable, str(BENCH), *args], env=env, capture_output=True, timeout=300, check=False)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out[-3000:] + proc.stderr.decode(errors="replace")[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["benchmark"] == "screening"
    for key in ("ours_batch_per_s", "ours_single_per_s", "peer_mailchecker_is_valid_per_s",
                "peer_mailchecker_blacklisted_per_s", "peer_ded_set_per_s"):  # fmt: skip
        assert result[key] > 0, key
    checks = result["checks"]
    assert checks["flagged"]["batch"] == checks["flagged"]["single"] > 0
    assert sorted(result["http_by_workers"]) == ["1", "2"] and result["http_api_workers"] == 2
    for workers, http in result["http_by_workers"].items():
        for mode in ("screen_c1", "floor_c1", "screen_c2", "floor_c2", "record"):
            h = http[mode]
            assert h["requests"] > 0 and h["non_2xx"] == 0 and h["p99_ms"] > 0, (workers, mode, h)
        # every answered signup was committed before its answer (more may be: wrk stops mid-request)
        assert http["record"]["committed"] >= http["record"]["requests"] > 0, (workers, http["record"])
    assert result["http_ratio_p99"] > 0 and result["http_peer_p99_ms"] > 0
