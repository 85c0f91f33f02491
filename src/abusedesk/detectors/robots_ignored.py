"""RobotsIgnoredDetector: requests a host's robots.txt disallows for that client's token, or a crawl without
fetching robots.txt first (clause 1.14)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from abusedesk.detectors.crawls import (
    ROBOTS_PATH,
    RobotsFiles,
    WeblogDetector,
    WeblogParams,
    crawler_key,
    crawlers_of,
    frame,
    owner_of,
    request_evidence,
    slim,
    utc,
)
from abusedesk.domain.records import Finding

_VERDICT = {"state": pl.String, "rule": pl.String, "rule_line": pl.Int64, "group": pl.String,
            "fetched_at": pl.String}  # fmt: skip


class RobotsIgnoredDetector(WeblogDetector):
    """Flags (1) requests for paths the target host's robots.txt disallows for the client's product token — only
    certain verdicts of our RFC 9309 matcher count, never ambiguous ones — and (2) a crawl (``min_requests`` to one
    host) that did not fetch ``/robots.txt`` before it went on from the first ``grace_requests`` requests (wget
    fetches the URL it was given, then robots.txt, then follows links: that is obeying).

    Each distinct (host, agent, path) of a batch is matched once, however often it was requested. For: clause 1.14
    (obey the robots exclusion standard). (1) needs the host's robots.txt in the robots store (``abusedesk robots
    fetch|import``); without it only (2) is judged. False positives: a robots.txt changed after the crawl (the
    store keeps when it was fetched; the evidence names rule, line and fetch time); a crawler that fetched
    robots.txt over another path than the proxy (an earlier fetch outside the log).
    """

    name = "robots_ignored"
    holds_events = False
    keep_paths = 50

    class Params(WeblogParams):
        min_disallowed: int = Field(1, ge=1, description="Disallowed paths in a window that make a finding.")
        min_requests: int = Field(10, ge=1, description="Requests to one host that make a crawl (for (2)).")
        grace_requests: int = Field(
            1, ge=0, description="Requests before robots.txt that are not yet a crawl (the URL the operator named)."
        )
        forget_after_hours: float = Field(24.0, gt=0, description="A client idle this long starts over.")

    files: RobotsFiles | None = None

    def bind(self, rt: Any) -> None:
        self.files = RobotsFiles(rt)

    def new_state(self) -> dict[str, Any]:
        return {"windows": {}, "reported": {}, "crawlers": {}}

    def detect(self, batch: Sequence[Any] | pl.DataFrame, state: Any = None) -> list[Finding]:
        params = self.params
        assert isinstance(params, RobotsIgnoredDetector.Params)
        df = frame(batch)
        if df.height == 0:
            return []
        state = state if state is not None else self.new_state()
        owner = owner_of(df)
        names = crawlers_of(df)
        df = slim(df).with_columns(pl.col("path").str.contains(ROBOTS_PATH).alias("is_robots"))
        out = self._unread(df, names, state, owner)
        if self.files is not None:
            named = names.filter(pl.col("ua").is_not_null())
            out += self._disallowed(df.filter(~pl.col("is_robots")), named, state, owner)
        return out

    def _unread(self, df: pl.DataFrame, names: pl.DataFrame, state: dict[str, Any],
                owner: dict[str, Any]) -> list[Finding]:  # fmt: skip
        """(2): per crawler, when robots.txt was first fetched against when its crawl went on."""
        params = self.params
        assert isinstance(params, RobotsIgnoredDetector.Params)
        g = params.grace_requests
        other = ~pl.col("is_robots")
        per = df.sort("time").group_by("crawler").agg(
            pl.col("time").filter(pl.col("is_robots")).min().alias("robots"),
            pl.col("time").filter(other).head(g + 1).alias("early"),
            other.sum().alias("requests"), pl.col("time").max().alias("last"),
            *[pl.col(c).filter(other).head(10).alias(f"s_{c}") for c in ("path", "time", "status", "line")],
        ).join(names, on="crawler")  # fmt: skip
        out: list[Finding] = []
        crawlers = state["crawlers"]
        for row in per.iter_rows(named=True):
            key = crawler_key(row["client"], row["ua"], row["host"])
            seen = crawlers.setdefault(key, {"early": [], "robots": None, "flagged": False, "requests": 0,
                                             "last": row["last"], "sample": []})  # fmt: skip
            seen["last"] = max(seen["last"], row["last"])
            if row["robots"] is not None:
                seen["robots"] = row["robots"] if seen["robots"] is None else min(seen["robots"], row["robots"])
            if seen["flagged"]:
                continue
            seen["requests"] += row["requests"]
            seen["early"] = sorted(seen["early"] + row["early"])[: g + 1]
            sample = seen["sample"] + [list(r) for r in zip(row["s_path"], row["s_time"], row["s_status"],
                                                            row["s_line"], strict=True)]  # fmt: skip
            seen["sample"] = sorted(sample, key=lambda r: r[1])[:10]
            started = seen["early"][g] if len(seen["early"]) > g else None
            if started is None or seen["requests"] < params.min_requests:
                continue
            if seen["robots"] is not None and seen["robots"] <= started:
                continue
            seen["flagged"] = True
            win = {"client": row["client"], "ua": row["ua"], "host": row["host"], "first": seen["early"][0],
                   "last": seen["last"]}  # fmt: skip
            paths = [[p, 1, t, s, n] for p, t, s, n in seen["sample"]]
            out.append(self.finding(
                kind="crawling", what="robots-unread", win=win, owner=owner,
                summary=(f"{row['client']} crawled {row['host']} ({seen['requests']} requests) without fetching "
                         "/robots.txt first"),
                evidence=[{"reason": "no /robots.txt before the crawl went on",
                           "robots_fetched_at": None if seen["robots"] is None else utc(seen["robots"]).isoformat()},
                          *request_evidence(paths, 10)],
            ))  # fmt: skip
            seen["sample"] = []
        return out

    def _disallowed(self, df: pl.DataFrame, names: pl.DataFrame, state: dict[str, Any],
                    owner: dict[str, Any]) -> list[Finding]:  # fmt: skip
        """(1): each distinct (host, agent, path) matched once; the disallowed requests counted per window."""
        params = self.params
        assert isinstance(params, RobotsIgnoredDetector.Params)
        assert self.files is not None
        if df.height == 0:
            return []
        robots = self.files.for_hosts(names["host"].unique().to_list())
        if not robots:
            return []
        names = names.filter(pl.col("host").is_in(list(robots)))
        # each distinct (host, agent, path) once: the paths of one robots.txt and agent go to the matcher together
        pairs = names.select("host", "ua").unique().with_row_index("hu")
        names = names.join(pairs, on=["host", "ua"])
        distinct = (df.select("crawler", "pid", "path").unique(["crawler", "pid"])
                    .join(names.select("crawler", "hu"), on="crawler").unique(["hu", "pid"]).sort("hu"))  # fmt: skip
        hu = distinct["hu"].to_numpy()
        bounds = np.flatnonzero(np.diff(hu)) + 1
        paths, pids = distinct["path"].to_list(), distinct["pid"].to_list()
        verdicts: list[tuple[Any, ...]] = []
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(hu)], strict=True):
            host, ua = pairs.row(int(hu[lo]))[1:]
            parsed, fetched_at = robots[host]
            for i, v in parsed.disallowed(ua, paths[lo:hi]):
                verdicts.append((int(hu[lo]), pids[lo + i], v.state, v.rule, v.line, v.group, fetched_at))
        if not verdicts:
            return []
        table = pl.DataFrame(verdicts, schema={"hu": pl.UInt32, "pid": pl.Int64, **_VERDICT}, orient="row")
        # the verdicts by (crawler, path id): an integer join back onto the requests
        table = names.select("crawler", "hu").join(table, on="hu").select("crawler", "pid", *_VERDICT)
        bad = df.join(table, on=["crawler", "pid"], how="inner")
        out: list[Finding] = []
        cols = ["rule", "rule_line", "group", "fetched_at"]
        for group in self.windows_of(bad, names, path_cols=cols):
            win = self.merge(state, group)
            if win["done"] or win["distinct"] < params.min_disallowed or not self.due(state, win):
                continue
            evidence = [{**item, "rule": p[5], "line": int(p[6]), "group": p[7], "robots_fetched_at": p[8]}
                        for item, p in zip(request_evidence(win["paths"], self.keep_paths), win["paths"],
                                           strict=False)]  # fmt: skip
            out.append(self.finding(
                kind="crawling", what="robots-disallowed", win=win, owner=owner, confidence=0.95,
                summary=(f"{win['client']} requested {win['distinct']} paths of {win['host']} that its robots.txt "
                         f"disallows for {win['ua']!r}"),
                evidence=evidence,
            ))  # fmt: skip
        return out

    def flush(self, state: Any, watermark: datetime) -> list[Finding]:
        if isinstance(state, dict):
            horizon = watermark.timestamp() - self.params.forget_after_hours * 3600  # type: ignore[attr-defined]
            for key in [k for k, v in state["crawlers"].items() if v["last"] < horizon]:
                del state["crawlers"][key]
        return super().flush(state, watermark)
