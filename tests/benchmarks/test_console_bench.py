"""benchmarks/console.py at a tiny size: a few thousand cases, one second of wrk per workload.

A smoke test of the benchmark, not of speed: no figure is compared with a goal. It runs the real thing: a scratch
PostgreSQL database filled by COPY, the app under uvicorn on a loopback port, a real sign-in, wrk with the session
cookie, and the plans of the queue's queries.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.benchmarks.support import run_benchmark
from tests.support.components import is_listening, missing


@pytest.mark.slow
@pytest.mark.integration
def test_tiny_run_measures_every_workload(tmp_path: Path) -> None:
    if not is_listening(5432):
        missing("PostgreSQL is not running on 127.0.0.1:5432 (the benchmark makes a scratch database there)")
    if not shutil.which("wrk"):
        missing("wrk is not installed (Debian package wrk)")
    args = ["--cases", "3000", "--case-pages", "20", "--duration", "1", "--connections", "5"]
    result = run_benchmark("console.py", args, tmp_path, timeout=300)
    assert result["benchmark"] == "console"
    assert result["cases"] == 3000 and result["case_pages"] == 20
    for name in ("queue", "queue_filtered", "queue_page2", "case", "floor"):
        figures = result["workloads"][name]
        assert figures["requests"] > 0, name
        assert figures["non2xx"] == 0 and figures["errors"] == 0, (name, figures)
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"], (name, figures)
    assert result["peer_p95_ms"] > 0 and result["ratio_p95"] > 0
    # at this size the planner may rightly read the whole small table; at a million rows both are index scans
    assert set(result["index_scans"]) == {"queue", "queue_filtered"}
