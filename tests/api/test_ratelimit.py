"""Who a submission is counted against (the peer, an IPv6 /64) and the buckets in each store."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from abusedesk.api.ratelimit import RedisBuckets, SubmissionLimiter
from abusedesk.clock import ManualClock
from abusedesk.domain.errors import ConfigError, RateLimited
from abusedesk.runtime import Runtime
from tests.support.components import is_listening, missing


def _limiter(runtime: Runtime, proxies: list[str] | None = None) -> SubmissionLimiter:
    runtime.settings.intake.api_trusted_proxies = proxies or []
    return SubmissionLimiter(runtime)


def test_ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4(runtime: Runtime) -> None:
    lim = _limiter(runtime)
    assert lim.client("2001:db8:1:2:aaaa::1") == lim.client("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert lim.client("2001:db8:1:3::1") != lim.client("2001:db8:1:2::1")
    assert lim.client("::ffff:192.0.2.7") == "192.0.2.7"


@pytest.mark.parametrize("store", ["database", "memory", "redis"])
def test_each_client_has_its_own_bucket(runtime: Runtime, clock: ManualClock, store: str) -> None:
    if store == "redis" and not is_listening(6379):
        missing("Redis is not running on 127.0.0.1:6379")
    runtime.settings.intake.api_submissions_burst = 2
    runtime.settings.intake.api_submissions_per_minute = 60
    runtime.settings.intake.api_rate_limit_store = store  # type: ignore[assignment]
    runtime.settings.intake.api_rate_limit_redis_url = "redis://127.0.0.1:6379/12"
    # only this run's keys: other runs may share the server
    runtime.settings.intake.api_rate_limit_redis_prefix = f"abusedesk-test-{uuid.uuid4().hex}:"
    lim = _limiter(runtime)
    if isinstance(lim.store, RedisBuckets):
        assert lim.store.prefix == runtime.settings.intake.api_rate_limit_redis_prefix
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
