"""`abusedesk audit ...`."""

from __future__ import annotations

from typing import Annotated

import typer

from abusedesk.cli import context
from abusedesk.evidence import audit

app = typer.Typer(help="audit commands", no_args_is_help=True)


@app.command()
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    expect_head: Annotated[
        str | None,
        typer.Option(
            help="SEQ:HASH of an entry kept elsewhere (as printed by an earlier verify) that must still be there."
        ),
    ] = None,
    no_anchor: Annotated[
        bool, typer.Option("--no-anchor", help="Do not check <data_dir>/audit-anchor (e.g. on a restored copy).")
    ] = False,
) -> None:
    """Walk the hash chain; exit 1 naming the first altered, inserted or deleted entry."""
    with context.errors_to_exit(), context.runtime() as rt:
        anchors: list[audit.Anchor] = []
        anchor_path = rt.settings.data_dir / audit.ANCHOR_FILE
        if not no_anchor:
            found = audit.read_anchor(anchor_path)
            if found is not None:
                anchors.append(found)
        if expect_head:
            anchors.append(audit.Anchor.parse(expect_head))
        with rt.sessions() as session:
            result = audit.verify(session, anchors=tuple(anchors))
        data = result.to_dict()
        data["anchor_file"] = str(anchor_path) if anchors and not no_anchor else None
        if as_json:
            context.emit(data, True)
        elif result.ok:
            checked = f", anchored entry {result.anchor_seq} matches" if result.anchor_seq else ""
            typer.echo(f"audit log intact: {result.entries} entries{checked}; head {result.head}")
        else:
            typer.echo(f"audit log BROKEN at entry {result.first_bad_seq}: {result.problem}")
        if not result.ok:
            raise typer.Exit(1)
