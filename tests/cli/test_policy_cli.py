"""`abusedesk policy show|check|versions`: tables, JSON, exit codes and error lines."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abusedesk.cli.main import app
from abusedesk.policy import load_policy
from abusedesk.runtime import Runtime

SHIPPED_TEXT = resources.files("abusedesk.policy").joinpath("data", "aup-2025-06-10.yaml").read_text("utf-8")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # a data dir of the test's own, so no abusedesk.toml of the developer's is read
    monkeypatch.setenv("ABUSEDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ABUSEDESK_POLICY_FILE", raising=False)
    monkeypatch.delenv("ABUSEDESK_CONFIG", raising=False)
    return CliRunner()


def test_show_lists_every_clause_without_a_database(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["policy", "show"])
    assert result.exit_code == 0, result.output
    policy = load_policy()
    assert policy.version in result.stdout
    rows = [line.split()[0] for line in result.stdout.splitlines()[2:]]
    assert rows == list(policy.clauses)
    assert re.search(r"^1\.8 +Network abuse.* medium +scan, reconnaissance", result.stdout, re.M)
    assert re.search(r"^3 +.*\(enforcement-rights\)$", result.stdout, re.M)
    assert not (tmp_path / "data" / "abusedesk.sqlite3").exists()


def test_show_json_is_the_whole_policy(cli: CliRunner) -> None:
    result = cli.invoke(app, ["policy", "show", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data == json.loads(json.dumps(load_policy().to_dict()))


def test_show_one_clause_in_full(cli: CliRunner) -> None:
    result = cli.invoke(app, ["policy", "show", "1.8"])
    assert result.exit_code == 0, result.output
    clause = load_policy().clause("1.8")
    assert clause.text in result.stdout and clause.summary in result.stdout
    assert "crawling (medium, primary 1.14)" in result.stdout
    assert "playbook: network-abuse" in result.stdout
    assert "escalate-on-repeat action=suspend-service approvals=2 cite=3" in result.stdout


def test_show_one_clause_json(cli: CliRunner) -> None:
    result = cli.invoke(app, ["policy", "show", "1.8", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["id"] == "1.8" and data["policy_version"] == load_policy().version
    assert data["text"] == load_policy().clause("1.8").text
    assert "crawling" not in data["primary_for"] and "scan" in data["primary_for"]
    assert data["kind_severities"]["dos"] == "high"
    assert data["playbook"]["name"] == "network-abuse"
    assert data["playbook"]["steps"]["critical"][1] == {
        "step": "propose",
        "action": "suspend-service",
        "approvals": 2,
        "cite": "3",
    }


def test_show_a_role_clause_says_it_has_no_playbook(cli: CliRunner) -> None:
    result = cli.invoke(app, ["policy", "show", "4"])
    assert result.exit_code == 0
    assert "role:     duty-to-cease" in result.stdout and "playbook: none" in result.stdout


def test_show_unknown_clause_exits_1(cli: CliRunner) -> None:
    result = cli.invoke(app, ["policy", "show", "9.9"])
    assert result.exit_code == 1
    assert "clause '9.9' is not in policy" in result.stderr


def test_show_uses_the_operators_policy_file(cli: CliRunner, tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text(SHIPPED_TEXT.replace("title: Aiven Acceptable Use Policy", "title: Our AUP"), encoding="utf-8")
    by_option = cli.invoke(app, ["--policy-file", str(mine), "policy", "show"])
    assert by_option.exit_code == 0 and by_option.stdout.startswith("Our AUP (aiven-aup@")
    by_env = cli.invoke(app, ["policy", "show"], env={"ABUSEDESK_POLICY_FILE": str(mine)})
    assert by_env.exit_code == 0 and by_env.stdout.startswith("Our AUP (aiven-aup@")


def test_show_with_a_bad_configured_policy_exits_2(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SHIPPED_TEXT.replace("kinds: [load-test]", "kinds: [load-tst]"), encoding="utf-8")
    result = cli.invoke(app, ["--policy-file", str(bad), "policy", "show"])
    assert result.exit_code == 2
    assert f"{bad}:" in result.stderr and "field 'clauses[3].kinds[0]'" in result.stderr


def test_check_good_file(cli: CliRunner) -> None:
    path = resources.files("abusedesk.policy").joinpath("data", "aup-2025-06-10.yaml")
    result = cli.invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 0
    [line] = result.stdout.splitlines()
    assert line.startswith(f"OK {path}: {load_policy().version} ")
    assert "19 clauses" in line and "8 playbooks" in line
    as_json = json.loads(cli.invoke(app, ["policy", "check", str(path), "--json"]).stdout)
    assert as_json["ok"] is True and as_json["clauses"] == 19 and as_json["version"] == load_policy().version


def test_check_bad_file_lists_every_problem_and_exits_2(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        SHIPPED_TEXT.replace("approvals: 2", "approvals: 1", 1).replace("reopen_window: 30d", "reopen_window: 30"),
        encoding="utf-8",
    )
    result = cli.invoke(app, ["policy", "check", str(bad)])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1  # the structure pass stops before the meaning pass
    assert re.fullmatch(rf"{re.escape(str(bad))}:\d+: field 'engine.reopen_window': .*no unit.*", lines[0])
    bad.write_text(SHIPPED_TEXT.replace("approvals: 2", "approvals: 1", 2), encoding="utf-8")
    result = cli.invoke(app, ["policy", "check", str(bad), "--json"])
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["ok"] is False and len(data["errors"]) == 2
    assert all(e["file"] == str(bad) and e["line"] and e["field"].endswith(".approvals") for e in data["errors"])
    assert len(result.stderr.splitlines()) == 2


def test_check_missing_file_exits_2(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["policy", "check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_versions_lists_the_recorded_versions(runtime: Runtime, tmp_path: Path) -> None:
    args = ["--data-dir", str(runtime.settings.data_dir)]
    if runtime.settings.database_url:
        args += ["--database-url", runtime.settings.database_url]
    current = runtime.policy.version
    result = CliRunner().invoke(app, [*args, "policy", "versions", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["current"] == current and [v["version"] for v in data["versions"]] == [current]
    table = CliRunner().invoke(app, [*args, "policy", "versions"])
    assert table.stdout.startswith(f"* {current}  ")
