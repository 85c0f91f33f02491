"""`abusedesk intake ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="intake commands", no_args_is_help=True)
