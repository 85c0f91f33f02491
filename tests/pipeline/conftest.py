from __future__ import annotations

from collections.abc import Iterator

import pytest

from abusedesk.clock import ManualClock
from abusedesk.config import Settings
from abusedesk.runtime import Runtime
from tests.bus.natsserver import nats_server
from tests.pipeline.spine import add_inventory, quiet_settings
from tests.support.components import missing


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    with nats_server() as server:
        yield server.url


@pytest.fixture
def spine_rt(runtime: Runtime, settings: Settings, clock: ManualClock) -> Runtime:
    """The test runtime's database with the small inventory, seen through Null-backend settings."""
    try:
        import abusedesk.inventory.service  # noqa: F401 - the attribute stage's dependency
    except ImportError as exc:  # written by another helper at the same time as these tests
        missing(f"the attribute stage cannot run yet: {exc}")
    add_inventory(runtime)
    return Runtime(quiet_settings(settings), clock=clock, engine=runtime.engine)
