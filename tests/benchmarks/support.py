"""Running a benchmark script as its smoke tests do: a process in a scratch directory, its last line parsed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, args: list[str], tmp_path: Path, *, timeout: float = 600) -> dict[str, Any]:
    """Run ``benchmarks/<script>`` with ``args``; assert it exits 0 and return its last line, a JSON object."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
        cwd=tmp_path,
    )
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out[-3000:] + proc.stderr.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result
