"""The test harness's nats-server: a port taken between choosing and binding it never leads to another server."""

from __future__ import annotations

import socket
from pathlib import Path

import nats
import pytest

from tests.bus import natsserver
from tests.support.components import free_port


def test_a_taken_port_is_given_up_for_a_free_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()  # another process's listener: a bare wait for the port would accept it as our server
    taken_port = taken.getsockname()[1]
    ports = iter([taken_port])
    monkeypatch.setattr(natsserver, "free_port", lambda: next(ports, None) or free_port())
    server = natsserver.NatsServer(tmp_path)
    try:
        server.start()
        assert server.port != taken_port
        assert server.proc is not None and server.proc.poll() is None

        async def info() -> str:
            nc = await nats.connect(server.url, connect_timeout=5, max_reconnect_attempts=0)
            try:
                return str(nc.connected_url.netloc if nc.connected_url else "")
            finally:
                await nc.close()

        import asyncio

        assert asyncio.run(info()).endswith(f":{server.port}")
    finally:
        server.stop()
        taken.close()
