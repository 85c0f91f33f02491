"""`abusedesk case export`: a bundle a recipient checks with the real `sha256sum -c`."""

from __future__ import annotations

import json
import subprocess
import zipfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from abusedesk.actions.export import export_case
from abusedesk.actions.runner import ActionRunner, NoticeDispatcher
from abusedesk.actions.smtp import EmailNotifyAction
from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.service import CaseService
from abusedesk.cli.main import app
from abusedesk.clock import ManualClock
from abusedesk.intake.service import IntakeService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import CaseRow
from abusedesk.store.tables.intake import EventRow
from tests.actions.support import seed_inventory, smtp_server
from tests.cases.support import finding
from tests.conftest import T0
from tests.support.components import require_program
from tests.support.identities import people_of

COMPLAINT = (
    b"From: reporter@example.com\r\nTo: abuse@provider.example\r\nSubject: port scan from 192.0.2.10\r\n\r\n"
    b"192.0.2.10 scanned 198.51.100.0/24 on port 22 at 2026-03-01T10:00:00Z.\r\n"
)


def _case_with_everything(rt: Runtime, clock: ManualClock) -> str:
    """A complaint stored as raw input, its event, a finding, a case, a sent notice and an analyst note."""
    people = people_of(rt)
    seed_inventory(rt)
    accepted = IntakeService(rt).accept(COMPLAINT, channel="smtp", reporter="reporter@example.com")
    event_id = "ev_" + "1" * 32
    with rt.sessions() as s, s.begin():
        s.add(
            EventRow(
                id=event_id,
                raw_id=accepted.raw.id,
                kind="scan",
                time=T0,
                feed="complaint",
                reporter="reporter@example.com",
                source_ip="192.0.2.10",
                confidence=1.0,
                customer_id="cust-a",
                project_id="proj-cust-a",
                service_id="svc-a1",
                disposition="attributed",
                data={},
            )
        )
    CaseEngine(rt).ingest([finding(rt.policy, 0, event_ids=(event_id,))])
    with rt.sessions() as s:
        ref = s.scalars(select(CaseRow.ref)).one()
    with smtp_server() as smtp:
        ActionRunner(rt).run_pending()
        clock.advance(timedelta(hours=1))
        NoticeDispatcher(rt, EmailNotifyAction(EmailNotifyAction.Params(port=smtp.port))).send_due()
    CaseService(rt).note(ref, "customer says the scanner was a pentest without consent", by=people["alice"])
    return ref


def _sha256sum_c(directory: Path) -> str:
    sha256sum = require_program("sha256sum")
    proc = subprocess.run([sha256sum, "-c", "SHA256SUMS"], cwd=directory, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_directory_bundle_checks_with_sha256sum(runtime: Runtime, clock: ManualClock, tmp_path: Path) -> None:
    ref = _case_with_everything(runtime, clock)
    out = tmp_path / "bundle"
    result = export_case(runtime, ref, out, exported_by="alice")
    listing = _sha256sum_c(out)
    names = {line.rsplit(": ", 1)[0] for line in listing.splitlines()}
    assert {
        "case.json",
        "timeline.json",
        "audit.json",
        "README.txt",
        "policy/clause-1.8.txt",
        "policy/clause-4.txt",
    } <= names
    raw = [n for n in names if n.startswith("raw/")]
    assert len(raw) == 1
    assert (out / raw[0]).read_bytes() == COMPLAINT
    evidence = [n for n in names if n.startswith("evidence/")]
    assert len(evidence) == 1  # the notice as sent
    assert b"Message-ID: <nt_" in (out / evidence[0]).read_bytes()
    assert result.files == len(names) + 1

    case = json.loads((out / "case.json").read_text())
    assert case["ref"] == ref
    assert case["findings"][0]["data"]["event_ids"] == ["ev_" + "1" * 32]
    timeline = json.loads((out / "timeline.json").read_text())
    types = {e["type"] for e in timeline}
    assert {"transition", "action", "notice", "note"} <= types
    assert any(e["type"] == "notice" and e["status"] == "sent" for e in timeline)
    clause = (out / "policy/clause-1.8.txt").read_text()
    assert runtime.policy.clause("1.8").text.strip() in clause
    assert (out / f"policy/{runtime.policy.version}.txt").read_text() == runtime.policy.source_text
    audit_doc = json.loads((out / "audit.json").read_text())
    assert any(e["action"] == "notice.sent" for e in audit_doc["entries"])
    readme = (out / "README.txt").read_text()
    assert "sha256sum -c SHA256SUMS" in readme
    assert ref in readme

    # a changed file fails the check
    (out / "case.json").write_text("{}")
    proc = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "case.json: FAILED" in proc.stdout


def test_zip_bundle_from_the_cli(runtime: Runtime, clock: ManualClock, tmp_path: Path) -> None:
    ref = _case_with_everything(runtime, clock)
    out = tmp_path / "bundle.zip"
    args = ["--data-dir", str(runtime.settings.data_dir)]
    if runtime.settings.database_url:
        args += ["--database-url", runtime.settings.database_url]
    env = {"ABUSEDESK_TOKEN": people_of(runtime).tokens["alice"]}
    res = CliRunner().invoke(app, [*args, "case", "export", ref.lower(), "--out", str(out), "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["case_ref"] == ref
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(unpacked)
    _sha256sum_c(unpacked)


def test_export_refuses_a_non_empty_directory_and_unknown_case(runtime: Runtime, tmp_path: Path) -> None:
    args = ["--data-dir", str(runtime.settings.data_dir)]
    if runtime.settings.database_url:
        args += ["--database-url", runtime.settings.database_url]
    env = {"ABUSEDESK_TOKEN": people_of(runtime).tokens["alice"]}
    res = CliRunner().invoke(app, [*args, "case", "export", "AD-0000000000", "--out", str(tmp_path / "x")], env=env)
    assert res.exit_code == 1
    assert "does not exist" in res.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    res = CliRunner().invoke(app, [*args, "case", "export", "AD-0000000000", "--out", str(tmp_path / "full")], env=env)
    assert res.exit_code == 2
    assert "not an empty directory" in res.output
