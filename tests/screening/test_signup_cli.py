"""`abusedesk screen signup|accounts|demo`: signups into the pipeline, re-screening, the signup demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abusedesk.cli.main import app
from abusedesk.demo.signups import run_signup_demo

pytestmark = pytest.mark.integration


def test_signup_from_options_and_from_a_file(cli: CliRunner, tmp_path: Path) -> None:
    r = cli.invoke(app, ["screen", "signup", "--email", "a@mailinator.com", "--customer-id", "c1",
                         "--at", "2026-03-01T10:00:00Z", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["status"] == "parsed"
    assert out["events"] == [{"email": "a@mailinator.com", "verdict": "disposable", "rule": "list"}]
    assert [(f["kind"], f["clause"], f["customer"]) for f in out["findings"]] == [("disposable-email", "2", "c1")]

    lines = tmp_path / "signups.jsonl"
    lines.write_text(
        '{"type": "signup", "time": "2026-03-01T11:00:00Z", "email": "b@example.org", "customer_id": "c2"}\ngarbage\n'
    )
    r = cli.invoke(app, ["screen", "signup", "--file", str(lines)])
    assert r.exit_code == 0, r.output
    assert "b@example.org: ok [none]" in r.output
    assert "issue: line 2 is not JSON" in r.output


def test_signup_needs_exactly_one_source(cli: CliRunner) -> None:
    assert cli.invoke(app, ["screen", "signup"]).exit_code == 2


def test_screen_accounts(cli: CliRunner, tmp_path: Path) -> None:
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps({
        "customers": [{"id": "c1", "name": "One", "contact_email": "boss@mailinator.com"}],
        "accounts": [{"id": "a1", "customer_id": "c1", "email": "dev@example.org"}],
    }))  # fmt: skip
    assert cli.invoke(app, ["inventory", "import", str(inv), "-q"]).exit_code == 0
    r = cli.invoke(app, ["screen", "accounts", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["checked"], out["findings"], out["flagged"]) == (2, 1, ["boss@mailinator.com"])
    again = json.loads(cli.invoke(app, ["screen", "accounts", "--json"]).output)
    assert again["findings"] == 0


def test_the_signup_demo(tmp_path: Path) -> None:
    lines: list[str] = []
    summary = run_signup_demo(tmp_path / "demo", echo=lines.append)
    verdicts = {v["email"]: v["verdict"] for v in summary["verdicts"]}
    assert verdicts["quick.trial@mailinator.com"] == "disposable"
    assert verdicts["not-an-address@"] == "invalid"
    assert verdicts["someone@co.uk"] == "review"
    assert verdicts["anna.virtanen@acme-analytics.example"] == "ok"
    kinds = {(f["kind"], f["customer"]) for f in summary["findings"]}
    assert ("circumvention", "cust-new-4") in kinds and ("circumvention", "cust-new-5") in kinds
    assert {c for k, c in kinds if k == "circumvention" and c.startswith("cust-farm")} == {
        f"cust-farm-{i}" for i in range(1, 6)
    }
    assert ("disposable-email", "cust-new-2") in kinds
    assert summary["cases"] > 0
    assert any("knowledge: disposable-email-domains" in line for line in lines)
