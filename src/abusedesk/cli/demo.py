"""`abusedesk demo`: a fresh data dir, a sample inventory, sample signals, the cases they make."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from abusedesk.cli import context


def demo(
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the demo's data goes (default: the global --data-dir, else ./demo-data).")
    ] = None,
    fresh: Annotated[bool, typer.Option(help="Delete the folder first.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary, as JSON.")] = False,
) -> None:
    """Build a fresh desk, feed it sample signals through the real doors, and show what it made of them."""
    from abusedesk.demo.runner import run_demo

    with context.errors_to_exit():
        context.settings()  # logging as configured
        where = data_dir or context.global_data_dir() or Path("./demo-data")
        summary = run_demo(where, fresh=fresh, echo=(lambda _line: None) if as_json else typer.echo)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
