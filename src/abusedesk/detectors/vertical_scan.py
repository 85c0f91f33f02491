"""VerticalScanDetector: one source probing many ports of one host (flow telemetry)."""

from __future__ import annotations

from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.flowbase import FlowDetector, failed_tcp


class VerticalScanDetector(FlowDetector):
    """Flags a service whose address makes failed TCP connections to many ports of one host within a window.

    For: clause 1.8 (port scanning), kind ``scan``. Counts distinct destination ports of failed connection attempts
    (SYN without ACK from the initiator) per (source, destination) in a tumbling window. Default: 15 ports in
    300 s — Zeek's scan policy (``scan.zeek``: port-scan threshold 15 per (scanner, victim), 5 min, failed
    connections only).
    False positives: a customer's own authorised vulnerability scan (record it as consent, kind ``security``);
    a client retrying against a host whose services are down touches few ports and stays below the threshold.
    """

    name = "vertical_scan"
    kind = "scan"
    keys = ("src_addr", "dst_addr")
    distinct = "dst_port"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        window_seconds: int = Field(300, gt=0, description="Tumbling window (Zeek scan policy: 5 min).")
        min_ports: int = Field(15, gt=1, description="Distinct ports of one host (Zeek: 15).")

    def candidates(self, df: pl.DataFrame) -> pl.DataFrame:
        return df.filter(failed_tcp(df))

    def crossed(self, agg: pl.DataFrame) -> pl.Expr:
        p = self.params
        assert isinstance(p, VerticalScanDetector.Params)
        return pl.col("distinct") >= p.min_ports

    def describe(self, row: dict[str, Any]) -> tuple[str, str, float]:
        return (
            f"{row['src_addr']} made failed TCP connections to {row['distinct']} ports of {row['dst_addr']} "
            f"within {self.window_ms() // 1000} s (vertical port scan)",
            f"ip:{row['src_addr']}",
            0.9,
        )
