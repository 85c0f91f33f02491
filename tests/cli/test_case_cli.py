"""`abusedesk case ...` and `user`/`token`: acting through ABUSEDESK_TOKEN; exit codes 0 / 1 / 2."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from abusedesk.cases.engine import CaseEngine
from abusedesk.cli.main import app
from abusedesk.runtime import Runtime
from tests.cases.support import finding
from tests.support.identities import People


def _run(rt: Runtime, token: str | None, *rest: str, group: str = "case") -> tuple[int, str, str]:
    args = ["--data-dir", str(rt.settings.data_dir)]
    if rt.settings.database_url:
        args += ["--database-url", rt.settings.database_url]
    env = {"ABUSEDESK_TOKEN": token} if token else {}
    res = CliRunner().invoke(app, [*args, group, *rest], env=env)
    return res.exit_code, res.stdout, res.stderr


def test_case_workflow_from_the_command_line(runtime: Runtime, people: People) -> None:
    ref = CaseEngine(runtime).ingest([finding(runtime.policy, 0)]).opened[0]
    alice, bob, carol = (people.tokens[n] for n in ("alice", "bob", "carol"))

    code, _, err = _run(runtime, None, "list")
    assert code == 1
    assert "no API token given" in err
    code, out, _ = _run(runtime, alice, "list", "--json", "--state", "awaiting-customer")
    assert code == 0
    assert [c["ref"] for c in json.loads(out)] == [ref]
    code, out, _ = _run(runtime, alice, "list", "--customer", "cust-z")
    assert (code, out.strip()) == (0, "no cases")

    code, out, err = _run(runtime, alice, "transition", ref, "reinstated", "--reason", "x")
    assert code == 1
    assert "cannot move from 'awaiting-customer' to 'reinstated'" in err

    code, out, _ = _run(runtime, bob, "act", ref, "suspend-service", "--reason", "goes on", "--json")
    assert code == 0
    action = json.loads(out)
    assert action["status"] == "proposed"
    code, _, err = _run(runtime, bob, "approve", action["id"])
    assert code == 1
    assert "a different person must approve it" in err
    code, _, err = _run(runtime, alice, "approve", action["id"])
    assert code == 1
    assert "role analyst" in err
    code, out, _ = _run(runtime, carol, "approve", action["id"])
    assert code == 0
    assert f"{ref} is escalated" in out  # restricted once the control plane has done it

    code, out, _ = _run(runtime, bob, "note", ref, "customer called back")
    assert code == 0
    code, out, _ = _run(runtime, alice, "show", ref)
    assert code == 0
    assert "customer called back" in out
    code, out, _ = _run(runtime, alice, "show", ref, "--json")
    data = json.loads(out)
    assert [e["type"] for e in data["timeline"]].count("note") == 1
    assert data["actions"][-1]["approved_by"] == people["carol"].id

    code, out, _ = _run(runtime, alice, "tick", "--json")
    assert code == 0
    assert json.loads(out)["resolved"] == []
    code, out, _ = _run(runtime, alice, "summary", "--json")
    assert json.loads(out)["by_state"] == {"escalated": 1}


def test_usage_errors_exit_2_and_unknown_case_exits_1(runtime: Runtime, people: People) -> None:
    code, _, _ = _run(runtime, people.tokens["alice"], "transition", "AD-1")
    assert code == 2
    code, _, err = _run(runtime, people.tokens["alice"], "show", "AD-0000000000")
    assert code == 1
    assert "does not exist" in err


def test_bootstrap_users_and_tokens_from_the_command_line(runtime: Runtime) -> None:
    code, out, _ = _run(runtime, None, "bootstrap", "Admin", "--json", group="user")
    assert code == 0
    boot = json.loads(out)
    admin = boot["token"]
    assert boot["user"]["name"] == "admin" and admin.startswith("adk_")
    code, _, err = _run(runtime, None, "bootstrap", "eve", group="user")
    assert code == 1
    assert "an admin exists already" in err
    code, out, _ = _run(runtime, admin, "add", "Erin", "--role", "analyst", "--json", group="user")
    assert code == 0
    assert json.loads(out)["role"] == "analyst"
    code, _, err = _run(runtime, admin, "add", "svc:scheduler", "--role", "admin", group="user")
    assert code == 1
    assert "reserved" in err
    code, out, _ = _run(runtime, admin, "create", "erin", "--json", group="token")
    assert code == 0
    made = json.loads(out)
    erin = made["token"]
    code, _, err = _run(runtime, erin, "add", "frank", "--role", "admin", group="user")
    assert code == 1
    assert "may not user.admin" in err
    code, out, _ = _run(runtime, admin, "list", "--json", group="user")
    assert sorted(u["name"] for u in json.loads(out)) == ["admin", "erin"]
    assert _run(runtime, admin, "revoke", made["id"], group="token")[0] == 0
    code, _, err = _run(runtime, erin, "list", group="case")
    assert code == 1
    assert "revoked" in err
    assert _run(runtime, admin, "disable", "erin", group="user")[0] == 0
