"""`abusedesk audit verify`: exit 0 and the head when intact, exit 1 naming the entry when not."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import text
from typer.testing import CliRunner

from abusedesk.cli.main import app
from abusedesk.evidence import audit, checkpoints
from abusedesk.runtime import Runtime


def _args(rt: Runtime, *rest: str) -> list[str]:
    args = ["--data-dir", str(rt.settings.data_dir)]
    if rt.settings.database_url:
        args += ["--database-url", rt.settings.database_url]
    return [*args, "audit", "verify", *rest]


def _fill(rt: Runtime, n: int) -> None:
    for i in range(n):
        with rt.sessions() as s, s.begin():
            audit.append(
                s,
                at=rt.clock.now() + timedelta(seconds=i),
                actor="t",
                action="case.note",
                subject_type="case",
                subject_id=f"c{i}",
                payload={"i": i},
            )


def _keygen(rt: Runtime) -> None:
    args = _args(rt)
    res = CliRunner().invoke(app, [*args[: args.index("verify")], "keygen"])
    assert res.exit_code == 0, res.output
    assert "BEGIN PUBLIC KEY" in res.output


def test_verify_intact_then_tampered(runtime: Runtime) -> None:
    _fill(runtime, 4)
    _keygen(runtime)
    cli = CliRunner()
    ok = cli.invoke(app, _args(runtime, "--json"))
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["ok"] is True
    assert data["entries"] == 4
    assert data["anchor_seq"] == 4
    head = data["head"]
    assert head.startswith("4:")

    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET subject_id = 'other' WHERE seq = 2"))
    bad = cli.invoke(app, _args(runtime))
    assert bad.exit_code == 1
    assert "BROKEN at entry 2" in bad.output


def test_verify_tail_deletion_with_expect_head_and_checkpoints(runtime: Runtime) -> None:
    _fill(runtime, 3)
    _keygen(runtime)
    cli = CliRunner()
    head = json.loads(cli.invoke(app, _args(runtime, "--json")).output)["head"]
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    checkpoints.log_path(runtime.settings).unlink()  # the insider removes the checkpoints too
    res = cli.invoke(app, _args(runtime, "--json"))
    assert res.exit_code == 1  # no signed checkpoint: not intact
    assert "no signed checkpoint" in json.loads(res.output)["problem"]
    res = cli.invoke(app, _args(runtime, "--unsigned", "--json", "--expect-head", head))
    assert res.exit_code == 1
    data = json.loads(res.output)
    assert data["first_bad_seq"] == 3
    assert "deleted from the end" in data["problem"]


def test_empty_log_without_checkpoint_is_not_intact(runtime: Runtime) -> None:
    res = CliRunner().invoke(app, _args(runtime))
    assert res.exit_code == 1
    assert "no signed checkpoint" in res.output
    _keygen(runtime)  # a new desk: keygen signs the empty head
    res = CliRunner().invoke(app, _args(runtime))
    assert res.exit_code == 0, res.output
    assert "intact: 0 entries" in res.output


def test_bad_expect_head_exits_2(runtime: Runtime) -> None:
    res = CliRunner().invoke(app, _args(runtime, "--expect-head", "zzz"))
    assert res.exit_code == 2


def _cmd(rt: Runtime, *rest: str) -> list[str]:
    args = _args(rt)
    return [*args[: args.index("audit") + 1], *rest]


def test_keygen_public_key_and_checkpoint_commands(runtime: Runtime) -> None:
    cli = CliRunner()
    _fill(runtime, 2)
    made = cli.invoke(app, _cmd(runtime, "keygen"))
    assert made.exit_code == 0, made.output
    assert "signed checkpoint" in made.output
    key = checkpoints.key_path(runtime.settings)
    assert key.stat().st_mode & 0o777 == 0o600
    again = cli.invoke(app, _cmd(runtime, "keygen"))
    assert again.exit_code == 2  # a ConfigError: the key exists
    assert "already exists" in again.output
    pub = cli.invoke(app, _cmd(runtime, "public-key"))
    assert pub.exit_code == 0
    assert pub.output == checkpoints.public_key_path(key).read_text()
    checkpoints.log_path(runtime.settings).unlink()
    signed = cli.invoke(app, _cmd(runtime, "checkpoint"))
    assert signed.exit_code == 0
    assert "checkpoint 1: entry 2 signed" in signed.output
    assert cli.invoke(app, _cmd(runtime, "verify")).exit_code == 0


def test_keygen_refuses_to_sign_a_broken_chain(runtime: Runtime) -> None:
    _fill(runtime, 3)
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'x' WHERE seq = 2"))
    res = CliRunner().invoke(app, _cmd(runtime, "keygen"))
    assert res.exit_code == 1
    assert "BROKEN at entry 2" in res.output
    assert not checkpoints.key_path(runtime.settings).exists()
