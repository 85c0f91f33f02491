"""The ``abusedesk`` command: global options, then one sub-app per command group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from abusedesk import __version__
from abusedesk.cli import (
    audit,
    case,
    context,
    demo,
    dlq,
    intake,
    inventory,
    pipeline,
    policy,
    screen,
    serve,
    users,
    worker,
)

app = typer.Typer(
    help="abusedesk: enforce an Acceptable Use Policy, from signal to case to action.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(policy.app, name="policy", help="Show and check the policy file.")
app.add_typer(inventory.app, name="inventory", help="Import the inventory; who had an address when.")
app.add_typer(intake.app, name="intake", help="Take in complaints and feeds; quarantine and retry.")
app.add_typer(case.app, name="case", help="Work cases: list, show, transition, act, approve, note, export.")
app.add_typer(audit.app, name="audit", help="Verify the hash-chained audit log.")
app.add_typer(screen.app, name="screen", help="Screen signups: disposable e-mail (section 2), circumvention (1.10).")
app.add_typer(users.user_app, name="user", help="Users and roles: bootstrap the first admin, add, list, disable.")
app.add_typer(users.token_app, name="token", help="API tokens: create (shown once), list, revoke.")
app.command(name="demo")(demo.demo)
app.add_typer(dlq.app, name="dlq", help="Dead letters: show them, replay them after a fix.")
app.add_typer(pipeline.app, name="pipeline", help="What waits between the stages; finish what is unfinished.")
app.command("worker")(worker.worker)
app.command("serve")(serve.serve)


@app.callback()
def _globals(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (env ABUSEDESK_DATA_DIR).")] = None,
    database_url: Annotated[str | None, typer.Option(help="Database URL (env ABUSEDESK_DATABASE_URL).")] = None,
    policy_file: Annotated[Path | None, typer.Option(help="Policy file (env ABUSEDESK_POLICY_FILE).")] = None,
) -> None:
    context.set_global_options(data_dir, database_url, policy_file)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def kinds(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List the event kinds and the XARF v4 (category, type) each converts to and from."""
    from abusedesk.domain.kinds import KINDS, XARF_TO_KIND

    rows = [
        {
            "kind": k.name,
            "title": k.title,
            "xarf_category": k.xarf[0],
            "xarf_type": k.xarf[1],
            "xarf_native": XARF_TO_KIND.get(k.xarf) == k.name,
        }
        for k in KINDS.values()
    ]
    if as_json:
        context.emit(rows, True)
        return
    for r in rows:
        native = "" if r["xarf_native"] else " (nearest)"
        typer.echo(f"{r['kind']:<24} {r['xarf_category']}/{r['xarf_type']}{native}  {r['title']}")


@app.command()
def init() -> None:
    """Create the data directory and bring the database to the newest schema."""
    with context.errors_to_exit(), context.runtime(create=True) as rt:
        typer.echo(f"abusedesk data in {rt.settings.data_dir.resolve()}, database {rt.engine.url!r}")


def main() -> None:
    app()
