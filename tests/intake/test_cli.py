"""`abusedesk intake file|retry|quarantine|show|watch` end to end, and recovery of inputs stored but never parsed."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from abusedesk.cli.main import app
from abusedesk.config import Settings
from abusedesk.intake.service import IntakeService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import EventRow, RawInputRow
from tests.intake.samples import complaint, xarf, xarf_bytes


@pytest.fixture
def cli(runtime: Runtime, settings: Settings):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        base += ["--database-url", settings.database_url]

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, [*base, *args], env={"ABUSEDESK_NOTIFY_BACKEND": "null"})
        # --json output is the stdout alone (log lines go to stderr); otherwise both, as a person sees them
        return result.exit_code, result.stdout if "--json" in args else result.output

    return invoke


def _rows(rt: Runtime) -> list[RawInputRow]:
    with rt.sessions() as s:
        return list(s.scalars(select(RawInputRow).order_by(RawInputRow.received_at)))


def test_file_import_json_and_reimport(cli, runtime: Runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    box = mailbox.mbox(tmp_path / "in.mbox")
    box.add(complaint())
    box.flush()
    box.close()
    (tmp_path / "r.json").write_bytes(xarf_bytes())
    code, out = cli("intake", "file", str(tmp_path / "in.mbox"), str(tmp_path / "r.json"), "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert [r["duplicate"] for r in rows] == [False, False]
    by_source = {Path(r["source"].split("#")[0]).name: r for r in rows}
    assert by_source["r.json"]["status"] == "parsed"
    code, out = cli("intake", "file", str(tmp_path / "in.mbox"), str(tmp_path / "r.json"), "--json")
    assert code == 0, out
    assert [r["duplicate"] for r in json.loads(out)] == [True, True]
    assert len(_rows(runtime)) == 2


def test_file_import_tells_each_files_fate(cli, runtime: Runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in"  # not tmp_path itself: the data dir is in there
    src.mkdir()
    (src / "a.eml").write_bytes(complaint())
    # the same Message-ID from the same sender with other content: a new report, related to a.eml
    (src / "b.eml").write_bytes(
        complaint(subject="Spam from 192.0.2.21", body="Your host 192.0.2.21 sent us spam at 08:10 UTC.\n")
    )
    # a.eml as another mailbox kept it: a duplicate, never "parsed"
    (src / "c.eml").write_bytes(b"Received: from mx2.example.net by mx.provider.example\n" + complaint())
    bad = xarf()
    bad.pop("protocol")
    (src / "d.json").write_text(json.dumps(bad))
    code, out = cli("intake", "file", str(src), "--json")
    assert code == 0, out
    rows = {Path(r["source"]).name: r for r in json.loads(out)}
    a, b, c, d = (rows[n] for n in ("a.eml", "b.eml", "c.eml", "d.json"))
    assert (a["status"], a["duplicate"], a["events"], a["parser"]) == ("parsed", False, 1, "freetext")
    assert "related_to" not in a
    assert (b["status"], b["duplicate"], b["events"]) == ("parsed", False, 1)
    assert (b["related_to"], Path(b["related_to_source"]).name) == (a["reference"], "a.eml")
    assert b["reference"] != a["reference"]
    assert (c["status"], c["duplicate"], c["duplicate_of"], c["original_status"]) == (
        "duplicate",
        True,
        a["reference"],
        "parsed",
    )
    assert Path(c["duplicate_of_source"]).name == "a.eml"
    assert "events" not in c
    assert (d["status"], d["parser"], d["events"]) == ("quarantined", "xarf", 0)
    assert "protocol" in d["reason"]
    assert len(_rows(runtime)) == 3
    code, out = cli("intake", "show", b["reference"], "--json")
    assert json.loads(out)["related_to"] == a["reference"]
    # the human form says the same; a second import finds every file a duplicate of itself
    code, out = cli("intake", "file", str(src))
    lines = {Path(line.split()[-1]).name: line for line in out.splitlines() if line.strip()}
    assert lines["c.eml"].startswith(f"duplicate    {a['reference']} (duplicate of {a['reference']}, ")
    assert lines["b.eml"].startswith(f"duplicate    {b['reference']} (duplicate of {b['reference']}, parsed)")
    assert lines["d.json"].startswith(f"duplicate    {d['reference']} (duplicate of {d['reference']}, quarantined)")
    assert len(_rows(runtime)) == 3


def test_file_import_text_names_reasons_and_relations(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in"  # not tmp_path itself: the data dir is in there
    src.mkdir()
    (src / "a.eml").write_bytes(complaint())
    (src / "b.eml").write_bytes(complaint(subject="Spam from 192.0.2.21"))
    bad = xarf()
    bad.pop("protocol")
    (src / "d.json").write_text(json.dumps(bad))
    code, out = cli("intake", "file", str(src))
    assert code == 0, out
    lines = {Path(line.split()[-1]).name: line for line in out.splitlines() if line.strip()}
    assert lines["a.eml"].startswith("parsed ")
    assert "(related to " in lines["b.eml"] and lines["b.eml"].startswith("parsed ")
    assert lines["d.json"].startswith("quarantined ") and "protocol" in lines["d.json"]
    assert out.splitlines()[-1] == "3 inputs: 2 parsed, 1 quarantined, 0 rejected"


def test_file_import_refuses_oversized_with_exit_1(cli, runtime: Runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runtime.settings.intake.max_input_bytes = 10  # the CLI builds its own settings; use the env instead
    big = tmp_path / "big.txt"
    big.write_bytes(b"z" * 100)
    result = CliRunner().invoke(
        app,
        ["--data-dir", str(runtime.settings.data_dir)]
        + (["--database-url", runtime.settings.database_url] if runtime.settings.database_url else [])
        + ["intake", "file", str(big)],
        # a file that is not mail streams in up to max_file_bytes
        env={"ABUSEDESK_INTAKE__MAX_INPUT_BYTES": "50", "ABUSEDESK_INTAKE__MAX_FILE_BYTES": "80"},
    )
    assert result.exit_code == 1
    assert "big.txt is 100 bytes, over the limit of 80 bytes (setting intake.max_file_bytes)" in result.output


def test_quarantine_show_and_retry(cli, runtime: Runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = xarf()
    bad.pop("protocol")
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    code, out = cli("intake", "file", str(tmp_path / "bad.json"))
    assert code == 0, out
    assert out.startswith("quarantined")
    code, out = cli("intake", "quarantine", "--json")
    (q,) = json.loads(out)
    assert q["filename"] == "bad.json"
    assert "protocol" in q["reason"]
    code, out = cli("intake", "quarantine")
    assert q["reference"] in out
    code, out = cli("intake", "show", q["reference"], "--json")
    shown = json.loads(out)
    assert shown["status"] == "quarantined"
    assert shown["raw_id"] == q["raw_id"]
    code, out = cli("intake", "show", q["reference"])
    assert "quarantined" in out
    # retry re-runs it (still failing: same reason), attempts go up
    code, out = cli("intake", "retry", "--all", "--json")
    assert code == 0, out
    (again,) = json.loads(out)
    assert again["status"] == "quarantined"
    code, out = cli("intake", "retry", q["reference"])
    assert "0 of 1 parsed" in out
    with runtime.sessions() as s:
        assert s.get(RawInputRow, q["raw_id"]).attempts == 3  # type: ignore[union-attr]
    code, out = cli("intake", "retry")
    assert code == 2
    code, out = cli("intake", "show", "ffffffffffffffff")
    assert code == 1
    assert "no report has the reference" in out


def test_stored_but_never_parsed_is_recovered_without_duplicates(cli, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
    # accept ran (bytes and row stored, raw.stored published) but the process died before the parse stage:
    # the in-process bus of that process is gone, so nothing will ever parse it unless we sweep
    accepted = IntakeService(runtime).accept(xarf_bytes(), channel="http", report_ref="xarf:x")
    assert _rows(runtime)[0].status == "stored"
    code, out = cli("intake", "retry", "--stored", "--json")
    assert code == 0, out
    (outcome,) = json.loads(out)
    assert outcome["status"] == "parsed"
    assert outcome["raw_id"] == accepted.raw.id
    # a second sweep (or a redelivery) changes nothing: same events, no new rows
    code, out = cli("intake", "retry", accepted.raw.id[:16], "--json")
    assert json.loads(out)[0]["status"] == "parsed"
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(EventRow)) == 1
        assert s.scalar(select(func.count()).select_from(RawInputRow)) == 1
    code, out = cli("intake", "retry", "--stored", "--json")
    assert json.loads(out) == []


def test_watch_once(cli, runtime: Runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.json").write_bytes(xarf_bytes())
    code, out = cli("intake", "watch", str(drop), "--once")
    assert code == 0, out
    assert "1 input: 1 parsed, 0 quarantined, 0 rejected" in out
    assert (drop / ".done" / "a.json").exists()
    assert _rows(runtime)[0].status == "parsed"
