"""`abusedesk dlq show|replay`: messages a stage failed on after every retry."""

from __future__ import annotations

from typing import Annotated

import typer

from abusedesk.cli import context

app = typer.Typer(help="Dead letters: show them, replay them after a fix.", no_args_is_help=True)


@app.command()
def show(
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable output, with payload and traceback.")
    ] = False,
) -> None:
    """List the dead letters (NATS stream or, with the in-process bus, the dead_letters table)."""
    from abusedesk.bus.dlq import list_dead_letters

    with context.errors_to_exit(), context.runtime() as rt:
        letters = list_dead_letters(rt)
    if as_json:
        context.emit([letter.to_dict() for letter in letters], True)
        return
    if not letters:
        typer.echo("no dead letters")
        return
    for letter in letters:
        when = letter.failed_at.isoformat() if letter.failed_at else "-"
        typer.echo(f"{letter.id}  {letter.subject:<18} {when}  attempts={letter.attempts}  {letter.error}")


@app.command()
def replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead letter ids (from `dlq show`).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Publish dead letters to their subject again (after the fix); each leaves the dead-letter list."""
    from abusedesk.bus.dlq import replay_dead_letters

    if not ids and not all_:
        raise context.fail("name dead letter ids, or --all", code=2)
    if ids and all_:
        raise context.fail("name dead letter ids or --all, not both", code=2)
    with context.errors_to_exit(), context.runtime() as rt:
        result = replay_dead_letters(rt, None if all_ else list(ids or []))
    if as_json:
        context.emit(result.to_dict(), True)
        return
    typer.echo(f"replayed {len(result.replayed)} dead letter(s); {len(result.failed_again)} failed again")
    for letter_id in result.failed_again:
        typer.echo(f"  failed again: {letter_id}")
    if result.failed_again:
        raise typer.Exit(1)
