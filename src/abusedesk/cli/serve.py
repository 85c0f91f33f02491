"""`abusedesk serve`: the embedded deployment, everything in one process.

- the API and console (``abusedesk.api.app:create_app(rt)``) under uvicorn on ``api_host:api_port``;
- the SMTP (or LMTP) intake listener, when ``--smtp HOST:PORT`` is given;
- the drop-folder watcher, when the setting ``intake.drop_folder`` is set;
- with ``bus = "inprocess"``: every pipeline stage, wired to the in-process bus, drained by a background thread
  that also ticks the case scheduler and the action runner (``bus.worker.run_embedded``); inputs stored but not
  handled yet (left by a crash) wait in the outbox table and are taken up on start.
- with ``bus = "nats"``: only the doors (API, SMTP); ``abusedesk worker --stage ...`` processes run the stages.
"""

from __future__ import annotations

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
) -> None:
    """Run the API, the intake listener and (in-process bus) all pipeline stages in this process."""
    with context.errors_to_exit(), context.runtime(create=True) as rt:
        app = _api_app(rt)
        stop = threading.Event()
        loop_thread: threading.Thread | None = None
        from abusedesk.intake.channels import MailDoor, wire_channels

        door: MailDoor | None = None
        if rt.settings.bus == "inprocess":
            from abusedesk.bus.worker import run_embedded

            door = wire_channels(rt)
            loop_thread = threading.Thread(
                target=run_embedded,
                args=(rt, stop),
                kwargs={"tick_interval": tick_interval},
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
            typer.echo(f"{'LMTP' if lmtp else 'SMTP'} intake on {smtp_host}:{smtp_port}")
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
            typer.echo(f"watching drop folder {drop_folder}")
        try:
            server = _server(rt, app, host or rt.settings.api_host, port or rt.settings.api_port)
            server.run()
        finally:
            stop.set()
            if smtp_server is not None:
                smtp_server.stop()
            for thread in (folder_thread, loop_thread):
                if thread is not None:
                    thread.join(10)


def _api_app(rt: Any) -> Any:
    # no import guard: a broken import of our own stops start-up with its own error (issue 9)
    from abusedesk.api.app import create_app

    return create_app(rt)


def _server(rt: Any, app: Any, host: str, port: int) -> Any:
    """A uvicorn server that stops on SIGTERM/SIGINT and returns, so the listener and the loop are shut down.

    (uvicorn's own handler re-raises the signal after shutting down, which would end the process before the
    SMTP listener is stopped and the pipeline thread has finished its message.)
    """
    import signal
    from collections.abc import Iterator
    from contextlib import contextmanager

    import uvicorn

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        def _stop(self, sig: int, frame: Any) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True

    from abusedesk.api.ratelimit import uvicorn_config

    # proxy headers from intake.api_trusted_proxies only: uvicorn's default would trust 127.0.0.1 (issue 10)
    return Server(uvicorn_config(rt, app, host=host, port=port, log_level="info"))
