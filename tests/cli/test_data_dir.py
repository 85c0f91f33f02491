"""`--data-dir`: its abusedesk.toml is read (below flags and environment), and a missing one is refused by
commands that only read (issue 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from abusedesk.cli.main import app
from tests.inventory.sample import write_json


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("ABUSEDESK_DATA_DIR", "ABUSEDESK_DATABASE_URL", "ABUSEDESK_CONFIG", "ABUSEDESK_POLICY_FILE"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def _data_dir_with_toml(path: Path, database: Path) -> Path:
    path.mkdir(parents=True)
    (path / "abusedesk.toml").write_text(f'database_url = "sqlite:///{database}"\n', encoding="utf-8")
    return path


def test_data_dir_option_reads_the_toml_file_in_it(cli: CliRunner, tmp_path: Path) -> None:
    data = _data_dir_with_toml(tmp_path / "desk", tmp_path / "from-toml.sqlite3")
    result = cli.invoke(app, ["--data-dir", str(data), "init"])
    assert result.exit_code == 0, result.output
    assert "from-toml.sqlite3" in result.stdout
    assert (tmp_path / "from-toml.sqlite3").is_file()
    assert not (data / "abusedesk.sqlite3").exists()


def test_the_flag_beats_the_environment_for_the_data_dir(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _data_dir_with_toml(tmp_path / "env-desk", tmp_path / "env-toml.sqlite3")
    data = _data_dir_with_toml(tmp_path / "flag-desk", tmp_path / "flag-toml.sqlite3")
    monkeypatch.setenv("ABUSEDESK_DATA_DIR", str(other))
    result = cli.invoke(app, ["--data-dir", str(data), "init"])
    assert result.exit_code == 0, result.output
    assert "flag-toml.sqlite3" in result.stdout and "env-toml" not in result.stdout


def test_precedence_flags_then_environment_then_toml(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _data_dir_with_toml(tmp_path / "desk", tmp_path / "toml.sqlite3")
    monkeypatch.setenv("ABUSEDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    by_env = cli.invoke(app, ["--data-dir", str(data), "init"])
    assert by_env.exit_code == 0, by_env.output
    assert "env.sqlite3" in by_env.stdout
    by_flag = cli.invoke(
        app, ["--data-dir", str(data), "--database-url", f"sqlite:///{tmp_path / 'flag.sqlite3'}", "init"]
    )
    assert by_flag.exit_code == 0, by_flag.output
    assert "flag.sqlite3" in by_flag.stdout
    assert not (tmp_path / "toml.sqlite3").exists()


def test_a_toml_in_the_data_dir_may_not_move_the_data_dir(cli: CliRunner, tmp_path: Path) -> None:
    data = tmp_path / "desk"
    data.mkdir()
    (data / "abusedesk.toml").write_text(f'data_dir = "{tmp_path / "elsewhere"}"\n', encoding="utf-8")
    result = cli.invoke(app, ["--data-dir", str(data), "init"])
    assert result.exit_code == 2
    assert "abusedesk.toml sets data_dir" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["case", "list"],
        ["audit", "verify"],
        ["dlq", "show"],
        ["inventory", "whois", "192.0.2.1"],
        ["intake", "quarantine"],
        ["intake", "retry", "--all"],
        ["policy", "versions"],
    ],
)
def test_a_missing_data_dir_is_refused_by_commands_that_only_read(
    cli: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "typo-desk"
    result = cli.invoke(app, ["--data-dir", str(missing), *command])
    assert result.exit_code == 2, result.output
    assert f"data directory {missing} does not exist" in result.stderr
    assert not missing.exists()


def test_a_data_dir_that_is_a_file_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    a_file = tmp_path / "desk"
    a_file.write_text("not a directory\n")
    result = cli.invoke(app, ["--data-dir", str(a_file), "case", "list"])
    assert result.exit_code == 2 and f"data directory {a_file} is not a directory" in result.stderr


def test_commands_that_bring_data_create_the_data_dir(cli: CliRunner, tmp_path: Path) -> None:
    for command in (["init"], ["inventory", "import", str(write_json(tmp_path / "inv.json"))]):
        fresh = tmp_path / f"new-{command[0]}"
        result = cli.invoke(app, ["--data-dir", str(fresh), *command])
        assert result.exit_code == 0, result.output
        assert (fresh / "abusedesk.sqlite3").is_file()
    mail = tmp_path / "complaint.eml"
    mail.write_bytes(b"From: a@example.net\r\nTo: abuse@example.com\r\nSubject: spam\r\n\r\n192.0.2.1 spams\r\n")
    fresh = tmp_path / "new-intake"
    result = cli.invoke(app, ["--data-dir", str(fresh), "intake", "file", str(mail)])
    assert result.exit_code in (0, 1), result.output  # parsed or quarantined: either way it was taken in
    assert (fresh / "abusedesk.sqlite3").is_file() and (fresh / "raw").is_dir()
