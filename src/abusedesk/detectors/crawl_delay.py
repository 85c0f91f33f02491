"""CrawlDelayIgnoredDetector: request spacing below the host's declared Crawl-delay, sustained (clause 1.14)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl
from pydantic import Field

from abusedesk.detectors.crawls import (
    RobotsFiles,
    WeblogDetector,
    WeblogParams,
    crawler_key,
    crawlers_of,
    frame,
    owner_of,
    request_evidence,
    slim,
)
from abusedesk.domain.records import Finding


class CrawlDelayIgnoredDetector(WeblogDetector):
    """Flags a client whose requests to one host come faster than the ``Crawl-delay`` that host's robots.txt
    declares for the client's group, sustained over a window: at least ``min_requests`` requests, the mean rate
    above one per delay, and at least ``min_fraction`` of the gaps shorter than the delay (a burst of a few quick
    requests in an otherwise slow crawl is not flagged). The finding carries the measured rate.

    The gaps are computed in the batch with one sort and a shifted difference per crawler; the state keeps each
    crawler's last request time, so a gap across two log chunks (tail mode) counts too. The delay is looked up
    once per distinct (host, agent) of a batch.

    For: clause 1.14 (obey the crawl-delay directive). Needs the host's robots.txt in the robots store.
    False positives: requests of several processes behind one address and agent are judged together (they are
    one crawler to the target).
    """

    name = "crawl_delay_ignored"

    class Params(WeblogParams):
        min_requests: int = Field(10, ge=3, description="Requests in a window before spacing is judged.")
        min_fraction: float = Field(0.5, gt=0, le=1, description="Share of gaps below the delay that is sustained.")
        tolerance: float = Field(0.9, gt=0, le=1, description="A gap counts as short below delay × tolerance.")

    files: RobotsFiles | None = None

    def bind(self, rt: Any) -> None:
        self.files = RobotsFiles(rt)

    def new_state(self) -> dict[str, Any]:
        return {"windows": {}, "reported": {}, "last": {}}

    def detect(self, batch: Sequence[Any] | pl.DataFrame, state: Any = None) -> list[Finding]:
        params = self.params
        assert isinstance(params, CrawlDelayIgnoredDetector.Params)
        df = frame(batch)
        if df.height == 0 or self.files is None:
            return []
        state = state if state is not None else self.new_state()
        names = crawlers_of(df).filter(pl.col("ua").is_not_null())
        robots = self.files.for_hosts(names["host"].unique().to_list())
        delays = []
        last = state["last"]
        for crawler, client, ua, host in names.iter_rows():  # one lookup per crawler, not per request
            delay = robots[host][0].crawl_delay(ua) if host in robots else None
            if delay:
                prev = last.get(crawler_key(client, ua, host))
                delays.append((crawler, delay, robots[host][1], prev))
        if not delays:
            return []
        table = pl.DataFrame(delays, schema={"crawler": pl.Int64, "delay": pl.Float64, "fetched_at": pl.String,
                                             "prev_batch": pl.Float64}, orient="row")  # fmt: skip
        owner = owner_of(df)
        df = slim(df).join(table, on="crawler", how="inner")
        if df.height == 0:
            return []
        # the previous request of the same crawler: in this batch (sorted by crawler and time), else the state's
        df = df.sort("crawler", "time")
        same = pl.col("crawler") == pl.col("crawler").shift(1)
        df = df.with_columns(pl.when(same).then(pl.col("time").shift(1)).otherwise(pl.col("prev_batch")).alias("prev"))
        gap = pl.col("time") - pl.col("prev")
        groups = self.windows_of(df, names, extra=[
            gap.is_not_null().sum().alias("gaps"),
            (gap < pl.col("delay") * params.tolerance).sum().alias("short"),
            pl.col("delay").first(), pl.col("fetched_at").first(),
        ])  # fmt: skip
        ends = df.group_by("crawler").agg(pl.col("time").max()).join(names, on="crawler")
        for _, t, client, ua, host in ends.iter_rows():
            last[crawler_key(client, ua, host)] = t
        out: list[Finding] = []
        for group in groups:
            win = self.merge(state, group, sums=("gaps", "short"))
            win["delay"], win["fetched_at"] = group["delay"], group["fetched_at"]
            if win["done"] or win["requests"] < params.min_requests or not win["gaps"]:
                continue
            delay = float(win["delay"])
            span = max(win["last"] - win["first"], 1e-3)
            rate = (win["requests"] - 1) / span
            if win["short"] / win["gaps"] < params.min_fraction or rate <= 1.0 / delay or not self.due(state, win):
                continue
            out.append(self.finding(
                kind="crawling", what="crawl-delay", win=win, owner=owner,
                summary=(f"{win['client']} fetched {win['host']} at {rate:.2f} requests/s over {span:.0f} s; its "
                         f"robots.txt asks {win['ua']!r} for one per {delay:g} s"),
                evidence=[{"crawl_delay": delay, "rate_per_s": round(rate, 3),
                           "allowed_rate_per_s": round(1 / delay, 3), "requests": win["requests"],
                           "short_gaps": win["short"], "gaps": win["gaps"], "robots_fetched_at": win["fetched_at"]},
                          *request_evidence(win["paths"], 10)],
            ))  # fmt: skip
        return out

    def flush(self, state: Any, watermark: datetime) -> list[Finding]:
        if isinstance(state, dict):
            horizon = watermark.timestamp() - 2 * self.window()
            for k in [k for k, t in state["last"].items() if t < horizon]:
                del state["last"][k]  # an idle crawler's next request starts a new spacing
        return super().flush(state, watermark)
