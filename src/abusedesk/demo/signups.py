"""`abusedesk screen demo`: sample signups through the real signup hook, their verdicts, and what the pipeline made.

A fresh data dir, the demo inventory plus a terminated and a suspended customer, then a dozen signups POSTed to
``/api/v1/screen/signup`` on a loopback uvicorn: an ordinary one, disposable addresses (listed, below a listed
domain), a terminated customer's Gmail and Yahoo addresses spelt anew, an invalid address, one at a public
suffix, and a farm of five signups from one device and network. Notices and control actions go to the Null
backends: this demo shows screening, not delivery (``abusedesk demo`` shows that).
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select

from abusedesk.clock import ManualClock
from abusedesk.config import Settings
from abusedesk.demo.runner import DEMO_START, Echo, serve_api
from abusedesk.runtime import Runtime


def sample_signups() -> list[dict[str, Any]]:
    text = resources.files("abusedesk.demo").joinpath("data", "signups.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def integration_token(rt: Runtime, name: str = "signup-flow") -> str:
    """An ``integration`` user for the signup flow and its API token (the first admin bootstrapped for it)."""
    from abusedesk.identity.service import IdentityService

    ident = IdentityService(rt)
    _, admin_token = ident.bootstrap("demo-admin")
    admin = ident.authenticate(admin_token.token)
    ident.add_user(admin, name, "integration")
    return ident.create_token(admin, name).token


def run_signup_demo(data_dir: Path, *, fresh: bool = True, echo: Echo = print) -> dict[str, Any]:
    """Run the signup demo; returns a summary (verdicts, findings, cases) and prints as it goes."""
    import httpx

    from abusedesk.inventory.service import InventoryService
    from abusedesk.store.tables.cases import CaseRow, FindingRow

    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, notify_backend="null", control_backend="null")
    rt = Runtime.open(settings, clock=ManualClock(DEMO_START))
    try:
        for name in ("inventory.json", "signups-inventory.json"):
            with resources.as_file(resources.files("abusedesk.demo").joinpath("data", name)) as path:
                InventoryService(rt).import_file(path)
        token = integration_token(rt)
        echo("== Signups through POST /api/v1/screen/signup (an integration token, as the signup flow has) ==")
        verdicts = []
        headers = {"Authorization": f"Bearer {token}"}
        with serve_api(rt) as api, httpx.Client(base_url=api, timeout=30, headers=headers) as client:
            for record in sample_signups():
                body = {k: v for k, v in record.items() if k != "type"}
                answer = client.post("/api/v1/screen/signup", json=body).json()
                verdicts.append({"email": record["email"], "verdict": answer["verdict"], "rule": answer["rule"]})
                where = f" ({answer['matched_domain']})" if answer.get("matched_domain") else ""
                echo(f"  {record['email']:<44} {answer['verdict']:<10} {answer['rule']}{where}")
        echo(f"  knowledge: {answer['knowledge']}")
        rt.drain()
        echo("")
        echo("== Findings and cases (the pipeline: parse → attribute → detect → cases) ==")
        with rt.sessions() as s:
            found = list(s.scalars(select(FindingRow).order_by(FindingRow.window_end, FindingRow.id)))
            cases = list(s.scalars(select(CaseRow)))
        for f in found:
            echo(f"  clause {f.clauses[0]:<5} {f.kind:<17} {f.customer_id:<12} {f.summary}")
        echo(f"  {len(found)} findings, {len(cases)} cases")
        return {
            "verdicts": verdicts,
            "findings": [{"kind": f.kind, "clause": f.clauses[0], "customer": f.customer_id} for f in found],
            "cases": len(cases),
        }
    finally:
        rt.close()
