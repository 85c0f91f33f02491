"""The robots store against a real HTTP server on loopback: status, redirects, the 24 h cache, our own agent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from abusedesk.clock import ManualClock
from abusedesk.robots.store import RobotsStore
from abusedesk.runtime import Runtime
from tests.support.components import free_port
from tests.weblog.robotsserver import Site, serve

pytestmark = pytest.mark.integration


def test_fetch_records_what_the_host_served_with_our_agent(runtime: Runtime, clock: ManualClock) -> None:
    site = Site(robots=b"User-agent: *\nDisallow: /private/\n")
    store = RobotsStore(runtime)
    with serve(site) as host:
        record = store.fetch(host)
        assert (record.status, record.content, record.source) == (200, site.robots, "fetch")
        assert site.seen == [("/robots.txt", runtime.settings.robots.user_agent)]
        assert store.ensure(host).fetched_at == record.fetched_at  # cached: no second request
        assert len(site.seen) == 1
        clock.advance(timedelta(hours=25))
        assert store.ensure(host).fetched_at == clock.now()  # older than 24 h: fetched again
        assert len(site.seen) == 2
        with runtime.sessions() as s:
            latest = store.latest(s, host)
        assert latest is not None and not latest.parsed().check("AnyBot", "/private/x").allowed


@pytest.mark.parametrize(
    ("site", "status", "allowed", "state"),
    [
        (Site(robots=b"", robots_status=404), 404, True, "allowed"),
        (Site(robots=b"oops", robots_status=503), 503, False, "disallowed"),
        (Site(robots=b"User-agent: *\nDisallow: /\n", redirects=3), 200, False, "disallowed"),
        (Site(robots=b"User-agent: *\nDisallow: /\n", redirects=6), 310, True, "ambiguous"),
    ],
)
def test_status_and_redirects(runtime: Runtime, site: Site, status: int, allowed: bool, state: str) -> None:
    with serve(site) as host:
        record = RobotsStore(runtime).fetch(host)
    assert record.status == status
    verdict = record.parsed().check("AnyBot", "/page")
    assert (verdict.allowed, verdict.state) == (allowed, state)


def test_unreachable_is_status_zero_and_disallows(runtime: Runtime) -> None:
    record = RobotsStore(runtime).fetch(f"127.0.0.1:{free_port()}")
    assert record.status == 0
    assert not record.parsed().check("AnyBot", "/page").allowed
    assert record.parsed().check("AnyBot", "/robots.txt").allowed
