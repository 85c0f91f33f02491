"""`abusedesk screen email|learn-mx`: signup screening (policy section 2) from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from abusedesk.cli import context
from abusedesk.screening.screen import Verdict
from abusedesk.screening.service import ScreeningService, build_screen

app = typer.Typer(help="screen commands", no_args_is_help=True)


def _print_verdict(v: Verdict) -> None:
    where = f" ({v.matched_domain})" if v.matched_domain else ""
    typer.echo(f"{v.address}: {v.verdict} [{v.rule}{where}] {v.reason}")


@app.command()
def email(
    addresses: Annotated[list[str], typer.Argument(help="One or more e-mail addresses.", metavar="ADDRESS...")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdicts as JSON.")] = False,
) -> None:
    """Screen addresses: ok | disposable | invalid | review, with the rule, the matched domain and the lists.

    Exit 0 whatever the verdicts (read them from the output); 2 for a bad setting or list file. Without
    ``screening.mx_check`` nothing is read from the database and no DNS is asked.
    """
    with context.errors_to_exit():
        settings = context.settings()
        if settings.screening.mx_check:
            with context.runtime() as rt:
                verdicts = [ScreeningService(rt).screen(a) for a in addresses]
        else:
            screen = build_screen(settings)
            verdicts = [screen.screen(a) for a in addresses]
    if as_json:
        context.emit([v.to_dict() for v in verdicts] if len(verdicts) > 1 else verdicts[0].to_dict(), True)
        return
    for v in verdicts:
        _print_verdict(v)
    typer.echo(f"knowledge: {verdicts[0].knowledge}")


@app.command("learn-mx")
def learn_mx(
    limit: Annotated[int, typer.Option(help="Resolve the MX of at most this many listed domains.")] = 2000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Learn the MX hosts that listed disposable domains share (through ``screening.nameservers``)."""
    with context.errors_to_exit(), context.runtime() as rt:
        result = ScreeningService(rt).learn_mx(limit=limit)
    if as_json:
        context.emit(result, True)
        return
    typer.echo(f"resolved the MX of {result['resolved']} listed domains; {len(result['hosts'])} shared MX hosts")
    for host, count in result["hosts"].items():
        typer.echo(f"  {host}: {count} listed domains")
