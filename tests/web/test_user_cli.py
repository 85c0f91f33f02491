"""`abusedesk user passwd NAME` (password from standard input) and `abusedesk user totp NAME`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from abusedesk.cli.main import app
from abusedesk.identity.sessions import FULL, PASSWORD, WebSessionService
from abusedesk.runtime import Runtime
from tests.support.identities import People


def _run(rt: Runtime, token: str, *rest: str, stdin: str = "") -> tuple[int, str, str]:
    args = ["--data-dir", str(rt.settings.data_dir)]
    if rt.settings.database_url:
        args += ["--database-url", rt.settings.database_url]
    res = CliRunner().invoke(app, [*args, "user", *rest], env={"ABUSEDESK_TOKEN": token}, input=stdin)
    return res.exit_code, res.stdout, res.stderr


def test_passwd_reads_stdin_and_the_user_signs_in(runtime: Runtime, people: People) -> None:
    root, alice = people.tokens["root"], people.tokens["alice"]
    code, out, _ = _run(runtime, root, "passwd", "alice", "--json", stdin="a long console password\n")
    assert code == 0, out
    assert json.loads(out)["password"] is True
    assert WebSessionService(runtime).sign_in("alice", "a long console password").level == FULL
    code, _, err = _run(runtime, alice, "passwd", "bob", stdin="a long console password\n")
    assert code == 1 and "user.admin" in err  # an analyst sets only her own
    code, _, err = _run(runtime, root, "passwd", "alice", stdin="short\n")
    assert code == 1 and "at least 12" in err
    code, _, err = _run(runtime, root, "passwd", "alice", stdin="")
    assert code == 1 and "no password on standard input" in err


def test_totp_enrols_and_is_then_asked(runtime: Runtime, people: People) -> None:
    from tests.support.web import WebUsers

    root = people.tokens["root"]
    _run(runtime, root, "passwd", "bob", stdin="bob's long password\n")
    code, out, _ = _run(runtime, root, "totp", "bob")
    assert code == 0 and "secret: " in out and "otpauth://totp/" in out
    secret = out.split("secret: ")[1].split()[0]
    service = WebSessionService(runtime)
    pending = service.sign_in("bob", "bob's long password")
    assert pending.level == PASSWORD
    users = WebUsers(runtime, totp={"bob": secret})
    assert service.second_factor(pending.token, users.code("bob")).level == FULL
