"""A private ``nats-server -js`` on a loopback port with its own store dir, for one test or one test session."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.components import free_port, require_program, wait_for_port


class NatsServer:
    """One nats-server process; ``stop()`` and ``start()`` again keep its port and JetStream store."""

    def __init__(self, store: Path, *, port: int | None = None, config: str = "") -> None:
        self.program = require_program("nats-server")
        self.port = port or free_port()
        self.store = store
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [self.program, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store / "js")]
        cmd += ["-l", str(self.store / "server.log")]
        if self.config:
            conf = self.store / "server.conf"
            conf.write_text(self.config)
            cmd += ["-c", str(conf)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", self.port)

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
