"""BruteforceDetector: many short login sessions to SSH, RDP or a database port of one host (flow telemetry)."""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.flowbase import SUMS, FlowDetector, tcp_attempt


class BruteforceRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ports: list[int]
    count: int = Field(gt=1)
    seconds: int = Field(gt=0)
    service: str


DEFAULT_RULES = [
    # Suricata ET SCAN "Potential SSH Scan": threshold type both, track by_src, count 5, seconds 120
    BruteforceRule(ports=[22], count=5, seconds=120, service="SSH"),
    # Suricata ET SCAN "Behavioral Unusual Port 3389 traffic Potential Scan": count 20, seconds 360
    BruteforceRule(ports=[3389], count=20, seconds=360, service="RDP"),
    # databases: our own default, between the two (no ET rule counts them)
    BruteforceRule(ports=[3306, 5432, 1433, 1521, 27017, 6379], count=10, seconds=120, service="database"),
]


class BruteforceDetector(FlowDetector):
    """Flags a service opening many TCP sessions to a login port (SSH, RDP, databases) of one host.

    For: clause 1.7 (unauthorised access attempts), kind ``brute-force``. Each login attempt of a brute-force
    tool is a new TCP connection (a new source port: a new flow), so the count of connection attempts per
    (source, target, port) in the rule's window is the signal. Defaults from Suricata's ET rules: SSH 5 in 120 s,
    RDP 20 in 360 s; databases 10 in 120 s (ours).
    False positives: automation that opens a new SSH session per command against the customer's *own* hosts
    outside the provider (use connection multiplexing, or consent); monitoring that checks a port every few seconds.
    """

    name = "bruteforce"
    kind = "brute-force"
    keys = ("src_addr", "dst_addr", "dst_port")
    sums: ClassVar[dict[str, str]] = SUMS

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        rules: list[BruteforceRule] = Field(default_factory=lambda: list(DEFAULT_RULES),
                                            description="Ports, count, seconds per login service.")  # fmt: skip

    def _rules(self) -> list[BruteforceRule]:
        p = self.params
        assert isinstance(p, BruteforceDetector.Params)
        return p.rules

    def window_ms(self) -> int:
        return max(r.seconds for r in self._rules()) * 1000

    def _by_port(self, field: str) -> pl.Expr:
        expr: pl.Expr = pl.lit(None, pl.Int64)
        for r in reversed(self._rules()):
            expr = pl.when(pl.col("dst_port").is_in(r.ports)).then(pl.lit(getattr(r, field))).otherwise(expr)
        return expr

    def window_start(self) -> pl.Expr:
        w = self._by_port("seconds") * 1000
        return (pl.col("ts") // w) * w

    def candidates(self, df: pl.DataFrame) -> pl.DataFrame:
        ports = [p for r in self._rules() for p in r.ports]
        return df.filter(tcp_attempt() & pl.col("dst_port").is_in(ports))

    def crossed(self, agg: pl.DataFrame) -> pl.Expr:
        return pl.col("flows") >= self._by_port("count")

    def describe(self, row: dict[str, Any]) -> tuple[str, str, float]:
        rule = next(r for r in self._rules() if row["dst_port"] in r.ports)
        return (
            f"{row['src_addr']} opened {row['flows']} {rule.service} sessions to {row['dst_addr']}:{row['dst_port']} "
            f"within {rule.seconds} s (brute force)",
            f"ip:{row['src_addr']}",
            0.8,
        )
