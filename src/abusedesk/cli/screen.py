"""`abusedesk screen email|signup|accounts|learn-mx|demo`: signup screening (section 2, clause 1.10)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from abusedesk.cli import context
from abusedesk.domain.timeutil import iso
from abusedesk.screening.screen import Verdict
from abusedesk.screening.service import ScreeningService, SignupService, build_screen, rescreen_accounts, signup_outcome

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


@app.command()
def signup(
    email_: Annotated[str | None, typer.Option("--email", help="The signup's address.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A file of signups, JSON lines (docs/reference/screening.md).")
    ] = None,
    account_id: Annotated[str | None, typer.Option(help="The new account's id.")] = None,
    customer_id: Annotated[str | None, typer.Option(help="The new account's customer (its case is theirs).")] = None,
    ip: Annotated[str | None, typer.Option(help="The address the signup came from.")] = None,
    device: Annotated[str | None, typer.Option(help="A device fingerprint.")] = None,
    at: Annotated[str | None, typer.Option("--at", help="ISO 8601 time with a zone (default now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Record signups into the pipeline (stored, parsed, screened, linked, judged; cases for findings).

    One signup from the options, or a file of JSON lines (stored as it is; bad lines are the input's issues).
    """
    if (email_ is None) == (file is None):
        raise context.fail("give --email or --file (one of them)", 2)
    with context.errors_to_exit(), context.runtime(create=True) as rt:
        from abusedesk.intake.channels import wire_channels

        wire_channels(rt)
        service = SignupService(rt)
        if file is not None:
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise context.fail(f"cannot read {file}: {exc.strerror}", 2) from None
            accepted = service.record_bytes(data, filename=file.name)
        else:
            record: dict[str, Any] = {"type": "signup", "email": email_, "time": at or iso(rt.clock.now())}
            for key, value in (("account_id", account_id), ("customer_id", customer_id), ("ip", ip),
                               ("device", device)):  # fmt: skip
                if value:
                    record[key] = value
            accepted = service.record([record])
        rt.drain()
        outcome = signup_outcome(rt, accepted.raw.id)
    if as_json:
        context.emit(outcome, True)
        return
    typer.echo(f"signup input {outcome['reference']}: {outcome['status']}, {len(outcome['events'])} signups")
    for event in outcome["events"]:
        typer.echo(f"  {event['email']}: {event['verdict']} [{event['rule']}]")
    for issue in outcome["issues"]:
        typer.echo(f"  issue: {issue.get('reason', issue) if isinstance(issue, dict) else issue}")
    for finding in outcome["findings"]:
        typer.echo(f"  finding: clause {finding['clause']} {finding['kind']} for {finding['customer']}: "
                   f"{finding['summary']}")  # fmt: skip


@app.command()
def accounts(as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False) -> None:
    """Re-check every customer contact and account address with the lists in force; a disposable one becomes a
    clause-2 finding (once per address and list version), so its case asks the customer for another address."""
    with context.errors_to_exit(), context.runtime() as rt:
        from abusedesk.intake.channels import wire_channels

        wire_channels(rt)
        result = rescreen_accounts(rt)
    if as_json:
        context.emit(result, True)
        return
    counts = ", ".join(f"{k} {n}" for k, n in sorted(result["verdicts"].items()))
    typer.echo(f"checked {result['checked']} addresses ({counts}); {result['findings']} new findings")
    for address in result["flagged"]:
        typer.echo(f"  flagged: {address}")
    typer.echo(f"knowledge: {result['knowledge']}")


@app.command("demo")
def demo_(
    data_dir: Annotated[Path, typer.Option(help="Where the demo's data goes.")] = Path("./screen-demo-data"),
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary, as JSON.")] = False,
) -> None:
    """Sample signups through the real signup hook: verdicts, then the findings and cases they made."""
    from abusedesk.demo.signups import run_signup_demo

    with context.errors_to_exit():
        context.settings()
        summary = run_signup_demo(data_dir, echo=(lambda _line: None) if as_json else typer.echo)
    if as_json:
        context.emit(summary, True)
