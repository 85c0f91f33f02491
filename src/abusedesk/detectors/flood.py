"""FloodDetector: SYN, UDP and other packet floods toward one target (flow telemetry)."""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.flowbase import ADDR_KEYS, SUMS, FlowDetector, heavy_buckets
from abusedesk.telemetry.schema import TCP_ACK, TCP_SYN


class FloodDetector(FlowDetector):
    """Flags a service sending packets at a high rate to one target: a SYN flood, a UDP flood, an ICMP flood.

    For: clause 1.8 (denial of service), kind ``dos``. Per (source, target, protocol) in a tumbling window: the
    packets, bytes, flows, the share of SYN-only TCP flows, and the rate over the active span (first to last
    packet, at least 1 s). Defaults: at least 2,000 packets at 1,000 pps or more, and for TCP at least half of the
    flows SYN-only (established TCP at a high rate is a load test, ``load_test``'s business, not a flood).
    Anchor: fastnetmon's defaults (20k pps or 1 Gbit/s per host) are for a whole network's victim; one abusive VM
    floods far lower — the corpus lab's hping3 floods ran at ~3.7k (SYN) and ~1.3k (UDP) pps.
    False positives: a media server streaming UDP to one client at a high rate (raise ``min_pps`` for it).
    """

    name = "flood"
    kind = "dos"
    keys = ("src_addr", "dst_addr", "proto")
    sums: ClassVar[dict[str, str]] = {**SUMS, "syn_only": "sum"}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        window_seconds: int = Field(10, gt=0, description="Tumbling window.")
        min_packets: int = Field(2000, gt=0, description="Packets toward one target in the window.")
        min_pps: float = Field(1000.0, gt=0, description="Packets per second over the active span.")
        min_syn_ratio: float = Field(0.5, ge=0, le=1, description="TCP: share of SYN-only flows.")

    def extra_aggregates(self) -> list[pl.Expr]:
        syn_only = (pl.col("proto") == 6) & ((pl.col("tcp_flags") & (TCP_SYN | TCP_ACK)) == TCP_SYN)
        return [syn_only.sum().cast(pl.Int64).alias("syn_only")]

    def candidates(self, df: pl.DataFrame) -> pl.DataFrame:
        """Flows toward targets that get a real share of the threshold in this batch, so the full (source,
        target, protocol) group-by runs on the heavy targets only.

        Nearly every flow has a target of its own, and a group-by over nearly unique keys is the slowest thing a
        detector can do; so first a sketch: the targets hashed into buckets and the packets summed per bucket
        with one ``np.bincount``. A target's packets are at most its bucket's, so a flow whose bucket is light
        cannot be toward a heavy target (no false negatives); the exact group-by by target then runs on the
        few flows left."""
        p = self.params
        assert isinstance(p, FloodDetector.Params)
        need = p.min_packets // 20
        maybe = heavy_buckets(df["dst_hi"].to_numpy(), df["dst_lo"].to_numpy(), df["packets"].to_numpy(), need)
        if not maybe.all():
            df = df.filter(pl.Series(maybe))
        target = list(ADDR_KEYS["dst_addr"])
        heavy = df.group_by(target).agg(pl.col("packets").sum().alias("p")).filter(pl.col("p") >= need).select(target)
        return df.join(heavy, on=target, how="semi")

    def keep(self) -> pl.Expr:
        p = self.params
        assert isinstance(p, FloodDetector.Params)
        return pl.col("packets") >= p.min_packets // 20

    def crossed(self, agg: pl.DataFrame) -> pl.Expr:
        p = self.params
        assert isinstance(p, FloodDetector.Params)
        span = pl.max_horizontal((pl.col("last") - pl.col("first")) / 1000.0, pl.lit(1.0))
        tcp_ok = (pl.col("proto") != 6) | (pl.col("syn_only") >= p.min_syn_ratio * pl.col("flows"))
        return (pl.col("packets") >= p.min_packets) & (pl.col("packets") / span >= p.min_pps) & tcp_ok

    def describe(self, row: dict[str, Any]) -> tuple[str, str, float]:
        span = max((row["last"] - row["first"]) / 1000.0, 1.0)
        pps = row["packets"] / span
        proto = {6: "TCP SYN", 17: "UDP", 1: "ICMP", 58: "ICMPv6"}.get(row["proto"], f"IP proto {row['proto']}")
        row["pps"] = round(pps, 1)
        row["bps"] = round(row["bytes"] * 8 / span, 1)
        return (
            f"{row['src_addr']} sent {row['packets']} packets ({proto} flood) to {row['dst_addr']} at {pps:,.0f} pps",
            f"ip:{row['src_addr']}",
            0.85,
        )
