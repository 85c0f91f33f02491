"""`abusedesk weblog file|tail`: egress HTTP logs into the pipeline (stored first, parsed, attributed, judged).

Each file, and in tail mode each batch of new lines, is one raw input handed to the ``weblog`` parser; the
pipeline then attributes each client address to its service and runs the crawler detectors (clause 1.14, 1.5).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from abusedesk.cli import context
from abusedesk.cli.intake import door
from abusedesk.domain.errors import AbuseDeskError
from abusedesk.weblog.formats import FORMATS

app = typer.Typer(help="weblog commands", no_args_is_help=True)

FormatOpt = Annotated[str, typer.Option("--format", help=f"Log format: {', '.join(FORMATS)}.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise context.fail(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}", 2)


def _meta(fmt: str, name: str, **more: Any) -> dict[str, Any]:
    return {"parser": "weblog", "parser_hint": "weblog file", "weblog_format": fmt, "filename": name, **more}


def _print(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        context.emit(rows, True)
        return
    for r in rows:
        detail = f" ({r.get('reason')})" if r["status"] == "quarantined" else ""
        typer.echo(f"{r['status']:<12} {r.get('reference') or r.get('error')}{detail}  {r['source']}")


@app.command("file")
def file_(
    paths: Annotated[list[Path], typer.Argument(help="Log files (Squid access.log, combined, JSON lines).")],
    fmt: FormatOpt = "squid",
    as_json: JsonOpt = False,
) -> None:
    """Take in web log files, one raw input each, and run the pipeline to findings and cases."""
    from abusedesk.intake.mailbox import ImportItem, outcomes

    _check_format(fmt)
    for p in paths:
        if not p.is_file():
            raise context.fail(f"{p} is not a file", 2)
    with door() as d:
        limit = d.rt.settings.intake.max_file_bytes
        items: list[ImportItem] = []
        for p in paths:
            if p.stat().st_size > limit:
                items.append(ImportItem(str(p), error=f"file {p} is over intake.max_file_bytes ({limit} bytes)"))
                continue
            result = d.receive_many([(p, "file", _meta(fmt, p.name))])[0]
            items.append(ImportItem(str(p), error=result.message) if isinstance(result, AbuseDeskError)
                         else ImportItem(str(p), result))  # fmt: skip
        d.rt.drain()
        rows = outcomes(d.rt, items)
    _print(rows, as_json)
    if any(r["status"] == "rejected" for r in rows):
        raise typer.Exit(1)


@app.command()
def tail(
    path: Annotated[Path, typer.Argument(help="A log file the proxy appends to.")],
    fmt: FormatOpt = "squid",
    interval: Annotated[float, typer.Option(help="Seconds between reads of new lines.")] = 5.0,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this long (default: until Ctrl-C).")] = None,
    from_start: Annotated[bool, typer.Option("--from-start", help="Read the lines already there too.")] = False,
    max_inputs: Annotated[int | None, typer.Option(help="Stop after this many inputs (default: no limit).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow a growing log: every INTERVAL the new complete lines become one raw input and run the pipeline.

    A rotated (shorter) file is read again from its start.
    """
    from abusedesk.intake.mailbox import ImportItem, outcomes

    _check_format(fmt)
    if not path.is_file():
        raise context.fail(f"{path} is not a file", 2)
    offset = 0 if from_start else path.stat().st_size
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    taken = 0
    with door() as d:
        while True:
            size = path.stat().st_size
            if size < offset:  # rotated
                offset = 0
            if size > offset:
                with path.open("rb") as fh:
                    fh.seek(offset)
                    data = fh.read(size - offset)
                end = data.rfind(b"\n") + 1  # only complete lines; the rest waits for the next read
                if end:
                    result = d.receive_many([(data[:end], "file", _meta(fmt, path.name, tail_offset=offset))])[0]
                    item = (ImportItem(f"{path}@{offset}", error=result.message) if isinstance(result, AbuseDeskError)
                            else ImportItem(f"{path}@{offset}", result))  # fmt: skip
                    offset += end
                    d.rt.drain()
                    _print(outcomes(d.rt, [item]), as_json)
                    taken += 1
            if max_inputs is not None and taken >= max_inputs:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic())))
