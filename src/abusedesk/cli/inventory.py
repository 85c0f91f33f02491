"""`abusedesk inventory import|whois`: load the inventory; who had an address when, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from abusedesk.cli import context
from abusedesk.domain.errors import ConfigError
from abusedesk.domain.ipnet import ip_to_int
from abusedesk.inventory.importer import parse_aware_time
from abusedesk.inventory.service import InventoryService

app = typer.Typer(help="inventory commands", no_args_is_help=True)


def _progress(stage: str, done: int, total: int | None) -> None:
    what = "read" if stage == "read" else "wrote"
    of = f" of {total:,}" if total else ""
    typer.echo(f"{what} {done:,}{of} allocations", err=True)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A JSON file, a CSV file, or a directory of CSV files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    sync: Annotated[
        bool, typer.Option("--sync", help="The file is the whole inventory: close open allocations missing from it.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines on stderr.")] = False,
) -> None:
    """Import customers, projects, services, accounts and allocations in one transaction.

    A bad row refuses the whole file (exit 2, every bad row named). Re-importing the same file changes nothing.
    """
    with context.errors_to_exit(), context.runtime(create=True) as rt:
        try:
            report = InventoryService(rt).import_file(file, progress=None if quiet else _progress, sync=sync)
        except ConfigError as exc:
            if not as_json:
                raise
            context.emit({"ok": False, "error": exc.message, "errors": [_error_dict(e) for e in exc.errors]}, True)
            raise typer.Exit(2) from None
    if as_json:
        context.emit({"ok": True, **report.to_dict()}, True)
        return
    typer.echo(f"imported {file} in {report.seconds:.2f}s (generation {report.generation})")
    for kind, counts in report.counts.items():
        typer.echo(f"  {kind:12} " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    if not report.changed:
        typer.echo("  nothing changed")


def _error_dict(exc: ConfigError) -> dict[str, Any]:
    return {"file": exc.file, "row": exc.line, "field": exc.field, "message": exc.message}


@app.command()
def whois(
    ip: Annotated[str, typer.Argument(help="An IPv4 or IPv6 address.")],
    at: Annotated[str | None, typer.Option("--at", help="ISO 8601 time with zone (default: now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Whose was IP at TIME: customer, project, service, the matched allocation and why, or why it is not ours.

    Exit 0 whether or not the address is ours; 1 for a bad address or time.
    """
    try:
        ip_to_int(ip)
        when = parse_aware_time(at) if at is not None else None
    except ValueError as exc:
        raise context.fail(str(exc)) from None
    with context.errors_to_exit(), context.runtime() as rt:
        answer = InventoryService(rt).whois(ip, when)
    if as_json:
        context.emit(answer, True)
        return
    typer.echo(f"{answer['ip']} at {answer['at']}: {'ours' if answer['ours'] else 'not ours'}")
    if answer["ours"]:
        cus, prj, svc = answer["customer"] or {}, answer["project"] or {}, answer["service"] or {}
        contact = f", {cus['contact_email']}" if cus.get("contact_email") else ""
        typer.echo(f"  customer:   {answer['customer_id']} ({cus.get('name', '?')}{contact})")
        typer.echo(f"  project:    {answer['project_id']} ({prj.get('name', '?')})")
        hosts = f"; hostnames {', '.join(svc['hostnames'])}" if svc.get("hostnames") else ""
        typer.echo(f"  service:    {answer['service_id']} ({svc.get('kind', '?')} {svc.get('name', '?')!r}{hosts})")
        until = answer["valid_to"] or "open"
        typer.echo(f"  allocation: {answer['allocation_id']}: {answer['prefix']} [{answer['valid_from']}, {until})")
    typer.echo(f"  why:        {answer['reason']}")
