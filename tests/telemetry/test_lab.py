"""Real traffic as the test: namespaces joined by veth, nmap, hping3, SSH/RDP/SMTP/HTTP clients, captured and
exported by softflowd (NetFlow v5, v9, IPFIX) to the collector on loopback; each scenario is detected and
attributed to its service, benign traffic makes nothing, a consented load test makes no case.

Needs root (CI runs as root) and ip, tcpdump, softflowd, nmap, hping3 (the Makefile's DEBS).
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from abusedesk.consent import ConsentService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import FindingRow
from abusedesk.telemetry.collector import Collector
from abusedesk.telemetry.pcap import read_pcap
from tests.support.components import missing
from tests.support.identities import make_people
from tests.telemetry.lab import EXPECTED
from tests.telemetry.netlab import export, lab, missing_tools

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    if os.geteuid() != 0:
        missing("the namespace lab needs root")
    if missing_tools():
        missing(f"the namespace lab needs {', '.join(missing_tools())}")
    work = tmp_path_factory.mktemp("netlab")
    with lab(work) as lb:
        out = lb.run_traffic()
    return lb.pcap, out


def collect(rt: Runtime, pcap: Path, version: int, work: Path) -> dict[str, Any]:
    c = Collector(rt, "127.0.0.1:0")
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(stats=c.run(idle_exit=1.0, duration=60)))
    t.start()
    assert c.ready.wait(5)
    export(pcap, c.port, version, work)
    t.join(90)
    rt.drain()
    return dict(result["stats"].to_dict())


def _findings(rt: Runtime) -> list[FindingRow]:
    with rt.sessions() as s:
        return list(s.scalars(select(FindingRow)))


@pytest.mark.parametrize("version", [5, 9, 10])
def test_each_scenario_detected_and_attributed(
    capture: tuple[Path, dict[str, str]], lab_rt: Runtime, tmp_path: Path, version: int
) -> None:
    pcap, tool_output = capture
    assert "4000 packets transmitted" in tool_output["synflood"], tool_output
    stats = collect(lab_rt, pcap, version, tmp_path)
    assert stats["decode"]["flows"] > 1000 and stats["decode"]["dropped"] == {}
    assert stats["socket_drops"] == 0
    rows = _findings(lab_rt)
    got = {(f.service_id, f.detector) for f in rows}
    for scenario, (service, detector) in EXPECTED.items():
        assert (service, detector) in got, f"{scenario}: no {detector} finding for {service}; got {sorted(got)}"
    benign = [f.summary for f in rows if f.service_id in ("svc-benign", "svc-provider")]
    assert benign == [], "benign traffic (HTTP, one SMTP session, the victim's answers) made findings"
    assert all(f.case_id is not None for f in rows)


def test_consented_load_test_makes_no_case(capture: tuple[Path, dict[str, str]], lab_rt: Runtime,
                                          tmp_path: Path) -> None:  # fmt: skip
    pcap, _ = capture
    first = next(read_pcap(pcap)).time
    from datetime import UTC, datetime

    start = datetime.fromtimestamp(first, tz=UTC) - timedelta(minutes=5)
    svc = ConsentService(lab_rt)
    people = make_people(lab_rt, {"dana": "cus-lab"})
    c = svc.request(people["dana"], service_ids=["svc-load"], targets=["10.99.1.0/24"], window_from=start,
                    window_to=start + timedelta(hours=1), kind="load")  # fmt: skip
    svc.decide(people["bob"], str(c["id"]), status="approved")
    collect(lab_rt, pcap, 10, tmp_path)
    load = [f for f in _findings(lab_rt) if f.service_id == "svc-load"]
    assert load, "the load test was not seen"
    assert all(f.case_id is None and f.data["consent"] == c["id"] for f in load)
