from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from abusedesk.bus.nats import NatsBus
from abusedesk.runtime import Runtime
from abusedesk.stages import routes
from tests.bus.natsserver import nats_server

_counter = itertools.count()


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    with nats_server() as server:
        yield server.url


@pytest.fixture
def nats_bus(nats_url: str, runtime: Runtime) -> Iterator[NatsBus]:
    """A NatsBus on its own stream and subject prefix, with short backoffs so retries happen within a test; its
    outbox is the test database's."""
    n = next(_counter)
    bus = NatsBus(
        nats_url, stream=f"T{n}", prefix=f"t{n}", max_attempts=3, backoff=(0.05, 0.1), ack_wait=5.0, timeout=5.0
    )
    bus.bind(runtime.sessions, runtime.clock, routes())
    yield bus
    bus.close()
