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
    # the egress log: the polite crawler nothing; python-requests 4 findings (agent, robots unread and
    # disallowed, crawl-delay); Scrapy's default agent at 5/s 2 (agent, crawl-delay)
    assert summary["crawlers"] == {"2001:db8:100:5::11": 4, "2001:db8:100:5::12": 2}
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
    # what a new user reads must be true (issue 11): the docs URL, the approval lines, the notices' content
    assert "http://127.0.0.1:8080/api/docs" in text and "8080/docs" not in text
    assert "bob approves: pending" not in text
    assert "suspension done" in text
    assert ".venv/bin/activate" in text
    outbox = sorted((tmp_path / "demo" / "outbox").glob("*.eml"))
    mails = "\n".join(p.read_text() for p in outbox)
    assert "Your DMCA notice is incomplete" in mails  # the DMCA reply names what is missing
    assert "512(c)(3)(A)(i)" in mails
    # quoted-printable soft spaces must not show; MIME boundaries (random digits, "=20" among them) are not text
    text_lines = [line for line in mails.splitlines() if not line.startswith("--==") and "boundary=" not in line]
    assert not any("=20" in line for line in text_lines)
    notice = next(p.read_text() for p in outbox if "ops@initech.example" in p.read_text())
    assert "port 22/tcp" in notice and "cert@cert.example.net" not in notice
    sha256sum = require_program("sha256sum")
    check = subprocess.run(
        [sha256sum, "-c", "SHA256SUMS"], cwd=summary["bundle"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
