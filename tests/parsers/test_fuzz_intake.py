"""scripts/fuzz_intake.py under atheris for a bounded time: coverage-guided fuzzing of sniffing, reading, parsing.

The harness holds the ARF parser's fast reading of feedback reports to the standard library's and every parser
to "events, issues or ParseError". Seeds: the golden files and, where present (always in CI), the shared corpus,
read in place; new inputs go to a temporary directory. A failure leaves libFuzzer's crash file, whose bytes the
assertion message shows: keep it under fuzz_regressions/ (the suite replays those).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS
from tests.support.components import missing

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "scripts" / "fuzz_intake.py"
SECONDS = int(os.environ.get("ABUSEDESK_ATHERIS_SECONDS", "20"))


@pytest.mark.fuzzing
def test_atheris_finds_nothing_in_a_bounded_run(tmp_path: Path) -> None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        missing("atheris is not installed (pip install atheris; the dev extra has it)")
    seeds = [ROOT / "tests" / "golden" / name for name in ("arf", "xarf", "xarf_legacy", "acns", "spamcop", "dmca")]
    if CORPUS.is_dir():
        seeds += [p for p in sorted((CORPUS / "reports").glob("*/*")) if p.is_dir()]
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            str(work),
            *map(str, seeds),
            f"-max_total_time={SECONDS}",
            "-max_len=65536",
            "-rss_limit_mb=2048",
            "-timeout=10",
            f"-artifact_prefix={tmp_path}/",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS + 240,  # loading the seeds comes first
        check=False,
    )
    crashes = sorted(tmp_path.glob("crash-*")) + sorted(tmp_path.glob("timeout-*")) + sorted(tmp_path.glob("oom-*"))
    found = [(p.name, p.read_bytes()[:400]) for p in crashes]
    assert proc.returncode == 0 and not crashes, (found, proc.stderr[-3000:])
    assert "Done" in proc.stderr, proc.stderr[-2000:]  # it ran to its time limit, not into a wall
