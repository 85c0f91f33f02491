"""`abusedesk serve`: the embedded deployment, everything in one process.

- the API and console (``abusedesk.api.app:create_app(rt)``) under uvicorn on ``api_host:api_port``, in this
  process or, with ``--api-workers N`` (setting ``api_workers``), in N worker processes sharing the port
  (``abusedesk.api.serving``);
- the SMTP (or LMTP) intake listener, when ``--smtp HOST:PORT`` is given;
- the drop-folder watcher, when the setting ``intake.drop_folder`` is set;
- with ``bus = "inprocess"``: every pipeline stage, wired to the in-process bus, drained by a background thread
  that also ticks the case scheduler and the action runner (``bus.worker.run_embedded``); inputs stored but not
  handled yet (left by a crash) wait in the outbox table and are taken up on start.
- with ``bus = "nats"``: only the doors (API, SMTP); ``abusedesk worker --stage ...`` processes run the stages.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Annotated, Any

import typer

from abusedesk.cli import context

log = logging.getLogger(__name__)


def serve(
    host: Annotated[str | None, typer.Option(help="API address (setting api_host).")] = None,
    port: Annotated[int | None, typer.Option(help="API port (setting api_port).")] = None,
    smtp: Annotated[str | None, typer.Option(help="Also listen for abuse mail on HOST:PORT.")] = None,
    lmtp: Annotated[bool, typer.Option(help="Speak LMTP instead of SMTP on --smtp.")] = False,
    tick_interval: Annotated[float, typer.Option(min=0.1, help="Seconds between scheduler/action ticks.")] = 30.0,
    api_workers: Annotated[
        int | None, typer.Option(min=1, help="API processes sharing the port (setting api_workers; default 1).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Announce what listens as JSON lines, log JSON lines, errors as JSON.")
    ] = False,
) -> None:
    """Run the API, the intake listener and (in-process bus) all pipeline stages in this process.

    Logs at INFO (a server's log is its output); the API's documentation is at ``/api/docs``.
    """
    if as_json:
        context.force_json_logs()
    with context.errors_to_exit(), context.runtime(create=True, default_log_level="INFO") as rt:
        from abusedesk.api.serving import check_workers, serve_api, wake_event

        workers = api_workers or rt.settings.api_workers
        check_workers(rt.settings, workers)  # before anything listens
        stop = threading.Event()
        loop_thread: threading.Thread | None = None
        from abusedesk.intake.channels import MailDoor, wire_channels

        door: MailDoor | None = None
        if rt.settings.bus == "inprocess":
            from abusedesk.bus.worker import run_embedded

            door = wire_channels(rt)
            # the API (this process's or its workers') wakes the loop after storing an input, so no request
            # waits for the pipeline and no two drains take the same rows (issue 14)
            rt.pipeline_wake = wake = wake_event(workers)
            loop_thread = threading.Thread(
                target=run_embedded,
                args=(rt, stop),
                kwargs={"tick_interval": tick_interval, "wake": wake},
                name="abusedesk-pipeline",
                daemon=True,
            )
            loop_thread.start()
        smtp_server = None
        if smtp:
            from abusedesk.intake.service import IntakeService
            from abusedesk.intake.smtp import SmtpIntakeServer, parse_listen

            door = door or MailDoor(IntakeService(rt))
            smtp_host, smtp_port = parse_listen(smtp)
            # with the in-process bus serve's own loop runs the pipeline; the listener only stores
            smtp_server = SmtpIntakeServer(
                door, host=smtp_host, port=smtp_port, lmtp=lmtp, drain=rt.settings.bus != "inprocess"
            )
            smtp_server.start()
            _announce(
                as_json,
                f"{'LMTP' if lmtp else 'SMTP'} intake on {smtp_host}:{smtp_port}",
                listening="lmtp" if lmtp else "smtp",
                host=smtp_host,
                port=smtp_port,
            )
        drop_folder = rt.settings.intake.drop_folder
        folder_thread: threading.Thread | None = None
        if drop_folder is not None:
            from abusedesk.intake.folder import DropFolder
            from abusedesk.intake.service import IntakeService

            folder = DropFolder(door or MailDoor(IntakeService(rt)), drop_folder)
            folder_thread = threading.Thread(
                target=folder.watch, kwargs={"stop": stop.is_set}, name="abusedesk-drop-folder", daemon=True
            )
            folder_thread.start()
            _announce(as_json, f"watching drop folder {drop_folder}", watching=str(drop_folder))
        api_host, api_port = host or rt.settings.api_host, port or rt.settings.api_port
        base = f"http://{api_host if ':' not in api_host else f'[{api_host}]'}:{api_port}"
        _announce(
            as_json,
            f"API on {base}/api, its documentation on {base}/api/docs"
            + (f" ({workers} worker processes)" if workers > 1 else ""),
            listening="http",
            host=api_host,
            port=api_port,
            docs=f"{base}/api/docs",
            workers=workers,
        )
        try:
            serve_api(rt, host=api_host, port=api_port, workers=workers, json_logs=as_json,
                      wake=rt.pipeline_wake)  # fmt: skip
        finally:
            stop.set()
            if smtp_server is not None:
                smtp_server.stop()
            for thread in (folder_thread, loop_thread):
                if thread is not None:
                    thread.join(10)


def _announce(as_json: bool, text: str, **fields: Any) -> None:
    """What listens where: a line for people, or one JSON object per line for scripts."""
    typer.echo(json.dumps(fields) if as_json else text)
