from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from abusedesk.domain.ipnet import int_to_ip, ip_to_int, prefix_range
from abusedesk.domain.kinds import KINDS, XARF_TO_KIND, kind_from_xarf, xarf_for_kind
from abusedesk.domain.records import Event, Finding, Severity

T = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_event_id_is_deterministic_and_ignores_delivery() -> None:
    a = Event.create(kind="scan", time=T, feed="x", source_ip="192.0.2.7", raw_id="r1", observed=T)
    b = Event.create(kind="scan", time=T, feed="x", source_ip="192.0.2.7", raw_id="r2", observed=T + timedelta(hours=1))
    c = Event.create(kind="scan", time=T, feed="x", source_ip="192.0.2.8")
    assert a.id == b.id != c.id


def test_event_times_are_utc_and_naive_is_refused() -> None:
    cet = timezone(timedelta(hours=1))
    e = Event.create(kind="spam", time=datetime(2026, 3, 1, 11, 0, tzinfo=cet), feed="x")
    assert e.time == T and e.time.tzinfo == UTC
    with pytest.raises(ValueError, match="no time zone"):
        Event.create(kind="spam", time=datetime(2026, 3, 1), feed="x")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("source_ip", "300.1.1.1", "source.ip"),
        ("source_port", 70000, "source.port"),
        ("confidence", 1.5, "event.confidence"),
    ],
)
def test_event_bad_field_is_named(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Event.create(kind="scan", time=T, feed="x", **{field: value})


def test_unknown_kind_refused() -> None:
    with pytest.raises(ValueError, match="not a known event kind"):
        Event.create(kind="nope", time=T, feed="x")


def test_event_round_trips_through_catalogue_names() -> None:
    e = Event.create(
        kind="phishing",
        time=T,
        feed="f",
        source_url="http://example.net/x",
        source_ip="2001:db8::1",
        extra={"k": [1, 2]},
        ip_derived=True,
    )
    d = e.to_dict()
    assert d["classification.type"] == "phishing" and d["source.ip"] == "2001:db8::1"
    assert d["source.ip_derived"] is True
    assert Event.from_dict(d) == e
    d["source.ip"] = "2001:db8::2"
    with pytest.raises(ValueError, match="does not match its content"):
        Event.from_dict(d)


def test_ipv4_mapped_is_one_address() -> None:
    assert ip_to_int("192.0.2.1") == ip_to_int("::ffff:192.0.2.1")
    assert int_to_ip(ip_to_int("192.0.2.1")) == "192.0.2.1"
    first, last, plen = prefix_range("192.0.2.0/24")
    assert last - first == 255 and plen == 120
    with pytest.raises(ValueError, match="not a valid IP prefix"):
        prefix_range("192.0.2.1/24")


def test_xarf_mapping_is_lossless_for_all_32_types() -> None:
    assert len(XARF_TO_KIND) == 32
    assert len(set(XARF_TO_KIND.values())) == 32, "two XARF types map to one kind: the round trip would lose one"
    for pair, kind in XARF_TO_KIND.items():
        assert kind in KINDS
        assert xarf_for_kind(kind) == pair
        assert kind_from_xarf(*pair) == kind


def test_finding_id_and_validation() -> None:
    kw = dict(
        detector="d",
        kind="scan",
        clauses=("1.8",),
        group_key="192.0.2.7",
        window_start=T,
        window_end=T + timedelta(minutes=5),
        severity="high",
        confidence=0.9,
        summary="s",
    )
    assert Finding.create(**kw).id == Finding.create(**kw).id  # type: ignore[arg-type]
    assert Finding.create(**kw).severity is Severity.HIGH  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one clause"):
        Finding.create(**{**kw, "clauses": ()})  # type: ignore[arg-type]
    assert Severity.LOW.raised(2) is Severity.HIGH and Severity.CRITICAL.raised() is Severity.CRITICAL
