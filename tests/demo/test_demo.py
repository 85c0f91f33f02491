"""The demo, run whole: it is the first thing a new user sees, so it is tested like a feature."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from abusedesk.demo.runner import run_demo
from tests.support.components import require_program


@pytest.mark.slow
def test_demo_runs_every_stage_for_real(tmp_path: Path) -> None:
    lines: list[str] = []
    summary = run_demo(tmp_path / "demo", echo=lines.append)
    text = "\n".join(lines)
    assert summary["signals"] == 8
    # the address re-assigned at 12:00 is blamed on the old customer before and the new one after
    assert summary["owners_of_203.0.113.10"] == ["cust-initech", "cust-umbrella"]
    assert summary["not_ours"] >= 1
    assert summary["triage"] >= 1  # the incomplete DMCA notice waits for an analyst
    assert summary["notices"] >= 3
    assert summary["escalated"] is True
    assert summary["proposals_after_deadline"] == ["suspend-service"]
    assert summary["self_approval_refused"] is True
    assert summary["approved_case_state"] == "restricted"
    assert (summary["customer_sees_own"], summary["customer_sees_other"]) == (200, 404)
    assert summary["globex_web_status"] == "suspended"
    assert summary["control_plane_requests"] == 1
    assert summary["audit_ok"] is True
    assert "chain intact" in text
    sha256sum = require_program("sha256sum")
    check = subprocess.run(
        [sha256sum, "-c", "SHA256SUMS"], cwd=summary["bundle"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
