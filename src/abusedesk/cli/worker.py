"""`abusedesk worker --stage STAGE`: one pipeline stage in this process, over NATS JetStream."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from abusedesk.cli import context


def worker(
    stage: Annotated[
        str, typer.Option(help="parse | attribute | detect | cases (messages) or scheduler | actions (timers).")
    ],
    once: Annotated[bool, typer.Option(help="Stop when the subject is empty (or after one tick).")] = False,
    partition: Annotated[
        str | None, typer.Option(help="INDEX/COUNT, e.g. 0/4: own the slots s with s % COUNT == INDEX.")
    ] = None,
    batch: Annotated[
        int | None, typer.Option(min=1, help="Messages fetched at a time (default: the stage's own batch size).")
    ] = None,
    tick_interval: Annotated[float, typer.Option(min=0.1, help="Seconds between ticks of a timer stage.")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the worker's counts as JSON on exit.")] = False,
) -> None:
    """Run one stage: read its subject, run the handler, ack; retries with backoff, then the dead-letter subject."""
    from abusedesk.bus.nats import Partition
    from abusedesk.bus.worker import check_stage, run_worker

    stop = threading.Event()
    with context.errors_to_exit():
        check_stage(stage)
        part = Partition.parse(partition) if partition else None
        # the handlers stop the loop; the previous ones come back afterwards (a caller in the same process, such
        # as a test run, keeps its Ctrl-C)
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            with context.runtime(default_log_level="INFO") as rt:
                stats = run_worker(rt, stage, stop, once=once, partition=part, batch=batch, tick_interval=tick_interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    summary = {
        "stage": stats.stage,
        "handled": stats.handled,
        "retried": stats.retried,
        "dead_lettered": stats.dead_lettered,
        "ticks": stats.ticks,
        "recovered": stats.recovered,
    }
    if as_json:
        context.emit(summary, True)
    else:
        typer.echo(" ".join(f"{k}={v}" for k, v in summary.items()))
