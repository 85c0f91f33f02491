"""Recorded exports through the real path: UDP socket → collector → flow file → flows stage → findings → cases."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import CaseRow, FindingRow
from abusedesk.telemetry.collector import Collector
from abusedesk.telemetry.service import import_flow_files, replay_pcap
from tests.telemetry.lab import EXPECTED

pytestmark = [pytest.mark.integration, pytest.mark.corpus]


def findings(rt: Runtime) -> list[FindingRow]:
    with rt.sessions() as s:
        return list(s.scalars(select(FindingRow)))


def assert_scenarios_found(rows: list[FindingRow]) -> None:
    got = {(f.service_id, f.detector) for f in rows}
    for scenario, (service, detector) in EXPECTED.items():
        assert (service, detector) in got, f"scenario {scenario}: no {detector} finding for {service}"
    assert not [f for f in rows if f.service_id in ("svc-benign", "svc-provider")], "benign traffic made a finding"
    assert all(f.customer_id == "cus-lab" for f in rows)


@pytest.mark.parametrize("version", ["ipfix", "v9", "v5"])
def test_recorded_export_over_udp_makes_findings_and_cases(lab_rt: Runtime, corpus: Path, version: str) -> None:
    c = Collector(lab_rt, "127.0.0.1:0")
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(stats=c.run(idle_exit=1.0, duration=60)))
    t.start()
    assert c.ready.wait(5)
    sent = replay_pcap(corpus / "flows" / f"export_{version}.pcap.gz", "127.0.0.1", c.port)
    t.join(90)
    assert not t.is_alive()
    lab_rt.drain()
    stats = result["stats"].to_dict()
    assert stats["decode"]["datagrams"] == sent
    assert stats["socket_drops"] == 0
    assert stats["decode"]["dropped"] == {}
    assert stats["decode"]["lost_records"] == stats["decode"]["lost_datagrams"] == 0
    assert stats["rows_written"] == stats["decode"]["flows"] > 50_000
    rows = findings(lab_rt)
    assert_scenarios_found(rows)
    assert all(f.case_id is not None for f in rows)
    for f in rows:  # the aggregate and a sample of the flows behind it
        evidence = f.data["evidence"]
        assert evidence[0]["aggregate"] and 0 < len(evidence[1]["flows"]) <= 5
    with lab_rt.sessions() as s:
        cases = list(s.scalars(select(CaseRow)))
    assert {c.service_id for c in cases} == {svc for svc, _ in EXPECTED.values()}


def test_the_same_file_again_adds_nothing(lab_rt: Runtime, corpus: Path) -> None:
    path = corpus / "flows" / "flows_v9.csv.gz"
    import_flow_files(lab_rt, [path], "nfdump-csv")
    first = {f.id for f in findings(lab_rt)}
    with lab_rt.sessions() as s:
        cases = len(list(s.scalars(select(CaseRow))))
    (again,) = import_flow_files(lab_rt, [path], "nfdump-csv")
    assert again["status"] == "duplicate"
    assert {f.id for f in findings(lab_rt)} == first
    with lab_rt.sessions() as s:
        assert len(list(s.scalars(select(CaseRow)))) == cases
