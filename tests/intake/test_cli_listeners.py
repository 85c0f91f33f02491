"""`abusedesk intake smtp` as a real process (Ctrl-C stops it) and `abusedesk intake imap --once`."""

from __future__ import annotations

import imaplib
import json
import os
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from abusedesk.cli.main import app
from abusedesk.config import Settings
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import RawInputRow
from tests.intake.dovecot import Dovecot
from tests.intake.samples import complaint
from tests.intake.test_smtp import crlf
from tests.support.components import free_port, wait_for_port

pytestmark = pytest.mark.integration


def _base(settings: Settings) -> list[str]:
    base = ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        base += ["--database-url", settings.database_url]
    return base


def test_smtp_command_serves_until_interrupted(runtime: Runtime, settings: Settings) -> None:
    port = free_port()
    env = {**os.environ, "ABUSEDESK_NOTIFY_BACKEND": "null"}
    cmd = [
        str(Path(sys.executable).parent / "abusedesk"),
        *_base(settings),
        "intake",
        "smtp",
        "--listen",
        f"127.0.0.1:{port}",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port("127.0.0.1", port, timeout=90)  # start-up imports and migrates
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
            c.ehlo()
            c.mail("reporter@example.net")
            c.rcpt("abuse@provider.example")
            code, reply = c.data(crlf(complaint()))
        assert code == 250, reply
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)  # it finishes the mail it took in first
    assert proc.returncode == 0, err.decode()
    assert f"SMTP intake on 127.0.0.1:{port}" in out.decode()
    raw_id = reply.decode().split("stored as ", 1)[1].split()[0]
    with runtime.sessions() as s:
        row = s.get(RawInputRow, raw_id)
        assert row is not None
        assert row.channel == "smtp"


def test_imap_once(runtime: Runtime, settings: Settings, dovecot: Dovecot, tmp_path: Path) -> None:
    conn = imaplib.IMAP4(dovecot.host, dovecot.port)
    conn.login(dovecot.user, dovecot.password)
    conn.append("INBOX", None, None, crlf(complaint()))
    args = [*_base(settings), "intake", "imap", "--host", dovecot.host, "--port", str(dovecot.port)]
    args += ["--user", dovecot.user, "--once", "--json"]
    result = CliRunner().invoke(
        app, args, env={"ABUSEDESK_IMAP__PASSWORD": dovecot.password, "ABUSEDESK_NOTIFY_BACKEND": "null"}
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["duplicate"] is False
    conn.select("INBOX")
    _, flags = conn.fetch("1", "(FLAGS)")
    conn.logout()
    assert b"\\Seen" in flags[0]
    with runtime.sessions() as s:
        assert s.scalars(select(RawInputRow.channel)).all() == ["imap"]


def test_imap_mailbox_and_login_from_the_settings(
    runtime: Runtime, settings: Settings, dovecot: Dovecot, tmp_path: Path
) -> None:
    """The whole account in [imap] of the data dir's TOML and the password in the environment: no options."""
    conn = imaplib.IMAP4(dovecot.host, dovecot.port)
    conn.login(dovecot.user, dovecot.password)
    conn.append("INBOX", None, None, crlf(complaint()))
    conn.logout()
    toml = settings.data_dir / "abusedesk.toml"
    toml.write_text(
        f'[imap]\nhost = "{dovecot.host}"\nport = {dovecot.port}\nuser = "{dovecot.user}"\n', encoding="utf-8"
    )
    args = [*_base(settings), "intake", "imap", "--once", "--json"]
    env = {"ABUSEDESK_NOTIFY_BACKEND": "null", "ABUSEDESK_CONFIG": None}
    missing = CliRunner().invoke(app, args, env=env)
    assert missing.exit_code == 2
    error = json.loads(missing.stdout)  # under --json the error is JSON too (issue 11)
    assert error["ok"] is False and error["status"] == 2
    assert "no IMAP password: set imap.password (env ABUSEDESK_IMAP__PASSWORD)" in error["error"]
    result = CliRunner().invoke(app, args, env=env | {"ABUSEDESK_IMAP__PASSWORD": dovecot.password})
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["duplicate"] is False
    with runtime.sessions() as s:
        assert s.scalars(select(RawInputRow.channel)).all() == ["imap"]


def test_the_old_imap_password_variable_is_named_not_ignored(settings: Settings) -> None:
    args = [*_base(settings), "intake", "imap", "--host", "127.0.0.1", "--user", "abuse", "--once"]
    result = CliRunner().invoke(app, args, env={"ABUSEDESK_IMAP_PASSWORD": "x"})
    assert result.exit_code == 2
    assert "ABUSEDESK_IMAP_PASSWORD is no longer read; set ABUSEDESK_IMAP__PASSWORD instead" in result.stderr
