"""Flow detectors: thresholds at their edge, windows across batches with checkpointed state, spoofed sources."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import select

from abusedesk.detectors.base import Detector
from abusedesk.plugins import build_flow_detectors, detector_classes
from abusedesk.policy.loader import load_policy
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import FindingRow
from abusedesk.telemetry.schema import addr_bytes
from abusedesk.telemetry.service import import_flow_files

T = 1_795_814_940_000


def frame(flows: list[dict[str, Any]], service: str = "svc-x") -> pl.DataFrame:
    rows = []
    for f in flows:
        r = {"time_start": T, "time_end": T + 10, "proto": 6, "src_port": 40000, "dst_port": 80, "tcp_flags": 2,
             "packets": 1, "bytes": 60, "input_if": 0, "exporter": "e", "spoofed": False} | f  # fmt: skip
        r["src_addr"] = addr_bytes(str(r.pop("src", "192.0.2.1")))
        r["dst_addr"] = addr_bytes(str(r.pop("dst", "198.51.100.7")))
        rows.append(r)
    df = pl.DataFrame(rows)
    return df.with_columns(
        pl.from_epoch("time_start", "ms").dt.replace_time_zone("UTC"),
        pl.from_epoch("time_end", "ms").dt.replace_time_zone("UTC"),
        pl.lit(service).alias("service_id"), pl.lit("prj-x").alias("project_id"), pl.lit("cus-x").alias("customer_id"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def detectors() -> dict[str, Detector]:
    from abusedesk.config import Settings

    s = Settings(detectors={"load_test": {"provider_ranges": ["198.51.100.0/24"]}})
    return {d.name: d for d in build_flow_detectors(load_policy(None), s)}


def run(d: Detector, *batches: pl.DataFrame, checkpoint: bool = True) -> list[Any]:
    """Each batch through detect and flush, the state dumped to JSON and loaded between them (the runner's way)."""
    import json

    state = d.new_state()
    out = []
    for b in batches:
        out += d.detect(b, state)
        out += d.flush(state, b["time_end"].max())
        if checkpoint:
            state = d.load_state(json.loads(json.dumps(d.dump_state(state))))
    return out


@pytest.mark.unit
def test_every_flow_detector_is_registered_with_defaults(detectors: dict[str, Detector]) -> None:
    names = {c.name for c in detector_classes() if getattr(c, "consumes", "events") == "flows"}
    assert names == set(detectors) == {"vertical_scan", "horizontal_scan", "flood", "bruteforce", "smtp_burst",
                                       "spoofed_source", "load_test"}  # fmt: skip
    for d in detectors.values():
        assert d.detect(frame([{}]).clear(), d.new_state()) == []
        assert d.__doc__ and "False positives" in d.__doc__


@pytest.mark.unit
def test_vertical_scan_threshold_edge_and_across_batches(detectors: dict[str, Detector]) -> None:
    d = detectors["vertical_scan"]
    fourteen = frame([{"dst_port": p} for p in range(1, 15)])
    assert run(d, fourteen) == []
    # the 15th port comes in the next batch: the checkpointed state remembers the first 14
    (f,) = run(d, fourteen, frame([{"dst_port": 15, "time_start": T + 1000, "time_end": T + 1010}]))
    assert f.kind == "scan" and f.clauses[0] == "1.8" and f.service_id == "svc-x"
    # the sample comes from the batch that crossed the threshold
    assert f.evidence[0]["aggregate"]["distinct"] == 15 and len(f.evidence[1]["flows"]) == 1
    # completed connections (ACK seen) are not failed attempts
    assert run(d, frame([{"dst_port": p, "tcp_flags": 0x12} for p in range(1, 40)])) == []
    # a closed window is forgotten: 14 ports, then 14 more six minutes later
    later = frame([{"dst_port": p, "time_start": T + 360_000, "time_end": T + 360_010} for p in range(20, 34)])
    assert run(d, fourteen, later) == []


@pytest.mark.unit
def test_reported_once_per_window(detectors: dict[str, Detector]) -> None:
    d = detectors["horizontal_scan"]
    a = frame([{"dst": f"203.0.113.{i}", "dst_port": 23} for i in range(30)])
    b = frame([{"dst": f"203.0.113.{i}", "dst_port": 23, "time_start": T + 1000} for i in range(30, 60)])
    assert len(run(d, a, b)) == 1


@pytest.mark.unit
def test_flood_needs_rate_and_syn_share(detectors: dict[str, Detector]) -> None:
    d = detectors["flood"]
    syn = frame([{"src_port": i, "packets": 2, "time_start": T + i, "time_end": T + i} for i in range(1500)])
    (f,) = run(d, syn)  # 3,000 packets in 1.5 s
    assert f.kind == "dos" and f.evidence[0]["aggregate"]["pps"] >= 1000
    established = syn.with_columns(pl.lit(0x1B).alias("tcp_flags"))
    assert run(d, established) == []
    slow = frame([{"src_port": i, "packets": 2, "time_start": T + i * 5, "time_end": T + i * 5} for i in range(1500)])
    assert run(d, slow) == []  # 3,000 packets over 7.5 s is 400 pps
    udp = frame([{"proto": 17, "packets": 5000, "time_start": T, "time_end": T + 3800}])
    assert len(run(d, udp)) == 1


@pytest.mark.unit
def test_bruteforce_rules(detectors: dict[str, Detector]) -> None:
    d = detectors["bruteforce"]
    ssh = lambda n: frame([{"dst_port": 22, "src_port": 1000 + i, "tcp_flags": 0x1B} for i in range(n)])  # noqa: E731
    assert run(d, ssh(4)) == []
    (f,) = run(d, ssh(5))
    assert f.kind == "brute-force" and "SSH" in f.summary and f.clauses[0] == "1.7"
    rdp = frame([{"dst_port": 3389, "src_port": 1000 + i} for i in range(19)])
    assert run(d, rdp) == []
    assert len(run(d, frame([{"dst_port": 3389, "src_port": 1000 + i} for i in range(20)]))) == 1


@pytest.mark.unit
def test_smtp_burst_and_load_test(detectors: dict[str, Detector]) -> None:
    mx = frame([{"dst": f"203.0.113.{i}", "dst_port": 25, "tcp_flags": 0x1B} for i in range(20)])
    (f,) = run(detectors["smtp_burst"], mx)
    assert f.kind == "spam" and f.clauses[0] == "1.11"
    assert run(detectors["smtp_burst"], mx.head(19)) == []
    load = frame([{"src_port": i, "tcp_flags": 0x1B} for i in range(500)])  # to 198.51.100.7, a provider range
    (f,) = run(detectors["load_test"], load)
    assert f.kind == "load-test" and f.clauses[0] == "1.3"
    elsewhere = frame([{"src_port": i, "tcp_flags": 0x1B, "dst": "203.0.113.5"} for i in range(900)])
    assert run(detectors["load_test"], elsewhere) == []


@pytest.mark.integration
def test_spoofed_source_attributed_by_interface(lab_rt: Runtime, tmp_path: Path) -> None:
    lab_rt.settings.telemetry.interfaces["spoof.csv/0"] = "svc-ssh"
    p = tmp_path / "spoof.csv"
    rows = ["time_start,time_end,proto,src_addr,dst_addr,src_port,dst_port,tcp_flags,packets,bytes"]
    start = int(datetime(2026, 11, 27, 21, 0, tzinfo=UTC).timestamp() * 1000)
    rows += [f"{start + i},{start + i},17,203.0.113.{i},192.0.2.80,{i + 1000},53,0,1,80" for i in range(1, 6)]
    p.write_text("\n".join(rows) + "\n")
    (out,) = import_flow_files(lab_rt, [p], "csv")
    assert out["status"] == "stored"
    with lab_rt.sessions() as s:
        (f,) = s.scalars(select(FindingRow))
    assert (f.kind, f.service_id, f.customer_id) == ("spoofed-source", "svc-ssh", "cus-lab")
    assert f.case_id is not None and "5 flows" in f.summary


@pytest.mark.unit
def test_thresholds_come_from_the_policy_file_and_the_settings_override_them(tmp_path: Path) -> None:
    from abusedesk.config import Settings
    from abusedesk.domain.errors import ConfigError
    from abusedesk.policy.loader import load_policy_text

    shipped = load_policy(None)
    assert shipped.detector_params["vertical_scan"]["min_ports"] == 15
    text = shipped.source_text.replace("    min_ports: 15 ", "    min_ports: 40 ")
    policy = load_policy_text(text)
    d = {x.name: x for x in build_flow_detectors(policy, Settings())}
    assert d["vertical_scan"].params.min_ports == 40  # type: ignore[attr-defined]
    d = {x.name: x for x in build_flow_detectors(policy, Settings(detectors={"vertical_scan": {"min_ports": 9}}))}
    assert d["vertical_scan"].params.min_ports == 9  # type: ignore[attr-defined]
    bad = load_policy_text(shipped.source_text.replace("    min_ports: 15 ", "    min_portz: 15 "))
    with pytest.raises(ConfigError, match="min_portz"):
        build_flow_detectors(bad, Settings())


# ------------------------------------------------------------------ addresses keyed as two uint64 halves
# Each IPv6 address below shares its low 64 bits with an IPv4-mapped one (::ffff:a.b.c.d): a key built from the
# low half alone, or one that dropped the high half anywhere on the way, would put them in one group.


def twin(v4: str) -> str:
    """An IPv6 address whose low half is the IPv4-mapped key's of ``v4`` (only the high half differs)."""
    import ipaddress

    return str(ipaddress.IPv6Address((0x2001_0DB8 << 96) | 0xFFFF_0000_0000 | int(ipaddress.IPv4Address(v4))))


@pytest.mark.unit
def test_an_ipv6_source_never_groups_with_the_ipv4_source_of_the_same_low_half(
    detectors: dict[str, Detector],
) -> None:
    d = detectors["vertical_scan"]
    v4, v6, compat = "192.0.2.1", twin("192.0.2.1"), "::192.0.2.1"  # compat: IPv4-compatible, no ffff
    # 8 + 7 ports: 15 together, under the threshold apart
    flows = [{"src": v4, "dst_port": p} for p in range(1, 9)] + [{"src": v6, "dst_port": p} for p in range(9, 16)]
    assert run(d, frame(flows)) == []
    assert run(d, frame([{"src": v4, "dst_port": p} for p in range(1, 9)]
                        + [{"src": compat, "dst_port": p} for p in range(9, 16)])) == []  # fmt: skip
    # the 15 ports of the IPv6 source alone, across two checkpointed batches: found, and named as IPv6
    (f,) = run(d, frame([{"src": v6, "dst_port": p} for p in range(1, 9)]),
               frame([{"src": v6, "dst_port": p, "time_start": T + 5} for p in range(9, 16)]))  # fmt: skip
    assert f.subject_ip == v6 == f.evidence[0]["aggregate"]["src_addr"]
    assert {r["src"] for r in f.evidence[1]["flows"]} == {v6}


@pytest.mark.unit
def test_distinct_targets_count_an_ipv6_twin_as_another_host(detectors: dict[str, Detector]) -> None:
    d = detectors["horizontal_scan"]
    hosts = [f"198.51.100.{i}" for i in range(1, 25)]  # 24: one short of the threshold
    assert run(d, frame([{"dst": h, "dst_port": 23} for h in hosts])) == []
    # the 25th host is the IPv6 twin of one of the 24: another host
    (f,) = run(d, frame([{"dst": h, "dst_port": 23} for h in [*hosts, twin(hosts[0])]]))
    assert f.evidence[0]["aggregate"]["distinct"] == 25
    # the same IPv4 host again is not
    assert run(d, frame([{"dst": h, "dst_port": 23} for h in [*hosts, hosts[0]]])) == []


@pytest.mark.unit
def test_flood_targets_and_high_bit_addresses_keep_their_identity(detectors: dict[str, Detector]) -> None:
    d = detectors["flood"]
    # half the packets each to an IPv4 target and to its IPv6 twin: two targets, neither flooded
    half = [{"proto": 17, "packets": 1200, "time_start": T, "time_end": T + 1000}]
    assert run(d, frame([*half, *[f | {"dst": twin("198.51.100.7")} for f in half]])) == []
    # addresses with the top bit of both halves set (unsigned 64-bit keys, not signed) come back exactly
    src, dst = "fe80::8000:0:0:1", "ff0e::8000:0:0:2"
    (f,) = run(d, frame([{"proto": 17, "packets": 5000, "time_start": T, "time_end": T + 1000,
                          "src": src, "dst": dst}]))  # fmt: skip
    assert f.subject_ip == src and f.evidence[0]["aggregate"]["dst_addr"] == dst
    assert f.evidence[1]["flows"][0]["dst"] == dst


@pytest.mark.unit
def test_provider_ranges_match_on_both_halves() -> None:
    from abusedesk.config import Settings

    s = Settings(detectors={"load_test": {"provider_ranges": ["198.51.100.0/24", "2001:db8:ffff::/48"]}})
    d = {x.name: x for x in build_flow_detectors(load_policy(None), s)}["load_test"]

    def load(dst: str) -> pl.DataFrame:
        return frame([{"src_port": i, "tcp_flags": 0x1B, "dst": dst} for i in range(500)])

    assert len(run(d, load("198.51.100.255"))) == 1
    assert len(run(d, load("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"))) == 1
    assert len(run(d, load("2001:db8:ffff::"))) == 1
    for outside in ("198.51.101.0", "198.51.99.255", twin("198.51.100.7"), "::198.51.100.7", "2001:db8:fffe::1",
                    "2001:db8:1:0:ffff::1"):  # fmt: skip
        assert run(d, load(outside)) == [], outside


@pytest.mark.unit
def test_a_state_checkpointed_with_binary_addresses_still_loads(detectors: dict[str, Detector]) -> None:
    """States written before the integer keys hold 16-byte address columns; they load into the new keys."""
    from abusedesk.detectors.flowbase import _encode

    d = detectors["vertical_scan"]
    legacy = frame([{"dst_port": p} for p in range(1, 15)]).select(
        (pl.lit(T // 300_000 * 300_000)).alias("w"), "src_addr", "dst_addr", "dst_port",
        pl.lit(T).alias("first"), pl.lit(T + 10).alias("last"), pl.lit(1, pl.UInt32).alias("flows"),
    )  # fmt: skip
    state = d.load_state({"rows": _encode(legacy)})
    (f,) = d.detect(frame([{"dst_port": 15, "time_start": T + 1000, "time_end": T + 1010}]), state)
    assert f.subject_ip == "192.0.2.1" and "15 ports of 198.51.100.7" in f.summary


@pytest.mark.unit
def test_the_bucket_sketch_never_drops_a_heavy_key() -> None:
    """``heavy_buckets`` may keep light keys (a bucket shared), never drop a key whose exact total is heavy."""
    import numpy as np

    from abusedesk.detectors.flowbase import heavy_buckets

    rnd = np.random.default_rng(7)
    n = 200_000
    keys = rnd.integers(0, 50_000, n)
    hi = (keys % 3).astype(np.uint64) << np.uint64(62)  # some keys differ in the high half only
    lo = (keys // 3).astype(np.uint64)
    w = rnd.integers(0, 10, n).astype(np.uint64)
    maybe = heavy_buckets(hi, lo, w, 40)
    exact = pl.DataFrame({"hi": hi, "lo": lo, "w": w}).with_columns(pl.col("w").sum().over("hi", "lo").alias("t"))
    heavy = (exact["t"] >= 40).to_numpy()
    assert heavy.any() and not heavy.all()
    assert not (heavy & ~maybe).any()  # no heavy key dropped
    assert (~maybe).sum() > n // 2  # and it does drop most of the light ones


@pytest.mark.unit
def test_findings_are_the_same_from_the_integer_keys_alone(detectors: dict[str, Detector]) -> None:
    """The flows stage hands over the uint64 halves without the 16-byte columns: same findings, same addresses."""
    from abusedesk.detectors.flowbase import with_addr_keys

    v6 = "2001:db8:8000::9"
    batches = {
        "vertical_scan": frame([{"src": v6, "dst_port": p} for p in range(1, 16)]),
        "horizontal_scan": frame([{"dst": f"203.0.113.{i}", "dst_port": 23} for i in range(25)]),
        "flood": frame([{"proto": 17, "packets": 5000, "time_end": T + 1000, "dst": twin("198.51.100.7")}]),
        "smtp_burst": frame([{"dst": f"203.0.113.{i}", "dst_port": 25, "tcp_flags": 0x1B} for i in range(20)]),
        "load_test": frame([{"src_port": i, "tcp_flags": 0x1B} for i in range(500)]),
        "spoofed_source": frame([{"spoofed": True, "src": f"203.0.113.{i}"} for i in range(3)]),
        "bruteforce": frame([{"dst_port": 22, "src_port": 1000 + i, "tcp_flags": 0x1B} for i in range(5)]),
    }
    for name, batch in batches.items():
        with_binary = run(detectors[name], batch)
        ints_only = run(detectors[name], with_addr_keys(batch).drop("src_addr", "dst_addr"))
        assert len(with_binary) == 1, name
        assert [f.to_dict() for f in ints_only] == [f.to_dict() for f in with_binary], name
    assert "~3 source addresses" in run(detectors["spoofed_source"], batches["spoofed_source"])[0].summary
