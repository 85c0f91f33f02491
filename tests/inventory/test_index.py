"""The attribution index alone (no database): most specific wins, half-open intervals, IPv6, reasons, batch = single."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abusedesk.domain.errors import Conflict
from abusedesk.domain.ipnet import V4_BASE, ip_to_int, prefix_range
from abusedesk.inventory.index import AllocationEntry, AttributionIndex, to_us

pytestmark = pytest.mark.unit

D = datetime(2026, 3, 1, tzinfo=UTC)
SERVICES = {"svc-a": ("prj-a", "cus-a"), "svc-b": ("prj-b", "cus-b"), "svc-lb": ("prj-a", "cus-a")}


def entry(aid: int, prefix: str, service: str, start: datetime, end: datetime | None = None) -> AllocationEntry:
    first, last, _ = prefix_range(prefix)
    return AllocationEntry(aid, prefix, first, last, service, to_us(start), None if end is None else to_us(end))


@pytest.fixture
def index() -> AttributionIndex:
    return AttributionIndex.build(
        [
            entry(1, "203.0.113.0/24", "svc-lb", D - timedelta(days=60)),
            entry(2, "203.0.113.0/28", "svc-a", D - timedelta(days=60), D + timedelta(hours=12)),
            entry(3, "203.0.113.0/28", "svc-b", D + timedelta(hours=12)),
            entry(4, "203.0.113.7/32", "svc-b", D - timedelta(days=1), D),
            entry(5, "198.51.100.0/25", "svc-a", D - timedelta(days=300), D - timedelta(days=90)),
            entry(6, "2001:db8::/32", "svc-b", D - timedelta(days=60)),
            entry(7, "2001:db8:1::/48", "svc-a", D - timedelta(days=60), D),
        ],
        SERVICES,
    )


def test_most_specific_prefix_valid_at_the_time_wins(index: AttributionIndex) -> None:
    a = index.attribute("203.0.113.7", D - timedelta(hours=1))
    assert (a.service_id, a.allocation_id, a.prefix) == ("svc-b", 4, "203.0.113.7/32")
    assert "most specific of 3" in a.reason
    # the /32 ended at D: the /28 answers, then the /24 outside the /28
    assert index.attribute("203.0.113.7", D).allocation_id == 2
    assert index.attribute("203.0.113.200", D).allocation_id == 1
    assert index.attribute("203.0.113.200", D).customer_id == "cus-a"


def test_half_open_interval_blames_the_old_owner_until_the_second_before(index: AttributionIndex) -> None:
    noon = D + timedelta(hours=12)
    before = index.attribute("203.0.113.5", noon - timedelta(seconds=1))
    after = index.attribute("203.0.113.5", noon)
    assert (before.service_id, before.customer_id, before.allocation_id) == ("svc-a", "cus-a", 2)
    assert (after.service_id, after.customer_id, after.allocation_id) == ("svc-b", "cus-b", 3)
    assert before.valid_to == noon and after.valid_from == noon and after.valid_to is None
    assert index.attribute("203.0.113.5", noon - timedelta(microseconds=1)).allocation_id == 2


def test_ipv6_nested_and_ipv4_mapped(index: AttributionIndex) -> None:
    assert index.attribute("2001:db8:1::5", D - timedelta(seconds=1)).allocation_id == 7
    assert index.attribute("2001:db8:1::5", D).allocation_id == 6  # the /48 ended, the /32 holds
    assert index.attribute("2001:db8:ffff::1", D).service_id == "svc-b"
    mapped = index.attribute("::ffff:203.0.113.7", D - timedelta(hours=1))
    assert mapped.allocation_id == 4 and mapped.ip == "203.0.113.7"


def test_not_ours_says_whether_never_covered_or_not_then(index: AttributionIndex) -> None:
    never = index.attribute("192.0.2.1", D)
    assert not never.is_ours and never.service_id is None
    assert never.reason == "not ours: no allocation covers 192.0.2.1 at any time"
    then = index.attribute("198.51.100.9", D)
    assert not then.is_ours
    assert "198.51.100.0/25 but no allocation of it was valid then" in then.reason
    assert "last held by service svc-a" in then.reason and "(allocation 5)" in then.reason
    assert "2025-12-01T00:00:00Z" in then.reason  # when it ended
    early = index.attribute("203.0.113.9", D - timedelta(days=61))
    assert "next held by service svc-a via 203.0.113.0/28 from 2025-12-31T00:00:00Z" in early.reason
    assert "or of its parent prefixes" in early.reason


def test_batch_forms_and_columns(index: AttributionIndex) -> None:
    ips = ["203.0.113.7", "203.0.113.5", "192.0.2.1", "198.51.100.9"]
    t = np.array(["2026-02-28T23:00:00", "2026-03-01T12:00:00", "2026-03-01T00:00:00", "2025-10-01T00:00:00"],
                 dtype="datetime64[us]")  # fmt: skip
    v4 = np.array([ip_to_int(ip) - V4_BASE for ip in ips], dtype=np.uint32)
    rows = index.lookup_batch(v4, t)
    assert rows.tolist() == [3, 2, -1, 4]  # rows are positions in build order
    pairs = np.array([[ip_to_int(ip) >> 64, ip_to_int(ip) & (2**64 - 1)] for ip in [*ips, "2001:db8:1::1"]],
                     dtype=np.uint64)  # fmt: skip
    t2 = np.append(t, np.datetime64("2026-02-01T00:00:00", "us"))
    assert index.lookup_batch(pairs, t2).tolist() == [3, 2, -1, 4, 6]
    cols = index.columns(rows)
    assert cols["allocation_id"].tolist() == [4, 3, -1, 5]
    assert cols["customer_id"].tolist() == ["cus-b", "cus-b", None, "cus-a"]
    # one time for all addresses broadcasts; int64 epoch-µs works as well as datetime64
    one = index.lookup_batch(v4, np.int64(to_us(D - timedelta(hours=1))))
    assert one.tolist() == [3, 1, -1, -1]
    with pytest.raises(ValueError, match=r"0\.\.2"):
        index.lookup_batch(np.array([-1, 5], dtype=np.int64), np.zeros(2, np.int64))
    with pytest.raises(TypeError, match="datetime64 or int64"):
        index.lookup_batch(v4, np.zeros(4, np.float64))


def test_empty_index_owns_nothing() -> None:
    idx = AttributionIndex.build([], {})
    assert not idx.attribute("203.0.113.1", D).is_ours
    assert idx.lookup_batch(np.arange(5000, dtype=np.uint32), np.zeros(5000, np.int64)).tolist() == [-1] * 5000


def test_overlapping_intervals_of_one_prefix_are_refused() -> None:
    with pytest.raises(Conflict, match=r"allocations 1 and 2 of 203\.0\.113\.0/24 overlap"):
        AttributionIndex.build(
            [entry(1, "203.0.113.0/24", "svc-a", D), entry(2, "203.0.113.0/24", "svc-b", D + timedelta(hours=1))],
            SERVICES,
        )


# ---------------------------------------------------------------------------- batch = single = brute force

V4_PREFIXES = [f"203.0.113.{n}/{plen}" for plen in range(24, 33) for n in range(0, 256, 1 << (32 - plen))][:120]
V6_PREFIXES = [f"2001:db8::{n:x}/{plen}" for plen in range(120, 129) for n in range(0, 256, 1 << (128 - plen))][:60]


@st.composite
def inventories(draw: st.DrawFn) -> list[AllocationEntry]:
    prefixes = draw(st.lists(st.sampled_from(V4_PREFIXES + V6_PREFIXES + ["::/0", "2001:db8::/32"]), unique=True,
                             max_size=25))  # fmt: skip
    out: list[AllocationEntry] = []
    for p in prefixes:
        first, last, _ = prefix_range(p)
        cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=1, max_size=6, unique=True)))
        open_end = draw(st.booleans())
        for i, start in enumerate(cuts):
            end = cuts[i + 1] if i + 1 < len(cuts) else (None if open_end else start + draw(st.integers(1, 20)))
            if draw(st.integers(0, 3)) == 0 and end is not None:
                continue  # a gap in the timeline
            out.append(AllocationEntry(len(out) + 1, p, first, last, draw(st.sampled_from(list(SERVICES))), start, end))
    return out


def brute_force(entries: list[AllocationEntry], ip: int, t: int) -> int:
    best, best_size = -1, None
    for row, e in enumerate(entries):
        end = e.valid_to if e.valid_to is not None else 1 << 62
        if e.first <= ip <= e.last and e.valid_from <= t < end and (best_size is None or e.last - e.first < best_size):
            best, best_size = row, e.last - e.first
    return best


ADDRESSES = st.one_of(
    st.integers(0, 300).map(lambda n: V4_BASE + (ip_to_int("203.0.113.0") - V4_BASE) + n - 20),
    st.integers(0, 300).map(lambda n: ip_to_int("2001:db8::") + n - 20),
    st.integers(0, (1 << 128) - 1),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=inventories(), queries=st.lists(st.tuples(ADDRESSES, st.integers(-5, 125)), min_size=1, max_size=60))
def test_batch_equals_single_equals_brute_force(entries: list[AllocationEntry], queries: list[tuple[int, int]]) -> None:
    idx = AttributionIndex.build(entries, SERVICES)
    expect = [brute_force(entries, ip, t) for ip, t in queries]
    assert [idx.lookup(ip, t) for ip, t in queries] == expect
    pairs = np.array([[ip >> 64, ip & (2**64 - 1)] for ip, _ in queries], dtype=np.uint64)
    times = np.array([t for _, t in queries], dtype=np.int64)
    assert idx.lookup_batch(pairs, times).tolist() == expect
    v4 = [(k, ip - V4_BASE) for k, (ip, _) in enumerate(queries) if V4_BASE <= ip <= V4_BASE + 0xFFFF_FFFF]
    if v4:
        got = idx.lookup_batch(np.array([a for _, a in v4], np.uint32), times[[k for k, _ in v4]])
        assert got.tolist() == [expect[k] for k, _ in v4]


def test_large_batch_takes_the_sorted_path_and_agrees() -> None:
    rng = np.random.default_rng(3)
    entries = []
    for n in range(256):
        p = f"203.0.113.{n}/32"
        first, last, _ = prefix_range(p)
        entries.append(
            AllocationEntry(n + 1, p, first, last, "svc-a", int(rng.integers(0, 50)), int(rng.integers(50, 100)))
        )
    first, last, _ = prefix_range("203.0.113.0/24")
    entries.append(AllocationEntry(999, "203.0.113.0/24", first, last, "svc-b", 20, None))
    idx = AttributionIndex.build(entries, SERVICES)
    ips = rng.integers(ip_to_int("203.0.113.0") - V4_BASE - 50, ip_to_int("203.0.113.255") - V4_BASE + 50, 20_000)
    times = rng.integers(-10, 120, 20_000)
    got = idx.lookup_batch(ips.astype(np.uint32), times)
    expect = [idx.lookup(V4_BASE + int(ip), int(t)) for ip, t in zip(ips, times, strict=True)]
    assert got.tolist() == expect
    assert (got >= 0).any() and (got == -1).any()
