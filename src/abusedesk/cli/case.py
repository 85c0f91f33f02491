"""`abusedesk case ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="case commands", no_args_is_help=True)
