"""`abusedesk case list|show|transition|act|approve|note|tick` (and `export`, added by the evidence commands).

Thin commands over :class:`abusedesk.cases.service.CaseService`, acting as the user whose API token is in
``ABUSEDESK_TOKEN`` (the same service calls, checks and audit entries as the HTTP API). Exit codes: 0 ok, 1
failure (no or a bad token, an illegal transition, a refused approval, an unknown case), 2 usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from abusedesk.cli import context
from abusedesk.domain.identity import Can

app = typer.Typer(help="case commands", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (required for dismissed, appealed, reinstated).")]


def _service(rt: Any) -> Any:
    from abusedesk.cases.service import CaseService

    return CaseService(rt)


@app.command("list")
def list_cases(
    state: Annotated[str | None, typer.Option(help="Only cases in this state.")] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer's cases.")] = None,
    clause: Annotated[str | None, typer.Option(help="Only cases under this clause (e.g. 1.8).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """List cases, most recently changed first."""
    with context.errors_to_exit(), context.runtime() as rt:
        rows = _service(rt).list(context.principal(rt), state=state, customer=customer, clause=clause, limit=limit)
    if as_json:
        context.emit(rows, True)
        return
    if not rows:
        typer.echo("no cases")
    for r in rows:
        deadline = f" deadline {r['deadline']}" if r["deadline"] else ""
        typer.echo(
            f"{r['ref']}  {r['state']:<17} {r['severity']:<8} {r['clause']:<5} {r['customer_id'] or '-'} "
            f"{r['service_id'] or '-'} {r['group_key']} ({r['finding_count']} findings){deadline}"
        )


@app.command()
def show(case: Annotated[str, typer.Argument(help="Case id or AD-... reference.")], as_json: JsonOpt = False) -> None:
    """Show a case: facts, findings summary, actions and the timeline."""
    with context.errors_to_exit(), context.runtime() as rt:
        data = _service(rt).get(case, context.principal(rt))
    if as_json:
        context.emit(data, True)
        return
    typer.echo(f"{data['ref']} ({data['id']})  {data['state']}  severity {data['severity']}  clause {data['clause']}")
    typer.echo(f"  customer {data['customer_id']}  service {data['service_id']}  group {data['group_key']}")
    typer.echo(f"  opened {data['opened_at']}  policy {data['policy_version']}  reopened {data['reopen_count']}x")
    if data["deadline"]:
        typer.echo(f"  deadline {data['deadline']} (notice {data['notified_at']})")
    f = data["findings"]
    by_kind = ", ".join(f"{k} {n}" for k, n in f["by_kind"].items())
    typer.echo(f"  findings {f['count']} ({by_kind}) from {f['first']} to {f['last']}")
    typer.echo(f"  next states: {', '.join(data['allowed'])}")
    if data["actions"]:
        typer.echo("actions:")
        for a in data["actions"]:
            who = f" approved by {a['approved_by']}" if a["approved_by"] else ""
            typer.echo(f"  {a['id']}  {a['kind']:<20} {a['status']:<9} by {a['proposed_by']}{who}")
    typer.echo("timeline:")
    for e in data["timeline"]:
        typer.echo(f"  {e['at']}  {e['type']:<10} {e.get('actor_name') or '-':<10} {e['text']}")


@app.command()
def transition(
    case: Annotated[str, typer.Argument(help="Case id or AD-... reference.")],
    state: Annotated[str, typer.Argument(help="Target state (see docs/reference/case-lifecycle.md).")],
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Move a case to another state; an illegal move fails (exit 1) naming the allowed ones."""
    with context.errors_to_exit(), context.runtime() as rt:
        data = _service(rt).transition(case, state, by=context.principal(rt), reason=reason)
    if as_json:
        context.emit(data, True)
        return
    typer.echo(f"{data['ref']} is now {data['state']}")


@app.command()
def act(
    case: Annotated[str, typer.Argument(help="Case id or AD-... reference.")],
    action: Annotated[
        str,
        typer.Argument(
            help="suspend-service | disable-data-access | report-officials (need a second person's approval), "
            "notify | request-to-cease | renotify | reinstate"
        ),
    ],
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Propose (or, for notices and reinstatement, start) an action on a case."""
    with context.errors_to_exit(), context.runtime() as rt:
        data = _service(rt).propose(case, action, by=context.principal(rt), reason=reason)
    if as_json:
        context.emit(data, True)
        return
    tail = (
        " (waits for a different person: abusedesk case approve ID, with their ABUSEDESK_TOKEN)"
        if data["status"] == "proposed"
        else ""
    )
    typer.echo(f"{data['id']}  {data['kind']} {data['status']} on {data['case_ref']} ({data['case_state']}){tail}")


@app.command()
def approve(
    action_id: Annotated[str, typer.Argument(help="The action's id (from `case show`).")],
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Approve a proposed action; the proposer cannot approve their own proposal."""
    with context.errors_to_exit(), context.runtime() as rt:
        by = context.principal(rt)
        data = _service(rt).approve(action_id, by=by, reason=reason)
    if as_json:
        context.emit(data, True)
        return
    if data["approvals_missing"]:
        typer.echo(f"{data['id']} approved by {by.name}; {data['approvals_missing']} more approval(s) needed")
    else:
        typer.echo(
            f"{data['id']} {data['kind']} approved, now {data['status']}; {data['case_ref']} is {data['case_state']}"
        )


@app.command()
def reject(
    action_id: Annotated[str, typer.Argument(help="The action's id (from `case show`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is refused (required).")],
    as_json: JsonOpt = False,
) -> None:
    """Refuse a proposed action (an approver), or withdraw one's own proposal; it is never carried out."""
    with context.errors_to_exit(), context.runtime() as rt:
        data = _service(rt).reject(action_id, by=context.principal(rt), reason=reason)
    if as_json:
        context.emit(data, True)
        return
    typer.echo(f"{data['id']} {data['kind']} rejected; {data['case_ref']} is {data['case_state']}")


@app.command()
def note(
    case: Annotated[str, typer.Argument(help="Case id or AD-... reference.")],
    text: Annotated[str, typer.Argument(help="The note.")],
    as_json: JsonOpt = False,
) -> None:
    """Add a note to a case's timeline."""
    with context.errors_to_exit(), context.runtime() as rt:
        data = _service(rt).note(case, text, by=context.principal(rt))
    if as_json:
        context.emit(data, True)
        return
    typer.echo(f"note {data['id']} added to {data['case_ref']}")


@app.command()
def tick(as_json: JsonOpt = False) -> None:
    """Run the deadline scheduler once: reminders, and resolve or escalate cases whose deadline passed."""
    from abusedesk.cases.scheduler import Scheduler

    with context.errors_to_exit(), context.runtime() as rt:
        context.principal(rt).require(Can.CASE_CHANGE)  # a person starts it; the scheduler's account acts
        data = Scheduler(rt).tick().to_dict()
    if as_json:
        context.emit(data, True)
        return
    typer.echo(
        f"resolved {len(data['resolved'])}, escalated {len(data['escalated'])}, reminders {len(data['renotified'])}"
    )


@app.command()
def summary(as_json: JsonOpt = False) -> None:
    """Counts of cases per state, customer and clause."""
    with context.errors_to_exit(), context.runtime() as rt:
        data = _service(rt).summary(context.principal(rt))
    if as_json:
        context.emit(data, True)
        return
    typer.echo(f"{data['total']} cases from {data['findings']} findings")
    for title, key in (("state", "by_state"), ("customer", "by_customer"), ("clause", "by_clause")):
        typer.echo(f"by {title}: " + ", ".join(f"{k} {v}" for k, v in data[key].items()))


# `abusedesk case export` (evidence bundles) is added below by the evidence/adapters commands.


@app.command()
def export(
    case: Annotated[str, typer.Argument(help="Case id or AD-... reference.")],
    out: Annotated[
        Path, typer.Option("--out", help="A new directory, or a file ending in .zip, to write the bundle to.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Write the case's evidence bundle for officials (AUP section 3), checkable with `sha256sum -c SHA256SUMS`."""
    from abusedesk.actions.export import export_case

    with context.errors_to_exit(), context.runtime() as rt:
        by = context.principal(rt)
        by.require(Can.CASE_READ)
        if not by.is_staff:
            _service(rt).get(case, by)  # a customer exports only its own cases
        result = export_case(rt, case, out, exported_by=by.id)
    if as_json:
        context.emit(result.to_dict(), True)
        return
    typer.echo(f"{result.case_ref}: {result.files} files written to {result.path} (SHA256SUMS {result.sha256sums})")
