"""SpoofedSourceDetector: egress traffic whose source address is not the service's (flow telemetry)."""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.flowbase import ADDR_KEYS, SUMS, FlowDetector


class SpoofedSourceDetector(FlowDetector):
    """Flags traffic leaving a service with a source address allocated to no service at that time.

    For: clause 1.8 (forged packets), kind ``spoofed-source``. The flow stage marks a flow ``spoofed`` when its
    source address was allocated to no one at the flow's time and neither was its destination (the provider is no
    transit network), and attributes it by the exporter's ingress interface (``telemetry.interfaces``: the port a
    service's traffic enters on). BCP 38 / BCP 84 (RFC 2827, RFC 3704): a network must not emit such packets.
    Default: one such flow is enough (there is no benign reason), per ingress interface and window.
    False positives: an allocation missing from the inventory (the finding names the address; fix the inventory).
    """

    name = "spoofed_source"
    kind = "spoofed-source"
    keys = ("input_if",)
    sums: ClassVar[dict[str, str]] = {**SUMS, "sources": "sum"}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        window_seconds: int = Field(300, gt=0, description="Tumbling window.")
        min_flows: int = Field(1, gt=0, description="Flows with a forged source address.")

    def candidates(self, df: pl.DataFrame) -> pl.DataFrame:
        return df.filter(pl.col("spoofed"))

    def extra_aggregates(self) -> list[pl.Expr]:
        return [pl.struct(*ADDR_KEYS["src_addr"]).n_unique().cast(pl.Int64).alias("sources")]

    def crossed(self, agg: pl.DataFrame) -> pl.Expr:
        p = self.params
        assert isinstance(p, SpoofedSourceDetector.Params)
        return pl.col("flows") >= p.min_flows

    def describe(self, row: dict[str, Any]) -> tuple[str, str, float]:
        return (
            f"{row['flows']} flows from ~{row['sources']} source addresses allocated to no service left through "
            f"ingress interface {row['input_if']} (spoofed source)",
            f"spoofed:if{row['input_if']}",
            0.9,
        )
