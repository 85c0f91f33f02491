"""The command line as a new user meets it (issue 11, item 5): quick start-up, plain help, ``--json`` everywhere
with errors as JSON, quiet logs unless ``-v``, and a database at its head left alone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from abusedesk.cli.main import COMMANDS, app, load_command
from abusedesk.config import Settings
from abusedesk.runtime import Runtime
from abusedesk.store.db import head_revisions, is_at_head, make_engine
from tests.intake.samples import complaint

SRC = str(Path(__file__).parents[2] / "src")


def _leaves(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _leaves(sub, [*path, name])
    else:
        yield path, cmd


def _all_leaves() -> list[tuple[list[str], Any]]:
    root = typer.main.get_command(app)
    out: list[tuple[list[str], Any]] = []
    for name in root.list_commands(None):  # type: ignore[attr-defined]
        out += list(_leaves(root.get_command(None, name), [name]))  # type: ignore[attr-defined]
    return out


def _imports(*argv: str) -> str:
    """The modules ``abusedesk ARGV`` imports (``python -X importtime``), as one text."""
    code = f"import sys; sys.argv = ['abusedesk', *{list(argv)!r}]; from abusedesk.cli.main import main; main()"
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stderr


@pytest.mark.parametrize("argv", [("--help",), ("version",), ("version", "--json"), ("case", "--help")])
def test_help_and_version_import_no_database_or_settings_layer(argv: tuple[str, ...]) -> None:
    imported = _imports(*argv)
    for heavy in ("sqlalchemy", "pydantic_settings", "alembic", "fastapi", "numpy", "abusedesk.runtime", "rich"):
        assert f" {heavy}\n" not in imported and f" {heavy}." not in imported, heavy


def test_top_level_help_lists_every_command_group() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in [*COMMANDS, "version", "kinds", "init"]:
        assert f"\n  {name} " in result.stdout


def test_every_command_takes_json_and_no_flag_shows_a_bool_metavar() -> None:
    leaves = _all_leaves()
    assert len(leaves) > 25
    without = [" ".join(p) for p, cmd in leaves if "--json" not in [o for prm in cmd.params for o in prm.opts]]
    assert without == []
    for path, _ in leaves:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.stdout, path


def test_single_command_groups_stay_groups() -> None:
    assert "verify" in load_command("audit").commands  # type: ignore[attr-defined]


def test_version_json() -> None:
    result = CliRunner().invoke(app, ["version", "--json"])
    assert result.exit_code == 0
    assert set(json.loads(result.stdout)) == {"version"}


def test_errors_under_json_are_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "typo"), "case", "list", "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert error["ok"] is False and error["status"] == 2
    assert "does not exist" in error["error"]
    assert not (tmp_path / "typo").exists()  # refused, not created
    plain = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "typo"), "case", "list"])
    assert plain.exit_code == 2 and plain.stdout == "" and plain.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["case", "list", "--bogus", "--json"], "No such option: --bogus"),
        (["case", "lst", "--json"], "No such command 'lst'"),
    ],
)
def test_usage_errors_under_json_are_json(argv: list[str], message: str) -> None:
    code = f"import sys; sys.argv = ['abusedesk', *{argv!r}]; from abusedesk.cli.main import main; main()"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": SRC}, check=False, timeout=60
    )
    assert run.returncode == 2
    error = json.loads(run.stdout)
    assert error["ok"] is False and error["status"] == 2 and message in error["error"]


def _base(settings: Settings) -> list[str]:
    base = ["--data-dir", str(settings.data_dir)]
    return base + (["--database-url", settings.database_url] if settings.database_url else [])


def test_logs_stay_quiet_unless_verbose(runtime: Runtime, settings: Settings, tmp_path: Path) -> None:
    mail = tmp_path / "a.eml"
    mail.write_bytes(complaint())
    env = {"ABUSEDESK_NOTIFY_BACKEND": "null", "ABUSEDESK_LOG_LEVEL": None}
    quiet = CliRunner().invoke(app, [*_base(settings), "intake", "file", str(mail)], env=env)
    assert quiet.exit_code == 0, quiet.output
    assert " INFO " not in quiet.stderr
    mail.write_bytes(complaint(message_id="<other@example.net>", subject="Spam from 192.0.2.21"))
    loud = CliRunner().invoke(app, [*_base(settings), "-v", "intake", "file", str(mail)], env=env)
    assert loud.exit_code == 0, loud.output
    assert " INFO abusedesk." in loud.stderr


def test_a_database_at_its_head_is_not_migrated_again(runtime: Runtime, tmp_path: Path) -> None:
    assert head_revisions() == {"0001"}
    assert is_at_head(runtime.engine)
    fresh = make_engine(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    try:
        assert not is_at_head(fresh)
    finally:
        fresh.dispose()
