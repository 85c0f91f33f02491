"""`abusedesk intake ...`: the channels (smtp, imap, watch, file), and quarantine tools (quarantine, show, retry).

Every command wires the pipeline on the in-process bus and drains it, so what it took in is parsed, attributed
and (when the case engine is installed) grouped into cases before it exits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select

from abusedesk.cli import context
from abusedesk.domain.timeutil import iso
from abusedesk.intake.channels import MailDoor, wire_channels
from abusedesk.intake.http import find_raw
from abusedesk.intake.reporters import reference_of

app = typer.Typer(help="intake commands", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


#: kept under this name for callers of the CLI module
wire_all = wire_channels


@contextmanager
def door(*, create: bool = True) -> Iterator[MailDoor]:
    """The channel door on a Runtime; the channels take data in, so they may create the data directory
    (``create``), the quarantine tools do not."""
    with context.errors_to_exit(), context.runtime(create=create) as rt:
        d = wire_all(rt)
        try:
            yield d
        finally:
            rt.drain()


@app.command("file")
def file_(
    paths: Annotated[list[Path], typer.Argument(help="Files, maildir directories or mbox files.")],
    as_json: JsonOpt = False,
) -> None:
    """Import files: a maildir, an mbox, or plain files (mail, CSV feed, XARF JSON), then run the pipeline.

    Each file or message is reported as parsed, quarantined (with the reason), a duplicate of an earlier input
    (the same content from the same reporter), or rejected; one with an earlier Message-ID and other content is
    a new report, related to the earlier one.
    """
    from abusedesk.intake.mailbox import import_paths, outcomes

    for p in paths:
        if not p.exists():
            raise context.fail(f"{p} does not exist", 2)
    with door() as d:
        items = import_paths(d, paths)
        d.rt.drain()
        rows = outcomes(d.rt, items)
    _report_outcomes(rows, as_json)


def _report_outcomes(rows: list[dict[str, Any]], as_json: bool) -> None:
    """One line per input, then the count of each outcome; exit 1 when any input was rejected."""
    if as_json:
        context.emit(rows, True)
    else:
        for r in rows:
            typer.echo(f"{r['status']:<12} {r.get('reference') or r.get('error')}{_detail(r)}  {r['source']}")
        typer.echo(summarise_outcomes(rows))
    if any(r["status"] == "rejected" for r in rows):
        raise typer.Exit(1)


#: the order outcomes are counted in, and their words
_OUTCOME_WORDS = (
    ("parsed", "parsed"),
    ("quarantined", "quarantined"),
    ("rejected", "rejected"),
    ("duplicate", "duplicate"),
    ("stored", "stored, not parsed yet"),
)


def summarise_outcomes(rows: list[dict[str, Any]]) -> str:
    """``3 inputs: 1 parsed, 2 quarantined, 0 rejected`` (duplicates and others only when there are some)."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
    parts = [f"{counts.pop(key, 0)} {word}" for key, word in _OUTCOME_WORDS[:3]]
    parts += [f"{counts.pop(key)} {word}" for key, word in _OUTCOME_WORDS[3:] if key in counts]
    parts += [f"{n} {status}" for status, n in sorted(counts.items())]
    return f"{len(rows)} input{'s' if len(rows) != 1 else ''}: " + ", ".join(parts)


def _detail(row: dict[str, Any]) -> str:
    if row["status"] == "duplicate":
        first = row.get("duplicate_of_source") or row.get("original_status")
        return f" (duplicate of {row['duplicate_of']}, {first})"
    parts = []
    if row["status"] == "quarantined":
        parts.append(str(row.get("reason")))
    if row.get("related_to"):
        parts.append(f"related to {row['related_to']}")
    return f" ({'; '.join(parts)})" if parts else ""


@app.command()
def smtp(
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on.")] = "127.0.0.1:2525",
    lmtp: Annotated[bool, typer.Option("--lmtp", help="Speak LMTP (from a local MTA) instead of SMTP.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Announce the listener as one JSON line (and errors as JSON).")
    ] = False,
) -> None:
    """Listen for complaint mail (the abuse@ mailbox) over SMTP or LMTP until interrupted."""
    from abusedesk.intake.smtp import SmtpIntakeServer, parse_listen

    host, port = parse_listen(listen)
    with door() as d:
        server = SmtpIntakeServer(d, host=host, port=port, lmtp=lmtp)
        protocol = "LMTP" if lmtp else "SMTP"
        if as_json:
            typer.echo(json.dumps({"listening": protocol.lower(), "host": host, "port": port}))
        else:
            typer.echo(f"{protocol} intake on {host}:{port}; Ctrl-C stops")
        server.serve_forever()


@app.command()
def imap(
    host: Annotated[str | None, typer.Option(help="IMAP server (setting imap.host).")] = None,
    user: Annotated[str | None, typer.Option(help="Login name (setting imap.user).")] = None,
    password: Annotated[
        str | None,
        typer.Option(help="Password; better the setting imap.password (env ABUSEDESK_IMAP__PASSWORD)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (setting imap.port; 143, or 993 with --tls).")] = None,
    mailbox: Annotated[str | None, typer.Option(help="Mailbox to read (setting imap.mailbox, INBOX).")] = None,
    tls: Annotated[bool | None, typer.Option("--tls/--no-tls", help="IMAP over TLS (setting imap.tls).")] = None,
    starttls: Annotated[
        bool | None, typer.Option("--starttls/--no-starttls", help="Upgrade with STARTTLS (setting imap.starttls).")
    ] = None,
    processed: Annotated[
        str | None,
        typer.Option(help="Move processed mail to this folder (setting imap.processed_folder; default: \\Seen)."),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Poll once and exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Poll an IMAP mailbox for new complaint mail (read or not); each message is marked only after it was stored.

    The mailbox and its login come from the settings (``[imap]``, ``ABUSEDESK_IMAP__*``); options override them.
    """
    import ssl

    from abusedesk.intake.imap import ImapAccount, ImapPoller

    with context.errors_to_exit():
        cfg = context.settings().imap
    host = host or cfg.host
    user = user or cfg.user
    secret = password if password is not None else (cfg.password.get_secret_value() if cfg.password else None)
    if not host:
        raise context.fail("no IMAP server: give --host or the setting imap.host (env ABUSEDESK_IMAP__HOST)", 2)
    if not user:
        raise context.fail("no IMAP login: give --user or the setting imap.user (env ABUSEDESK_IMAP__USER)", 2)
    if not secret:
        raise context.fail("no IMAP password: set imap.password (env ABUSEDESK_IMAP__PASSWORD) or give --password", 2)
    use_tls = cfg.tls if tls is None else tls
    account = ImapAccount(
        host=host,
        port=port or cfg.port or (993 if use_tls else 143),
        user=user,
        password=secret,
        mailbox=mailbox or cfg.mailbox,
        tls=use_tls,
        starttls=cfg.starttls if starttls is None else starttls,
        processed_folder=processed or cfg.processed_folder,
        ssl_context=ssl.create_default_context(cafile=cfg.cafile) if cfg.cafile is not None else None,
    )
    with door() as d:
        poller = ImapPoller(d, account)
        if not once:
            poller.run(interval)
            return
        result = poller.poll_once()
        rows = [{"reference": r.reference, "raw_id": r.raw_id, "duplicate": r.duplicate} for r in result.receipts]
        rows += [{"uid": uid, "error": reason} for uid, reason in result.rejected]
    if as_json:
        context.emit(rows, True)
    else:
        typer.echo(f"{len(result.receipts)} message(s) taken in, {len(result.rejected)} refused")


@app.command()
def watch(
    directory: Annotated[Path, typer.Argument(help="The drop folder.")],
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Take what is there now and exit.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Watch a drop folder: each new file is accepted, then moved to .done (or .rejected with a reason)."""
    from abusedesk.intake.folder import DropFolder
    from abusedesk.intake.mailbox import outcomes

    if not directory.is_dir():
        raise context.fail(f"{directory} is not a directory", 2)
    with door() as d:
        folder = DropFolder(d, directory, settle=not once)
        if once:
            result = folder.poll()
            rows = outcomes(d.rt, result.items)
        else:
            if as_json:
                typer.echo(json.dumps({"watching": str(directory)}))
            else:
                typer.echo(f"watching {directory}; Ctrl-C stops")
            with suppress(KeyboardInterrupt):
                folder.watch(interval)
            return
    _report_outcomes(rows, as_json)


@app.command()
def retry(
    raw_ids: Annotated[list[str] | None, typer.Argument(help="Raw ids or references to re-run.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every quarantined input.")] = False,
    stored: Annotated[bool, typer.Option("--stored", help="Inputs stored but never parsed (after a crash).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-run inputs through the parsers: after a parser fix (quarantined) or a crash (--stored)."""
    if not raw_ids and not all_ and not stored:
        raise context.fail("name raw ids, or give --all (quarantined) or --stored", 2)
    with door(create=False) as d:
        intake = d.intake
        outcomes = []
        if raw_ids:
            outcomes += intake.retry([find_raw(d.rt, r).id for r in raw_ids])
        if all_:
            outcomes += intake.retry(status="quarantined")
        if stored:
            outcomes += intake.retry(status="stored")
        d.rt.drain()
    rows = [
        {"raw_id": o.raw_id, "status": o.status, "parser": o.parser, "events": len(o.events), "error": o.error}
        for o in outcomes
    ]
    if as_json:
        context.emit(rows, True)
    else:
        for r in rows:
            typer.echo(f"{r['status']:<12} {reference_of(str(r['raw_id']))} {r['parser'] or '-'} {r['error'] or ''}")
        typer.echo(f"{sum(r['status'] == 'parsed' for r in rows)} of {len(rows)} parsed")


@app.command()
def quarantine(
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List quarantined inputs with the reason each could not be parsed."""
    with context.errors_to_exit(), context.runtime() as rt:
        from abusedesk.intake.service import IntakeService

        rows = [
            {
                "raw_id": r.id,
                "reference": reference_of(r.id),
                "channel": r.channel,
                "received_at": iso(r.received_at),
                "filename": (r.meta or {}).get("filename"),
                "parser": r.parser,
                "attempts": r.attempts,
                "reason": r.error,
            }
            for r in IntakeService(rt).quarantined(limit)
        ]
    if as_json:
        context.emit(rows, True)
        return
    if not rows:
        typer.echo("quarantine is empty")
    for r in rows:
        typer.echo(f"{r['reference']}  {r['received_at']}  {r['channel']:<8} {r['filename'] or '-'}\n    {r['reason']}")


@app.command()
def show(
    raw_id: Annotated[str, typer.Argument(help="Raw id or reference.")],
    as_json: JsonOpt = False,
) -> None:
    """Show one raw input: channel, status, parser, reason, events."""
    from abusedesk.store.tables.intake import EventRow

    with context.errors_to_exit(), context.runtime() as rt:
        row = find_raw(rt, raw_id)
        with rt.sessions() as s:
            events = [
                {
                    "id": e.id,
                    "kind": e.kind,
                    "time": iso(e.time),
                    "source_ip": e.source_ip,
                    "source_url": e.source_url,
                    "disposition": e.disposition,
                    "service_id": e.service_id,
                }
                for e in s.scalars(select(EventRow).where(EventRow.raw_id == row.id).order_by(EventRow.time))
            ]
        data: dict[str, Any] = {
            "raw_id": row.id,
            "reference": reference_of(row.id),
            "size": row.size,
            "channel": row.channel,
            "received_at": iso(row.received_at),
            "status": row.status,
            "parser": row.parser,
            "attempts": row.attempts,
            "reporter": row.reporter,
            "report_ref": row.report_ref,
            "related_to": reference_of(row.related_to) if row.related_to else None,
            "error": row.error,
            "issues": row.issues,
            "meta": row.meta,
            "events": events,
        }
    if as_json:
        context.emit(data, True)
        return
    for key in (
        "raw_id",
        "reference",
        "size",
        "channel",
        "received_at",
        "status",
        "parser",
        "attempts",
        "reporter",
        "report_ref",
        "related_to",
        "error",
    ):
        if data[key] is not None:
            typer.echo(f"{key:<12} {data[key]}")
    for issue in data["issues"][:20]:
        typer.echo(f"issue        {issue}")
    for e in events:
        typer.echo(
            f"event        {e['kind']:<16} {e['time']} {e['source_ip'] or e['source_url'] or '-'} {e['disposition']}"
        )
