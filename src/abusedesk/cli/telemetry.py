"""`abusedesk telemetry ...`: collect flow exports over UDP, import flow files, replay a recorded export."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from abusedesk.cli import context

app = typer.Typer(help="telemetry commands", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command("collect")
def collect(
    listen: Annotated[str | None, typer.Option(help="HOST:PORT to receive IPFIX / NetFlow v9 / v5 on.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    max_datagrams: Annotated[int | None, typer.Option(help="Stop after this many datagrams.")] = None,
    idle_exit: Annotated[float | None, typer.Option(help="Stop after this many silent seconds.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Receive flow exports, write them to rotating flow files and run each closed file through the pipeline.

    Runs until SIGINT/SIGTERM (or a bound); on exit the open interval is closed and handed on, and the counters
    (datagrams, flows, drops by reason, sequence losses, the socket's own drops) are printed.
    """
    from abusedesk.telemetry.collector import Collector

    with context.errors_to_exit(), context.runtime(create=True) as rt:
        c = Collector(rt, listen)
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            previous = {sig: signal.signal(sig, lambda *_: c.stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            typer.echo(f"collecting on {c.host}:{c.port}", err=True)
            stats = c.run(duration=duration, max_datagrams=max_datagrams, idle_exit=idle_exit)
        finally:  # the stop handlers go with the collector: a later Ctrl-C in this process interrupts again
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        rt.drain()
    data = stats.to_dict()
    if as_json:
        context.emit(data, True)
        return
    d = data["decode"]
    typer.echo(
        f"{d['datagrams']} datagrams, {d['flows']} flows, {data['files']} file(s); dropped {d['dropped'] or 0}; "
        f"lost records {d['lost_records']}, datagrams {d['lost_datagrams']}; socket drops {data['socket_drops']}"
    )


@app.command("file")
def file_(
    paths: Annotated[list[Path], typer.Argument(help="Flow files.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="vpc | nfdump-csv | csv | parquet (default: sniffed)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import flow files (AWS VPC flow logs, nfdump CSV, CSV, Parquet) and run them through the pipeline."""
    from abusedesk.telemetry.files import FORMATS
    from abusedesk.telemetry.service import import_flow_files

    if fmt is not None and fmt not in FORMATS:
        raise context.fail(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}", 2)
    for p in paths:
        if not p.is_file():
            raise context.fail(f"{p} is not a file", 2)
    with context.errors_to_exit(), context.runtime(create=True) as rt:
        rows = import_flow_files(rt, paths, fmt)
    _print(rows, as_json)
    if any(r["status"] == "quarantined" for r in rows):
        raise typer.Exit(1)


@app.command("replay")
def replay(
    pcap: Annotated[Path, typer.Argument(help="A capture of an export stream (pcap, optionally .gz).")],
    to: Annotated[str, typer.Option("--to", help="HOST:PORT of the collector.")] = "127.0.0.1:2055",
    rate: Annotated[float | None, typer.Option(help="Datagrams per second (default: as fast as taken).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a recorded export stream's datagrams to a collector."""
    from abusedesk.telemetry.collector import parse_listen
    from abusedesk.telemetry.service import replay_pcap

    with context.errors_to_exit():
        host, port = parse_listen(to)
        n = replay_pcap(pcap, host, port, rate=rate)
    if as_json:
        context.emit({"datagrams": n, "host": host, "port": port}, True)
    else:
        typer.echo(f"sent {n} datagrams to {host}:{port}")


@app.command("demo")
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo's data goes.")] = Path("./demo-telemetry"),
    fresh: Annotated[bool, typer.Option(help="Delete the folder first.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Replay a recorded IPFIX export of the namespace lab through the collector, and show its findings and cases."""
    import json

    from abusedesk.demo.telemetry import run_telemetry_demo

    with context.errors_to_exit():
        context.settings()  # logging as configured
        summary = run_telemetry_demo(data_dir, fresh=fresh, echo=(lambda _line: None) if as_json else typer.echo)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))


def _print(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        context.emit(rows, True)
        return
    for r in rows:
        detail = f"{r['rows']} flows" if r["status"] == "stored" else r.get("error", "")
        typer.echo(f"{r['status']:<12} {detail}  {r['source']}")
