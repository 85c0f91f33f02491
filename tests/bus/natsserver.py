"""A private ``nats-server -js`` on a loopback port with its own store dir, for one test or one test session."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.components import free_port, require_program, wait_for_port


class NatsServer:
    """One nats-server process; ``stop()`` and ``start()`` again keep its port and JetStream store."""

    def __init__(self, store: Path, *, port: int | None = None, config: str = "") -> None:
        self.program = require_program("nats-server")
        self.port = port or free_port()
        self._keep_port = port is not None
        self.store = store
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until *it* is ready.

        The port came from ``free_port()``, so another process may take it before the server binds it; the server
        then exits, and a bare wait for the port would connect the test to that other process's server (tests of
        two xdist workers sharing streams). So readiness is read from this server's own log, and a lost port is
        given up for a new one (a restart keeps its port: a test that stops and starts one server needs it).
        """
        for attempt in range(5):
            log = self.store / "server.log"
            log.unlink(missing_ok=True)
            cmd = [self.program, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store / "js")]
            cmd += ["-l", str(log)]
            if self.config:
                conf = self.store / "server.conf"
                conf.write_text(self.config)
                cmd += ["-c", str(conf)]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break  # it exited: the port was taken
                if "Server is ready" in (log.read_text(errors="replace") if log.exists() else ""):
                    wait_for_port("127.0.0.1", self.port)
                    self._keep_port = True  # clients know this port now: a restart must come back on it
                    return
                time.sleep(0.02)
            else:
                self.stop()
                raise RuntimeError(f"nats-server on port {self.port} did not get ready in 15 s; see {log}")
            self.proc = None
            if attempt == 4 or self._keep_port:
                break
            self.port = free_port()
        raise RuntimeError(f"nats-server could not listen on 127.0.0.1:{self.port}; see {self.store / 'server.log'}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


@contextmanager
def nats_server(config: str = "") -> Iterator[NatsServer]:
    """Start nats-server with JetStream (and an optional config file text); stop and remove it after."""
    with tempfile.TemporaryDirectory(prefix="abusedesk-nats-") as store:
        server = NatsServer(Path(store), config=config)
        server.start()
        try:
            yield server
        finally:
            server.stop()
