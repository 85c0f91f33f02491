"""SmtpBurstDetector: outbound SMTP to many distinct mail servers (flow telemetry)."""

from __future__ import annotations

from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.flowbase import FlowDetector, tcp_attempt


class SmtpBurstDetector(FlowDetector):
    """Flags a service that opens SMTP connections (25, 465, 587) to many distinct servers within a window.

    For: clause 1.11 (unsolicited bulk mail), kind ``spam``. A customer VM that delivers its own mail talks to
    a handful of MX hosts (or one relay); a spam run talks to hundreds. Default: 20 distinct servers in 600 s —
    our own default (no public ruleset gives one for flows); the corpus lab's benign host reached 1, its spam
    run 60 in 3 s.
    False positives: a customer running a legitimate mailing-list server directly to MX hosts; such customers
    should send through a relay or have the threshold raised for them.
    """

    name = "smtp_burst"
    kind = "spam"
    keys = ("src_addr",)
    distinct = "dst_addr"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        window_seconds: int = Field(600, gt=0, description="Tumbling window.")
        min_servers: int = Field(20, gt=1, description="Distinct mail servers contacted.")
        ports: list[int] = Field([25, 465, 587], description="SMTP ports.")

    def candidates(self, df: pl.DataFrame) -> pl.DataFrame:
        p = self.params
        assert isinstance(p, SmtpBurstDetector.Params)
        return df.filter(tcp_attempt() & pl.col("dst_port").is_in(p.ports))

    def crossed(self, agg: pl.DataFrame) -> pl.Expr:
        p = self.params
        assert isinstance(p, SmtpBurstDetector.Params)
        return pl.col("distinct") >= p.min_servers

    def describe(self, row: dict[str, Any]) -> tuple[str, str, float]:
        return (
            f"{row['src_addr']} opened SMTP connections to {row['distinct']} distinct servers "
            f"({row['flows']} connections) within {self.window_ms() // 1000} s",
            f"ip:{row['src_addr']}",
            0.8,
        )
