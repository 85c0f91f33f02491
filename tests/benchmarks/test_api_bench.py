"""benchmarks/api.py at a tiny size: a few thousand cases, one second of wrk per workload.

A smoke test of the benchmark, not of speed: no figure is compared with a goal. It runs the real thing: a scratch
PostgreSQL database filled by COPY, the app under uvicorn on a loopback port in one process and in two worker
processes (``serve_api``), wrk with the Bearer header.
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
    args = ["--cases", "3000", "--duration", "1", "--connections", "10"]
    result = run_benchmark("api.py", args, tmp_path, timeout=300)
    assert result["benchmark"] == "api"
    assert result["cases"] == 3000
    # the server in one process and in two (serve_api's worker processes)
    assert sorted(result["by_workers"]) == ["1", "2"] and result["api_workers"] == 2
    for workers, runs in result["by_workers"].items():
        for name in ("cases_filtered", "cases_customer", "cases_cursor", "auth_only", "floor"):
            figures = runs[name]
            assert figures["requests"] > 0, (workers, name)
            assert figures["non2xx"] == 0 and figures["errors"] == 0, (workers, name, figures)
            assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"], (workers, name, figures)
    assert result["peer_p95_ms"] > 0 and result["ratio_p95"] > 0
    assert result["auth_ms_in_process"] > 0
