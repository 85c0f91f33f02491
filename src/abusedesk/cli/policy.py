"""`abusedesk policy show|check|versions`: read the policy in force, check a policy file before using it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from abusedesk.cli import context
from abusedesk.domain.errors import ConfigError
from abusedesk.policy.loader import load_policy
from abusedesk.policy.model import Clause, Policy, Step

app = typer.Typer(help="policy commands", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command()
def show(
    clause: Annotated[str | None, typer.Argument(help="A clause id (e.g. 1.8) to show in full.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the policy in force (--policy-file, ABUSEDESK_POLICY_FILE, else the shipped one); no database needed."""
    with context.errors_to_exit():
        policy = load_policy(context.settings().policy_file)
        if clause is None:
            if as_json:
                context.emit(policy.to_dict(), True)
            else:
                _print_table(policy)
            return
        found = policy.clause(clause)
        if as_json:
            context.emit(_clause_detail(policy, found), True)
        else:
            _print_clause(policy, found)


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="The policy file to check.")],
    as_json: JsonOption = False,
) -> None:
    """Check a policy file: exit 0 and one OK line, or exit 2 and one 'file:line: field: reason' line per problem."""
    try:
        policy = load_policy(file)
    except ConfigError as exc:
        problems = exc.errors or [exc]
        if as_json:
            context.emit(
                {
                    "ok": False,
                    "file": str(file),
                    "errors": [
                        {"file": e.file, "line": e.line, "field": e.field, "message": e.message} for e in problems
                    ],
                },
                True,
            )
        for e in problems:
            typer.echo(e.message, err=True)
        raise typer.Exit(2) from None
    summary = _counts(policy)
    if as_json:
        context.emit({"ok": True, "file": str(file), "version": policy.version, **summary}, True)
    else:
        typer.echo(
            f"OK {file}: {policy.version} ({policy.title}, effective {policy.effective.isoformat()}), "
            f"{summary['clauses']} clauses, {summary['kinds']} kinds mapped, {summary['playbooks']} playbooks"
        )


@app.command()
def versions(as_json: JsonOption = False) -> None:
    """List every policy version this abuse desk has loaded (cases cite the version in force when they opened)."""
    from abusedesk.policy.versions import list_versions

    with context.errors_to_exit(), context.runtime() as rt:
        current = rt.policy.version
        rows = list_versions(rt)
        if as_json:
            context.emit({"current": current, "versions": rows}, True)
            return
        for row in rows:
            mark = "*" if row["version"] == current else " "
            typer.echo(f"{mark} {row['version']}  {row['loaded_at']}  {row['source']}")


# ---------------------------------------------------------------------------------------------------- output


def _counts(policy: Policy) -> dict[str, int]:
    mapped = {k for c in policy.clauses.values() for k in c.kinds}
    return {"clauses": len(policy.clauses), "kinds": len(mapped), "playbooks": len(policy.playbooks)}


def _print_table(policy: Policy) -> None:
    typer.echo(f"{policy.title} ({policy.version}, effective {policy.effective.isoformat()})")
    rows = [("CLAUSE", "TITLE", "SEVERITY", "KINDS")]
    for c in policy.clauses.values():
        kinds = ", ".join(c.kinds) if c.kinds else (f"({c.role.value})" if c.role else "-")
        rows.append((c.id, c.title, c.severity.value, kinds))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        typer.echo(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")


def _clause_detail(policy: Policy, clause: Clause) -> dict[str, Any]:
    out = clause.to_dict()
    out["policy_version"] = policy.version
    out["kind_severities"] = {k: clause.severity_for(k).value for k in clause.kinds}
    out["primary_for"] = [k for k in clause.kinds if policy.clauses_for_kind(k)[0] == clause.id]
    out["playbook"] = clause.playbook.to_dict() if clause.playbook else None
    return out


def _step_line(step: Step) -> str:
    parts = [step.type.value]
    for key, value in step.to_dict().items():
        if key != "step" and not (key == "repeat" and value == 1):
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _print_clause(policy: Policy, clause: Clause) -> None:
    typer.echo(f"{clause.id}  {clause.title}")
    typer.echo(f"policy:   {policy.version}")
    if clause.role:
        typer.echo(f"role:     {clause.role.value}")
    typer.echo(f"severity: {clause.severity.value}")
    if clause.kinds:
        kinds = []
        for k in clause.kinds:
            lead = policy.clauses_for_kind(k)[0]
            note = "" if lead == clause.id else f", primary {lead}"
            kinds.append(f"{k} ({clause.severity_for(k).value}{note})")
        typer.echo(f"kinds:    {', '.join(kinds)}")
    typer.echo(f"\nsummary:  {clause.summary}\n\ntext:\n{clause.text}\n")
    pb = clause.playbook
    if pb is None:
        typer.echo("playbook: none (this clause is cited by other steps, not run)")
        return
    typer.echo(f"playbook: {pb.name}: {pb.description}")
    r = pb.severity_on_repeat
    every = f"every {r.every} findings within {r.to_dict()['within']}" if r.every else "not by count"
    typer.echo(f"  severity on repeat: {every}; +{r.on_reopen} on reopen; at most {r.max.value}")
    for key, steps in pb.steps.items():
        typer.echo(f"  {key}:")
        for i, step in enumerate(steps, 1):
            typer.echo(f"    {i}. {_step_line(step)}")
