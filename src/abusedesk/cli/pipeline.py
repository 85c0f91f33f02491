"""`abusedesk pipeline status|resume`: what waits between the stages, and finishing it."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from abusedesk.cli import context

app = typer.Typer(help="What waits in the pipeline; finish what is unfinished.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Backlog and oldest age per stage, dead letters, unrelayed and stranded work."""
    from abusedesk.bus.status import pipeline_status

    with context.errors_to_exit(), context.runtime() as rt:
        result = pipeline_status(rt)
    _show(result, as_json)


@app.command()
def resume(
    finalize: Annotated[
        bool, typer.Option("--finalize", help="Also close every open detector window (end of a finite replay).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Hand stranded inputs on and run every stage until nothing waits (in process); exit 0 when finished."""
    from abusedesk.bus.status import resume as resume_pipeline

    with context.errors_to_exit(), context.runtime() as rt:
        result = resume_pipeline(rt, finalize=finalize)
    _show(result, as_json)
    if not result["finished"]:
        raise typer.Exit(1)


def _show(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        context.emit(result, True)
        return
    typer.echo(f"bus: {result['bus']}")
    for st in result["stages"]:
        age = f"  oldest {st['oldest_age_seconds']:.1f}s" if st["oldest_age_seconds"] is not None else ""
        typer.echo(f"  {st['stage']:<10} {st['subject']:<18} waiting {st['waiting']}{age}")
    typer.echo(
        f"dead letters {result['dead_letters']}, unrelayed {result['unrelayed']}, "
        f"stranded inputs {result['stranded_inputs']}, open windows {result['open_windows']}"
    )
    typer.echo("inputs: " + ", ".join(f"{k} {v}" for k, v in sorted(result["inputs"].items())))
    if "finished" in result:
        typer.echo(f"handled {result['handled']} message(s); " + ("finished" if result["finished"] else "NOT finished"))
