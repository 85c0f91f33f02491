"""A private ``nats-server -js`` on a free loopback port with its own store dir, for one test session."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.components import free_port, require_program, wait_for_port


@contextmanager
def nats_server() -> Iterator[str]:
    """Start nats-server with JetStream; yields its ``nats://127.0.0.1:PORT`` URL; stops and removes it after."""
    program = require_program("nats-server")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="abusedesk-nats-") as store:
        log_file = Path(store) / "server.log"
        proc = subprocess.Popen(
            [program, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(Path(store) / "js"), "-l", str(log_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port("127.0.0.1", port)
            yield f"nats://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
