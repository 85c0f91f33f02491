"""`abusedesk case ...`: list, show, transition, act, approve, note, tick; exit codes 0 / 1 / 2."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from abusedesk.cases.engine import CaseEngine
from abusedesk.cli.main import app
from abusedesk.runtime import Runtime
from tests.cases.support import finding


def _run(rt: Runtime, *rest: str) -> tuple[int, str, str]:
    args = ["--data-dir", str(rt.settings.data_dir)]
    if rt.settings.database_url:
        args += ["--database-url", rt.settings.database_url]
    res = CliRunner().invoke(app, [*args, "case", *rest])
    return res.exit_code, res.stdout, res.stderr


def test_case_workflow_from_the_command_line(runtime: Runtime) -> None:
    ref = CaseEngine(runtime).ingest([finding(runtime.policy, 0)]).opened[0]

    code, out, _ = _run(runtime, "list", "--json", "--state", "awaiting-customer")
    assert code == 0
    assert [c["ref"] for c in json.loads(out)] == [ref]
    code, out, _ = _run(runtime, "list", "--customer", "cust-z")
    assert (code, out.strip()) == (0, "no cases")

    code, out, err = _run(runtime, "transition", ref, "reinstated", "--actor", "alice", "--reason", "x")
    assert code == 1
    assert "cannot move from 'awaiting-customer' to 'reinstated'" in err

    code, out, _ = _run(runtime, "act", ref, "suspend-service", "--actor", "alice", "--reason", "goes on", "--json")
    assert code == 0
    action = json.loads(out)
    assert action["status"] == "proposed"
    code, _, err = _run(runtime, "approve", action["id"], "--actor", "alice")
    assert code == 1
    assert "a different person must approve it" in err
    code, out, _ = _run(runtime, "approve", action["id"], "--actor", "bob")
    assert code == 0
    assert f"{ref} is restricted" in out

    code, out, _ = _run(runtime, "note", ref, "customer called back", "--actor", "bob")
    assert code == 0
    code, out, _ = _run(runtime, "show", ref)
    assert code == 0
    assert "restricted" in out
    assert "customer called back" in out
    code, out, _ = _run(runtime, "show", ref, "--json")
    data = json.loads(out)
    assert [e["type"] for e in data["timeline"]].count("note") == 1
    assert data["actions"][-1]["approved_by"] == "bob"

    code, out, _ = _run(runtime, "tick", "--json")
    assert code == 0
    assert json.loads(out)["resolved"] == []
    code, out, _ = _run(runtime, "summary", "--json")
    assert json.loads(out)["by_state"] == {"restricted": 1}


def test_usage_errors_exit_2_and_unknown_case_exits_1(runtime: Runtime) -> None:
    code, _, _ = _run(runtime, "transition", "AD-1")
    assert code == 2
    code, _, err = _run(runtime, "show", "AD-0000000000")
    assert code == 1
    assert "does not exist" in err
