"""`abusedesk telemetry demo`: a recorded IPFIX export replayed through the collector, to findings and cases.

The recording (``data/telemetry/lab-ipfix.pcap.gz``, made by ``scripts/record_flow_demo.py``) is softflowd's IPFIX
export of the namespace lab's traffic: a vertical and a horizontal nmap scan, hping3 SYN and UDP floods, SSH and
RDP brute force, an SMTP spam run, an HTTP load test against the provider's range, and benign HTTP and SMTP.
The demo's inventory gives each source its service; 10.99.1.0/24 is the provider's own range.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select

from abusedesk.config import Settings
from abusedesk.runtime import Runtime

Echo = Callable[[str], None]
PROVIDER_RANGES = ["10.99.1.0/24"]


def run_telemetry_demo(data_dir: Path, *, fresh: bool = True, echo: Echo = print) -> dict[str, Any]:
    from abusedesk.inventory.service import InventoryService
    from abusedesk.store.tables.cases import CaseRow, FindingRow
    from abusedesk.telemetry.collector import Collector
    from abusedesk.telemetry.service import replay_pcap

    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, notify_backend="null", control_backend="null",
                        detectors={"load_test": {"provider_ranges": PROVIDER_RANGES}})  # fmt: skip
    rt = Runtime.open(settings)
    base = resources.files("abusedesk.demo").joinpath("data", "telemetry")
    try:
        with resources.as_file(base.joinpath("inventory.json")) as inv:
            InventoryService(rt).import_file(inv)
        collector = Collector(rt, "127.0.0.1:0")
        result: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: result.update(stats=collector.run(idle_exit=1.0, duration=120)))
        worker.start()
        collector.ready.wait(5)
        with resources.as_file(base.joinpath("lab-ipfix.pcap.gz")) as pcap:
            sent = replay_pcap(pcap, "127.0.0.1", collector.port)
        worker.join()
        rt.drain()
        stats = result["stats"].to_dict()
        echo(f"replayed {sent} IPFIX datagrams: {stats['decode']['flows']} flows, {stats['files']} flow file(s), "
             f"socket drops {stats['socket_drops']}")  # fmt: skip
        with rt.sessions() as s:
            findings = list(s.scalars(select(FindingRow).order_by(FindingRow.service_id, FindingRow.detector)))
            cases = list(s.scalars(select(CaseRow)))
        for f in findings:
            echo(f"  {f.service_id:<14} {f.detector:<16} {', '.join(f.clauses):<6} {f.summary}")
        echo(f"{len(findings)} findings, {len(cases)} cases")
        return {
            "datagrams": sent,
            "flows": stats["decode"]["flows"],
            "findings": [
                {"service": f.service_id, "detector": f.detector, "kind": f.kind, "case": f.case_id} for f in findings
            ],
            "cases": len(cases),
        }
    finally:
        rt.close()
