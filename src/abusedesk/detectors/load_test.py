"""LoadTestDetector: load or security testing against the provider's own ranges (clause 1.3)."""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.flowbase import SUMS, FlowDetector, cidr_mask


class LoadTestDetector(FlowDetector):
    """Flags a service sending load (many connections or packets) to the provider's own ranges.

    For: clause 1.3 (load or security testing of the provider's infrastructure without written consent), kind
    ``load-test``. Per (source, target) inside ``provider_ranges`` in a tumbling window: flows, packets, bytes.
    Default: 500 flows or 50,000 packets in 60 s to one provider address — our own default: ordinary use of a
    provider API stays far below (the corpus lab's benign HTTP client made ~1 request a second; its load test
    5,000 in 6 s). Scans and floods toward the ranges are also flagged by their own detectors. The flow stage
    checks every finding against the consent registry: inside an approved consent it is kept, marked
    consented, and makes no case; beyond the consent's rate or window it is a finding of its own.
    False positives: a customer's legitimate heavy use of a provider service (object storage) — list only the
    ranges that are not meant to take load in ``provider_ranges``.
    """

    name = "load_test"
    kind = "load-test"
    keys = ("src_addr", "dst_addr")
    sums: ClassVar[dict[str, str]] = SUMS

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        provider_ranges: list[str] = Field([], description="The provider's own CIDRs (none: the detector is idle).")
        window_seconds: int = Field(60, gt=0, description="Tumbling window.")
        min_flows: int = Field(500, gt=0, description="Flows to one provider address in the window.")
        min_packets: int = Field(50_000, gt=0, description="Packets to one provider address in the window.")

    def candidates(self, df: pl.DataFrame) -> pl.DataFrame:
        p = self.params
        assert isinstance(p, LoadTestDetector.Params)
        if not p.provider_ranges:
            return df.clear()
        return df.filter(cidr_mask("dst_addr", p.provider_ranges))

    def keep(self) -> pl.Expr:
        p = self.params
        assert isinstance(p, LoadTestDetector.Params)
        return (pl.col("flows") >= p.min_flows // 20) | (pl.col("packets") >= p.min_packets // 20)

    def crossed(self, agg: pl.DataFrame) -> pl.Expr:
        p = self.params
        assert isinstance(p, LoadTestDetector.Params)
        return (pl.col("flows") >= p.min_flows) | (pl.col("packets") >= p.min_packets)

    def describe(self, row: dict[str, Any]) -> tuple[str, str, float]:
        span = max((row["last"] - row["first"]) / 1000.0, 1.0)
        return (
            f"{row['src_addr']} sent {row['flows']} flows ({row['packets']} packets, {row['flows'] / span:,.0f} "
            f"flows/s) to the provider's address {row['dst_addr']} without consent (load or security test)",
            f"ip:{row['src_addr']}",
            0.8,
        )
