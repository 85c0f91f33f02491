"""`abusedesk screen email`: one line per address, or JSON; operator lists from the settings file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abusedesk.cli.main import app

pytestmark = pytest.mark.unit


def test_screen_email_text_and_json(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["screen", "email", "a@sub.mailinator.com", "bob@example.org", "nope"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("a@sub.mailinator.com: disposable [list (mailinator.com)]")
    assert lines[1].startswith("bob@example.org: ok [none]")
    assert lines[2].startswith("nope: invalid [syntax]")
    assert lines[3].startswith("knowledge: disposable-email-domains ")
    assert not (tmp_path / "data").exists()  # no database, no DNS without mx_check

    one = json.loads(cli.invoke(app, ["screen", "email", "--json", "x@mailinator.com"]).output)
    assert one["verdict"] == "disposable" and one["matched_domain"] == "mailinator.com"
    assert {entry["name"] for entry in one["lists"]} == {"disposable-email-domains", "mailchecker"}


def test_operator_lists_from_the_settings_file(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deny = tmp_path / "deny.txt"
    deny.write_text("throwaway.example\n")
    conf = tmp_path / "abusedesk.toml"
    conf.write_text(f'[screening]\nallow_domains = ["mailinator.com"]\ndeny_file = "{deny}"\n')
    monkeypatch.setenv("ABUSEDESK_CONFIG", str(conf))
    out = json.loads(cli.invoke(app, ["screen", "email", "--json", "a@mailinator.com", "b@x.throwaway.example"]).output)
    assert [(v["verdict"], v["rule"]) for v in out] == [("ok", "operator-allow"), ("disposable", "operator-deny")]


def test_a_bad_list_file_exits_2_naming_it(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABUSEDESK_SCREENING__DENY_FILE", str(tmp_path / "absent.txt"))
    result = cli.invoke(app, ["screen", "email", "a@example.org"])
    assert result.exit_code == 2
    assert "absent.txt" in result.output
