"""Serving the API: uvicorn in this process, or in ``api_workers`` processes that share one listening socket.

One process runs Python on one core at a time: the case list at 50 clients was bound by it (issue 10), and the
signup hook's tail was that process's queue (issue 14). With ``api_workers = N`` (``serve --api-workers N``) the
parent binds the socket once and starts N worker processes (``spawn``: each a fresh interpreter, no state copied
by fork) that accept on it; the kernel hands each connection to one of them. The parent keeps what must run once
(the pipeline loop, the SMTP listener, the drop folder), starts a worker again if one dies, and on SIGTERM/SIGINT
stops them gracefully (in-flight requests finish) before it returns.

What holds across workers: authentication (a token is checked against the database; each worker trusts a checked
token for ``token_cache_seconds``), tenant isolation and ETags (in the services and the database), rate limits
(``intake.api_rate_limit_store`` must be ``database`` or ``redis``: a per-process ``memory`` store would let N times
the burst through, so it is refused), ``/metrics`` (read from the database). An input a worker stores wakes the
parent's pipeline loop through a shared event (``Runtime.pipeline_wake``).
"""

from __future__ import annotations

import gc
import importlib
import logging
import multiprocessing
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from abusedesk.domain.errors import ConfigError

if TYPE_CHECKING:
    from abusedesk.config import Settings
    from abusedesk.runtime import Runtime, Wakeable

log = logging.getLogger(__name__)

#: the app every worker serves unless told otherwise: ``module:function`` taking the Runtime
DEFAULT_APP = "abusedesk.api.app:create_app"


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse settings under which several API processes would weaken a guarantee."""
    if workers < 1:
        raise ConfigError(f"api_workers must be 1 or more, not {workers}", field="api_workers")
    if workers > 1 and settings.intake.api_rate_limit_store == "memory":
        raise ConfigError(
            f"api_workers = {workers} with intake.api_rate_limit_store = 'memory': each process would count its own "
            "clients, letting the burst through once per process; use 'database' or 'redis'",
            field="intake.api_rate_limit_store",
        )


def wake_event(workers: int) -> Wakeable:
    """The event that wakes serve's pipeline loop: one other processes can set when the API runs in workers."""
    return multiprocessing.get_context("spawn").Event() if workers > 1 else threading.Event()


def app_factory(spec: str) -> Callable[[Runtime], Any]:
    """``module:function`` → the function (a ConfigError naming ``spec`` if there is none)."""
    module, _, name = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"API app factory {spec!r} cannot be loaded: {exc}") from None
    if not callable(factory):
        raise ConfigError(f"API app factory {spec!r} is not a function")
    return factory  # type: ignore[no-any-return]


def uvicorn_server(rt: Runtime, app: Any, *, host: str, port: int, log_level: str = "info", **kwargs: Any) -> Any:
    """A uvicorn server that stops on SIGTERM/SIGINT and returns, so the caller shuts its own parts down.

    (uvicorn's own handler re-raises the signal after shutting down, which would end the process before the
    SMTP listener is stopped and the pipeline thread has finished its message.) Proxy headers are believed only
    from ``intake.api_trusted_proxies``: uvicorn's default would trust 127.0.0.1 (issue 10).
    """
    import uvicorn

    from abusedesk.api.ratelimit import uvicorn_config

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

    return Server(uvicorn_config(rt, app, host=host, port=port, log_level=log_level, **kwargs))


def warm(rt: Runtime) -> None:
    """Build what the first requests would otherwise build while a client waits, the policy (~0.25 s) and the
    screening knowledge (~0.9 s: the signup hook's lists), then move everything made so far out of the garbage
    collector's sight (``gc.freeze``): a full collection then walks only what requests make, instead of the
    lists' ~100k objects, so it no longer stalls a request for milliseconds.

    An API worker runs it before it accepts (the parent holds the port; a worker not ready takes no connection).
    A lone API process runs it in a thread beside its server (``warm_soon``), so its port answers at once; a
    request that needs the screening knowledge meanwhile waits for this build (its lock) instead of making a second.
    """
    from abusedesk.domain.errors import AbuseDeskError
    from abusedesk.screening.service import ScreeningService

    try:
        rt.policy  # noqa: B018 - a cached property: reading it builds it
        ScreeningService(rt).screen("warm-up@example.org")
    except AbuseDeskError as exc:  # a bad policy or list file: the requests that need them answer the error
        log.error("API: building the policy and the screening lists ahead of requests failed: %s", exc)
    finally:
        gc.collect()
        gc.freeze()


def warm_soon(rt: Runtime) -> None:
    threading.Thread(target=warm, args=(rt,), name="abusedesk-api-warm", daemon=True).start()


def serve_api(
    rt: Runtime,
    *,
    host: str,
    port: int,
    workers: int = 1,
    app: str = DEFAULT_APP,
    log_level: str = "info",
    json_logs: bool = False,
    wake: Wakeable | None = None,
) -> None:
    """Serve the API until SIGTERM/SIGINT: in this process (``workers`` 1), else in ``workers`` processes."""
    check_workers(rt.settings, workers)
    if workers == 1:
        server = uvicorn_server(rt, app_factory(app)(rt), host=host, port=port, log_level=log_level)
        warm_soon(rt)
        server.run()
        return
    WorkerPool(rt.settings, host=host, port=port, workers=workers, app=app, log_level=log_level,
               json_logs=json_logs, wake=wake).run()  # fmt: skip


def _worker_main(
    settings: Settings, sock: socket.socket, app: str, log_level: str, json_logs: bool, wake: Wakeable | None
) -> None:
    """One API worker process: its own Runtime (engine, caches) on the deployment's settings, serving ``sock``."""
    from abusedesk.logs import setup_logging
    from abusedesk.runtime import Runtime

    setup_logging(log_level.upper(), "json" if json_logs else settings.log_format)
    rt = Runtime(settings)  # the parent migrated the database already
    rt.pipeline_wake = wake
    try:
        host, port = sock.getsockname()[:2]
        server = uvicorn_server(rt, app_factory(app)(rt), host=host, port=port, log_level=log_level)
        warm(rt)  # before it accepts: the parent holds the port, a worker not ready yet takes no connection
        server.run(sockets=[sock])
    finally:
        rt.close()


class WorkerPool:
    """The parent of the API workers: binds the socket, starts them, starts a dead one again, stops them all."""

    #: more deaths than this (per worker) within a minute: they would only die again, so serve stops
    MAX_DEATHS_A_MINUTE = 3

    def __init__(
        self,
        settings: Settings,
        *,
        host: str,
        port: int,
        workers: int,
        app: str = DEFAULT_APP,
        log_level: str = "info",
        json_logs: bool = False,
        wake: Wakeable | None = None,
    ) -> None:
        self.settings, self.workers, self.app = settings, workers, app
        self.log_level, self.json_logs, self.wake = log_level, json_logs, wake
        self.ctx = multiprocessing.get_context("spawn")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(2048)
        self.sock.set_inheritable(True)
        self.stop = threading.Event()
        self.procs: list[Any] = []
        self.deaths: list[float] = []

    def _start(self) -> Any:
        proc = self.ctx.Process(
            target=_worker_main,
            args=(self.settings, self.sock, self.app, self.log_level, self.json_logs, self.wake),
            name="abusedesk-api-worker",
            daemon=False,
        )
        proc.start()
        return proc

    def run(self) -> None:
        previous = {sig: signal.signal(sig, lambda *_: self.stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.procs = [self._start() for _ in range(self.workers)]
            log.info("API: %d worker processes (pids %s)", self.workers, ", ".join(str(p.pid) for p in self.procs))
            while not self.stop.wait(0.5):
                for i, proc in enumerate(self.procs):
                    if proc.is_alive():
                        continue
                    now = time.monotonic()
                    self.deaths = [t for t in self.deaths if now - t < 60] + [now]
                    if len(self.deaths) > self.MAX_DEATHS_A_MINUTE * self.workers:
                        raise ConfigError(
                            f"API workers keep exiting ({len(self.deaths)} in a minute, the last {proc.pid} with "
                            f"{proc.exitcode}); their log above says why"
                        )
                    log.warning("API worker %s exited (%s); starting another", proc.pid, proc.exitcode)
                    self.procs[i] = self._start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.shutdown()

    def shutdown(self, timeout: float = 20.0) -> None:
        for proc in self.procs:
            if proc.is_alive() and proc.pid is not None:
                proc.terminate()  # SIGTERM: uvicorn finishes in-flight requests, then exits
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        self.sock.close()
