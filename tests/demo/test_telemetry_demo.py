"""The telemetry demo: the recorded IPFIX export of the namespace lab, replayed through the collector."""

from __future__ import annotations

from pathlib import Path

import pytest

from abusedesk.demo.telemetry import run_telemetry_demo
from tests.telemetry.lab import EXPECTED

pytestmark = pytest.mark.integration


def test_recorded_export_makes_a_finding_and_case_per_scenario(tmp_path: Path) -> None:
    lines: list[str] = []
    summary = run_telemetry_demo(tmp_path / "demo", echo=lines.append)
    got = {(f["service"], f["detector"]) for f in summary["findings"]}
    for scenario, expected in EXPECTED.items():
        assert expected in got, scenario
    assert all(f["case"] for f in summary["findings"])
    assert not [f for f in summary["findings"] if f["service"] in ("svc-benign", "svc-provider")]
    assert summary["flows"] > 10_000 and "socket drops 0" in lines[0]
