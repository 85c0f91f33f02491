"""A sample egress log through the whole pipeline: stored, parsed, attributed, judged, cases.

The polite crawler gets nothing; the library-agent crawler that skips robots.txt, requests /private/ and ignores
the crawl delay gets each of those; the browser string copying the site gets the agent and mirroring findings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from abusedesk.cli.main import app
from abusedesk.intake.service import IntakeService
from abusedesk.robots.store import RobotsStore
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import FindingRow
from abusedesk.store.tables.evidence import AuditRow
from abusedesk.store.tables.intake import RawInputRow
from tests.weblog.sample import MIRROR, POLITE, ROBOTS, RUDE, TARGET, squid_log

pytestmark = pytest.mark.integration

META = {"parser": "weblog", "weblog_format": "squid", "filename": "access.log"}


def _rt(rt: Runtime) -> Runtime:
    detectors = {"mirroring": {"min_pages": 70}}
    return Runtime(rt.settings.model_copy(update={"detectors": detectors}), clock=rt.clock, engine=rt.engine)


def findings(rt: Runtime) -> dict[str, set[str]]:
    """subject address → the kinds of finding (detector:group prefix) it got."""
    out: dict[str, set[str]] = {}
    with rt.sessions() as s:
        for row in s.scalars(select(FindingRow)):
            out.setdefault(str(row.subject_ip), set()).add(f"{row.detector}:{row.group_key.split(':')[0]}")
            assert row.case_id is not None
    return out


def test_each_crawler_gets_the_verdict_it_deserves(spine_rt: Runtime) -> None:
    rt = _rt(spine_rt)
    RobotsStore(rt).imported(TARGET, ROBOTS, 200, origin="test")
    accepted = IntakeService(rt).accept(squid_log(), channel="file", meta=META)
    rt.drain()
    got = findings(rt)
    assert POLITE not in got
    assert got[RUDE] == {"crawler_agent:agent", "robots_ignored:robots-unread", "robots_ignored:robots-disallowed",
                         "crawl_delay_ignored:crawl-delay"}  # fmt: skip
    assert got[MIRROR] == {"crawler_agent:agent", "mirroring:mirror", "crawl_delay_ignored:crawl-delay"}
    with rt.sessions() as s:
        rows = {(r.detector, str(r.subject_ip)): r for r in s.scalars(select(FindingRow))}
    disallowed = next(r for r in rows.values() if r.group_key.startswith("robots-disallowed"))
    evidence = disallowed.data["evidence"]
    assert {e["path"] for e in evidence} == {f"/private/{i}" for i in range(0, 60, 5)}
    assert {(e["rule"], e["line"]) for e in evidence} == {("Disallow: /private/", 3)}
    assert disallowed.clauses == ["1.14"]
    delay = rows[("crawl_delay_ignored", RUDE)].data["evidence"][0]
    assert delay["crawl_delay"] == 1.0 and delay["rate_per_s"] > 9
    assert rows[("mirroring", MIRROR)].clauses == ["1.5"]

    before = findings(rt)  # the same log again: a duplicate input, nothing new
    again = IntakeService(rt).accept(squid_log(), channel="file", meta=META)
    rt.drain()
    assert again.duplicate and again.raw.id == accepted.raw.id
    assert findings(rt) == before


def test_without_a_robots_txt_only_what_needs_none_is_judged(spine_rt: Runtime) -> None:
    rt = _rt(spine_rt)
    IntakeService(rt).accept(squid_log(), channel="file", meta=META)
    rt.drain()
    got = findings(rt)
    assert POLITE not in got
    assert got[RUDE] == {"crawler_agent:agent", "robots_ignored:robots-unread"}


def test_weblog_file_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABUSEDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ABUSEDESK_NOTIFY_BACKEND", "null")
    monkeypatch.setenv("ABUSEDESK_CONTROL_BACKEND", "null")
    for var in ("ABUSEDESK_DATABASE_URL", "ABUSEDESK_CONFIG", "ABUSEDESK_POLICY_FILE"):
        monkeypatch.delenv(var, raising=False)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        '{"customers": [{"id": "c1", "name": "C"}], "projects": [{"id": "p1", "customer_id": "c1", "name": "P"}],'
        ' "services": [{"id": "s1", "project_id": "p1", "kind": "vm", "name": "S"}],'
        ' "allocations": [{"prefix": "198.51.100.0/27", "service_id": "s1", "valid_from": "2026-01-01T00:00:00Z"}]}'
    )
    log, robots = tmp_path / "access.log", tmp_path / "robots.txt"
    log.write_bytes(squid_log() + b"not a log line\n")
    robots.write_bytes(ROBOTS)
    runner = CliRunner()
    assert runner.invoke(app, ["inventory", "import", str(inventory)]).exit_code == 0
    assert runner.invoke(app, ["robots", "import", TARGET, str(robots)]).exit_code == 0
    result = runner.invoke(app, ["weblog", "file", str(log), "--format", "squid"])
    assert result.exit_code == 0, result.output
    assert "\nparsed " in "\n" + result.output
    boot = runner.invoke(app, ["user", "bootstrap", "ana", "--json"])
    assert boot.exit_code == 0, boot.output
    token = __import__("json").loads(boot.output)["token"]
    cases = runner.invoke(app, ["case", "list", "--json"], env={"ABUSEDESK_TOKEN": token})
    subjects = {c["group_key"].split(":", 1)[1].split("|")[0] for c in __import__("json").loads(cases.output)}
    assert subjects == {RUDE, MIRROR}
    assert runner.invoke(app, ["weblog", "file", str(log), "--format", "w3c"]).exit_code == 2


def _weblog_findings(rt: Runtime, raw_id: str) -> list[tuple[str, str, str]]:
    """The findings the weblog stage emits for one stored log, its transaction rolled back afterwards."""
    from abusedesk.bus.base import StageBatch
    from abusedesk.weblog.stage import WeblogStage

    with rt.sessions() as s:
        s.begin()
        batch = StageBatch(s, [{"raw_id": raw_id, "format": "squid"}], bus=rt.bus, stage="weblog")
        WeblogStage(rt).handle(batch)
        s.rollback()
    found = [f for o in batch.outputs for f in o.payload["findings"]]
    return sorted((f["detector"], f["group_key"], f["window_start"]) for f in found)


def test_a_log_read_in_small_chunks_gives_the_findings_of_one_chunk(spine_rt: Runtime) -> None:
    """The columnar path carries each crawler's windows and state from chunk to chunk: 4 KiB chunks (nine of
    them, lines cut at chunk ends) give the findings one chunk gives — the same crawlers, detectors and windows.
    (A finding states what was seen when its window crossed the threshold, so its counts are those of the chunks
    read by then, as in ``weblog tail``.)"""
    rt = _rt(spine_rt)
    RobotsStore(rt).imported(TARGET, ROBOTS, 200, origin="test")
    raw = IntakeService(rt).accept(squid_log(), channel="file", meta=META).raw
    whole = _weblog_findings(rt, raw.id)
    assert len(whole) >= 7
    settings = rt.settings.model_copy(update={"parsers": {"weblog": {"chunk_bytes": 4096}}})
    assert len(squid_log()) > 8 * 4096  # nine chunks
    assert _weblog_findings(Runtime(settings, clock=rt.clock, engine=rt.engine), raw.id) == whole


def test_bad_lines_are_named_and_a_log_without_one_good_line_is_quarantined(spine_rt: Runtime) -> None:
    rt = _rt(spine_rt)
    good = squid_log().splitlines()
    log = b"\n".join([good[0], b"garbage one", *good[1:5], b"", b"garbage two"]) + b"\n"
    first = IntakeService(rt).accept(log, channel="file", meta=META)
    junk = IntakeService(rt).accept(b"not a log\nnor this\n", channel="file", meta=META)
    rt.drain()
    with rt.sessions() as s:
        ok, bad = s.get(RawInputRow, first.raw.id), s.get(RawInputRow, junk.raw.id)
        assert ok is not None and bad is not None
        blob = bad.blob or bad.id
        assert ok.status == "parsed" and ok.event_count == 0
        assert [(i["line"], i["reason"]) for i in ok.issues] == [
            (2, "line 2 is not a squid log line"), (8, "line 8 is not a squid log line")]  # fmt: skip
        assert bad.status == "quarantined" and "no line of this input reads as a squid log line" in str(bad.error)
        assert [i["line"] for i in bad.issues] == [1, 2]
        reads = {r.subject_id: r.payload for r in s.scalars(select(AuditRow).where(AuditRow.action == "weblog.read"))}
    assert reads[first.raw.id]["lines"] == 8 and reads[first.raw.id]["requests"] == 5
    assert reads[junk.raw.id]["status"] == "quarantined"
    with rt.raw_store.open(blob) as fh:
        assert fh.read() == b"not a log\nnor this\n"  # the raw input is kept as it came
