"""HorizontalScanDetector: one source probing one port across many hosts (flow telemetry)."""

from __future__ import annotations

from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.flowbase import FlowDetector, failed_tcp


class HorizontalScanDetector(FlowDetector):
    """Flags a service whose address makes failed TCP connections to one port on many hosts within a window.

    For: clause 1.8 (scanning networks), kind ``scan``. Counts distinct destination hosts of failed connection
    attempts (SYN without ACK) per (source, destination port) in a tumbling window. Default: 25 hosts in 300 s —
    Zeek's scan policy (address-scan threshold 25 per (scanner, port), 5 min, failed connections only).
    False positives: a monitoring service probing its own fleet (give it consent, kind ``security``); a mail
    server whose deliveries fail is not counted (port 25 deliveries complete the handshake), but a crawler
    hitting many dead hosts on 80/443 can be — the threshold counts *failed* attempts only.
    """

    name = "horizontal_scan"
    kind = "scan"
    keys = ("src_addr", "dst_port")
    distinct = "dst_addr"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        window_seconds: int = Field(300, gt=0, description="Tumbling window (Zeek scan policy: 5 min).")
        min_hosts: int = Field(25, gt=1, description="Distinct hosts on one port (Zeek: 25).")

    def candidates(self, df: pl.DataFrame) -> pl.DataFrame:
        return df.filter(failed_tcp(df))

    def crossed(self, agg: pl.DataFrame) -> pl.Expr:
        p = self.params
        assert isinstance(p, HorizontalScanDetector.Params)
        return pl.col("distinct") >= p.min_hosts

    def describe(self, row: dict[str, Any]) -> tuple[str, str, float]:
        return (
            f"{row['src_addr']} made failed TCP connections to {row['distinct']} hosts on port {row['dst_port']} "
            f"within {self.window_ms() // 1000} s (horizontal scan)",
            f"ip:{row['src_addr']}",
            0.9,
        )
