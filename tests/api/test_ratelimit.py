"""Who a submission is counted against: the peer, a forwarded client behind trusted proxies, an IPv6 /64."""

from __future__ import annotations

from datetime import timedelta

import pytest

from abusedesk.api.ratelimit import SubmissionLimiter
from abusedesk.clock import ManualClock
from abusedesk.domain.errors import ConfigError, RateLimited
from abusedesk.runtime import Runtime


def _limiter(runtime: Runtime, proxies: list[str] | None = None) -> SubmissionLimiter:
    runtime.settings.intake.api_trusted_proxies = proxies or []
    return SubmissionLimiter(runtime)


def test_the_peer_is_the_client_unless_it_is_a_trusted_proxy(runtime: Runtime) -> None:
    plain = _limiter(runtime)
    assert plain.client("192.0.2.7", "203.0.113.9") == "192.0.2.7"  # an untrusted peer cannot name someone else
    behind = _limiter(runtime, ["10.0.0.0/8", "192.0.2.1"])
    assert behind.client("192.0.2.1", "203.0.113.9") == "203.0.113.9"
    # right-most hop that is not a proxy: the left part of the header is whatever the client wrote
    assert behind.client("192.0.2.1", "198.51.100.1, 203.0.113.9, 10.1.2.3") == "203.0.113.9"
    assert behind.client("192.0.2.1", "junk, 10.1.2.3") == "10.1.2.3"
    assert behind.client("192.0.2.1", None) == "192.0.2.1"


def test_ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4(runtime: Runtime) -> None:
    lim = _limiter(runtime)
    assert lim.client("2001:db8:1:2:aaaa::1", None) == lim.client("2001:db8:1:2:bbbb::9", None) == "2001:db8:1:2::/64"
    assert lim.client("2001:db8:1:3::1", None) != lim.client("2001:db8:1:2::1", None)
    assert lim.client("::ffff:192.0.2.7", None) == "192.0.2.7"


def test_each_client_has_its_own_bucket(runtime: Runtime, clock: ManualClock) -> None:
    runtime.settings.intake.api_submissions_burst = 2
    runtime.settings.intake.api_submissions_per_minute = 60
    lim = _limiter(runtime)
    lim.check("a"), lim.check("a")
    with pytest.raises(RateLimited) as refused:
        lim.check("a")
    assert refused.value.retry_after == 1 and refused.value.status == 429
    lim.check("b")  # another client is not held up
    clock.advance(timedelta(seconds=1))
    lim.check("a")


def test_a_zero_rate_turns_the_limit_off(runtime: Runtime) -> None:
    runtime.settings.intake.api_submissions_per_minute = 0
    lim = _limiter(runtime)
    for _ in range(1000):
        lim.check("a")


def test_a_bad_proxy_setting_is_named(runtime: Runtime) -> None:
    with pytest.raises(ConfigError, match="'not-an-address' is not an address or network"):
        _limiter(runtime, ["not-an-address"])
