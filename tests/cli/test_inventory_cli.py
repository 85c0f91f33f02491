"""`abusedesk inventory import|whois`: reports, JSON, exit codes, progress on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abusedesk.cli.main import app
from abusedesk.config import Settings
from abusedesk.runtime import Runtime
from tests.inventory.sample import sample, write_csv_dir, write_json


@pytest.fixture
def cli(runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # the CLI builds its own Runtime from the environment: point it at the test's database and data dir
    monkeypatch.setenv("ABUSEDESK_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("ABUSEDESK_DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("ABUSEDESK_DATABASE_URL", raising=False)
    monkeypatch.delenv("ABUSEDESK_CONFIG", raising=False)
    return CliRunner()


def test_import_json_and_reimport(cli: CliRunner, tmp_path: Path) -> None:
    path = write_json(tmp_path / "inv.json")
    result = cli.invoke(app, ["inventory", "import", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["counts"]["allocations"] == {"added": 7, "unchanged": 0, "closed": 0}
    again = cli.invoke(app, ["inventory", "import", str(path)])
    assert again.exit_code == 0, again.output
    assert "nothing changed" in again.stdout
    assert "allocations  added 0, unchanged 7, closed 0" in again.stdout


def test_import_bad_file_names_every_row_and_exits_2(cli: CliRunner, tmp_path: Path) -> None:
    data = sample()
    data["allocations"][1]["valid_from"] = "2026-01-01T00:00:00"
    data["services"][0]["project_id"] = "prj-x"
    path = write_csv_dir(tmp_path / "csv", data)
    result = cli.invoke(app, ["inventory", "import", str(path)])
    assert result.exit_code == 2
    assert "2 problem(s)" in result.stderr and "nothing was imported" in result.stderr
    assert f"{path / 'allocations.csv'}:3: field 'valid_from': allocations row: time" in result.stderr
    assert f"{path / 'services.csv'}:2: field 'project_id'" in result.stderr
    as_json = cli.invoke(app, ["inventory", "import", str(path), "--json"])
    assert as_json.exit_code == 2
    out = json.loads(as_json.stdout)
    assert not out["ok"]
    assert sorted((e["field"], e["row"]) for e in out["errors"]) == [("project_id", 2), ("valid_from", 3)]
    whois = cli.invoke(app, ["inventory", "whois", "203.0.113.5", "--at", "2026-03-01T12:00:00Z"])
    assert whois.exit_code == 0 and "not ours" in whois.stdout  # nothing was imported


def test_whois_text_and_json(cli: CliRunner, tmp_path: Path) -> None:
    assert cli.invoke(app, ["inventory", "import", str(write_json(tmp_path / "inv.json")), "-q"]).exit_code == 0
    before = cli.invoke(app, ["inventory", "whois", "203.0.113.5", "--at", "2026-03-01T13:59:59+02:00"])
    assert before.exit_code == 0, before.output
    assert "203.0.113.5 at 2026-03-01T11:59:59Z: ours" in before.stdout
    assert "customer:   cus-a (Example A Ltd, abuse@example.com)" in before.stdout
    assert "service:    svc-a (vm 'web-1'; hostnames www.example.com, api.example.com)" in before.stdout
    assert "203.0.113.0/28 [2026-01-01T00:00:00Z, 2026-03-01T12:00:00Z)" in before.stdout
    after = cli.invoke(app, ["inventory", "whois", "203.0.113.5", "--at", "2026-03-01T12:00:00Z", "--json"])
    answer = json.loads(after.stdout)
    assert answer["customer"]["id"] == "cus-b" and answer["valid_to"] is None and answer["ours"]
    v6 = json.loads(cli.invoke(app, ["inventory", "whois", "2001:db8:1::1", "--json"]).stdout)
    assert v6["service_id"] == "svc-a" and v6["prefix"] == "2001:db8:1::/48"


def test_whois_not_ours_exits_0_with_the_reason(cli: CliRunner, tmp_path: Path) -> None:
    assert cli.invoke(app, ["inventory", "import", str(write_json(tmp_path / "inv.json")), "-q"]).exit_code == 0
    never = cli.invoke(app, ["inventory", "whois", "192.0.2.1"])
    assert never.exit_code == 0
    assert "not ours" in never.stdout and "no allocation covers 192.0.2.1 at any time" in never.stdout
    then = json.loads(cli.invoke(app, ["inventory", "whois", "198.51.100.7", "--json"]).stdout)
    assert not then["ours"] and "last held by service svc-a" in then["reason"] and then["customer"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["203.0.113.300"], "is not an IPv4 or IPv6 address"),
        (["203.0.113.5", "--at", "2026-03-01T12:00:00"], "has no time zone"),
        (["203.0.113.5", "--at", "noon"], "is not an ISO 8601 time"),
    ],
)
def test_whois_bad_address_or_time_exits_1(cli: CliRunner, args: list[str], message: str) -> None:
    result = cli.invoke(app, ["inventory", "whois", *args])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr


def test_import_progress_goes_to_stderr(cli: CliRunner, tmp_path: Path) -> None:
    data = sample()
    data["allocations"] += [
        {
            "prefix": f"2001:db8:ff{i >> 16:02x}:{i & 0xFFFF:x}::/64",
            "service_id": "svc-v6",
            "valid_from": "2026-01-01T00:00:00Z",
        }
        for i in range(100_000)
    ]
    result = cli.invoke(app, ["inventory", "import", str(write_json(tmp_path / "big.json", data)), "--json"])
    assert result.exit_code == 0, result.output
    assert "read 100,000 allocations" in result.stderr
    assert "wrote 100,007 of 100,007 allocations" in result.stderr
    assert json.loads(result.stdout)["counts"]["allocations"]["added"] == 100_007
