"""What the clause 1.14 / 1.5 detectors share: the request frame, windows per crawler as explicit state, findings.

A weblog detector's batch is one partition of the weblog stage (``abusedesk.weblog.stage``): one service's
requests of one log chunk as a Polars frame — ``time`` (epoch s), ``client``, ``ua`` (null when the log recorded
no agent), ``host``, ``scheme``, ``method``, ``path``, ``status``, ``line`` (the line number in the raw input),
``raw_id``, ``service_id``, ``project_id``, ``customer_id``. A crawler is a (client, user agent, target host).

Each detector reduces the batch with one Polars group-by to one row per (crawler, window) — the request count,
first and last time, and its first distinct paths (bounded) — and only those few rows meet Python: they are
merged into the detector's state, a JSON dict per partition that the detector runner checkpoints with the stage's
outputs. Windows are tumbling (``window_seconds``, aligned to the epoch); a crawler is reported when a window
first crosses the threshold, and again at most once per ``repeat_seconds`` while it goes on (so a case sees the
crawl continue after a notice, without a finding per window). ``flush`` drops closed windows. The state is bounded
by the crawlers active in the open windows and the path caps, not by the log.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.base import ClauseMap, Detector
from abusedesk.domain.records import Finding
from abusedesk.robots.matcher import RobotsTxt

#: the clause each kind of these detectors judges
CLAUSES = {"crawling": "1.14", "mirroring": "1.5"}
KEYS = ["client", "ua", "host"]
ROBOTS_PATH = r"^/robots\.txt(?:\?|$)"


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def agent_label(ua: str | None) -> str:
    return "(not logged)" if ua is None else ua or "(empty)"


def frame(batch: Sequence[Any] | pl.DataFrame) -> pl.DataFrame:
    """The batch as a request frame with its ids (``with_ids``); an event list (the detect stage's) has none of
    our requests."""
    return with_ids(batch) if isinstance(batch, pl.DataFrame) else pl.DataFrame()


def with_ids(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with ``crawler`` (one integer per (client, agent, host)) and ``pid`` (one per path): exact codes
    from Arrow's dictionary encoding, so the detectors' group-bys run on integers, not on three strings."""
    if df.height == 0 or ("crawler" in df.columns and "pid" in df.columns):
        return df
    table = df.select("client", "ua", "host", "path").to_arrow()
    codes = []
    for name in ("client", "ua", "host", "path"):
        enc = pc.dictionary_encode(table[name]).combine_chunks()
        idx = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        if name == "ua":  # no agent logged (null) is its own agent
            idx = np.where(enc.indices.is_null().to_numpy(zero_copy_only=False), len(enc.dictionary), idx)
        codes.append((idx, len(enc.dictionary) + 1))
    (c, _), (u, nu), (h, nh), (p, _) = codes
    crawler = (c * nu + u) * nh + h  # exact while the distinct counts' product fits (2**63: always, in a chunk)
    return df.with_columns(pl.Series("crawler", crawler, pl.Int64), pl.Series("pid", p, pl.Int64))


def slim(df: pl.DataFrame, *more: str) -> pl.DataFrame:
    """The columns the group-bys need (integers, times, the path): a filter copies no agent or client strings."""
    return df.select("crawler", "pid", "time", "status", "line", "path", *more)


def crawlers_of(df: pl.DataFrame) -> pl.DataFrame:
    """One row per crawler of ``df``: ``crawler``, ``client``, ``ua``, ``host`` (few rows: the names live here)."""
    return df.group_by("crawler").agg(pl.col("client").first(), pl.col("ua").first(), pl.col("host").first())


def crawler_key(client: str, ua: str | None, host: str) -> str:
    return json.dumps([client, ua, host])


class WeblogParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_seconds: int = Field(600, ge=10, description="The window a crawl's requests are counted in.")
    repeat_seconds: int = Field(
        3600, ge=0, description="A crawler reported again at most this often while it goes on (one case either way)."
    )


class WeblogDetector(Detector):
    """Base of the crawler detectors: windows per crawler in a JSON state, one group-by per batch."""

    consumes: ClassVar[str] = "weblog"
    #: distinct paths kept per (crawler, window): enough for the threshold and the evidence
    keep_paths: ClassVar[int] = 10

    def new_state(self) -> dict[str, Any]:
        return {"windows": {}, "reported": {}}

    def window(self) -> int:
        return int(getattr(self.params, "window_seconds", 600))

    # ------------------------------------------------------------------ reduce a batch

    def windows_of(self, df: pl.DataFrame, names: pl.DataFrame, extra: Sequence[pl.Expr] = (),
                   keep: int | None = None, path_cols: Sequence[str] = (),
                   per_path: Sequence[pl.Expr] = ()) -> list[dict[str, Any]]:  # fmt: skip
        """One dict per (crawler, window) of ``df``: ``requests``, ``first``, ``last``, ``distinct`` (distinct
        paths in the batch) and ``paths`` (the first ``keep`` distinct paths by time as [path, requests, first,
        status, line, *path_cols]), with the ``extra`` aggregates (over the requests) and the ``per_path`` ones
        (over the window's distinct paths: ``path``, ``n``, ``first``, ``last``, ``status``, ``line``). The
        group-bys run on the integer ids (``with_ids``); the crawlers' ``names`` (``crawlers_of``) are joined to the
        few result rows."""
        if df.height == 0:
            return []
        keep = self.keep_paths if keep is None else keep
        w = self.window()
        df = df.with_columns(((pl.col("time") // w) * w).cast(pl.Int64).alias("w"))
        paths = df.group_by(["crawler", "w", "pid"]).agg(
            pl.len().alias("n"), pl.col("time").min().alias("first"), pl.col("time").max().alias("last"),
            pl.col("status").max(), pl.col("line").min(), pl.col("path").first(),
            *[pl.col(c).first() for c in path_cols],
        )  # fmt: skip
        listed = ["path", "n", "first", "status", "line", *path_cols]
        groups = paths.sort("first").group_by(["crawler", "w"]).agg(
            pl.col("n").sum().alias("requests"), pl.col("first").min(), pl.col("last").max(),
            pl.len().alias("distinct"), *[pl.col(c).head(keep).alias(f"p_{c}") for c in listed], *per_path,
        )  # fmt: skip
        if extra:
            groups = groups.join(df.group_by(["crawler", "w"]).agg(*extra), on=["crawler", "w"], how="left")
        out = groups.join(names, on="crawler", how="left").to_dicts()
        for g in out:  # the path rows are zipped only for a window that keeps them (``merge``)
            g["paths"] = [g.pop(f"p_{c}") for c in listed]
        return out

    def merge(self, state: dict[str, Any], group: dict[str, Any], sums: Sequence[str] = (),
              keep: int | None = None) -> dict[str, Any]:  # fmt: skip
        """``group`` (a row of ``windows_of``) added to its window in ``state``; the merged window."""
        keep = self.keep_paths if keep is None else keep
        wkey = json.dumps([group["client"], group["ua"], group["host"], group["w"]])
        win: dict[str, Any] | None = state["windows"].get(wkey)
        if win is None:
            win = {"client": group["client"], "ua": group["ua"], "host": group["host"], "w": group["w"],
                   "requests": 0, "first": group["first"], "last": group["last"], "distinct": 0, "paths": [],
                   "done": self.quiet(state, group), **{s: 0 for s in sums}}  # fmt: skip
            state["windows"][wkey] = win
        win["requests"] += group["requests"]
        win["first"] = min(win["first"], group["first"])
        win["last"] = max(win["last"], group["last"])
        for s in sums:
            win[s] += group.get(s) or 0
        if win["done"]:  # reported: nothing more is kept for this window
            return win
        known = {p[0]: p for p in win["paths"]}
        new = 0
        for p in map(list, zip(*group["paths"], strict=True)):
            if p[0] in known:
                old = known[p[0]]
                old[1] += p[1]
                old[2] = min(old[2], p[2])
            else:
                known[p[0]] = p
                new += 1
        # distinct paths: exact below ``keep`` (the thresholds' range), a lower bound above
        win["distinct"] = max(win["distinct"] + new, group["distinct"], len(known))
        win["paths"] = sorted(known.values(), key=lambda p: p[2])[:keep]
        return win

    def quiet(self, state: dict[str, Any], win: dict[str, Any]) -> bool:
        """Whether ``win``'s crawler was reported less than ``repeat_seconds`` before this window: then the
        window cannot make a finding and keeps nothing (it is done from the start)."""
        last = state["reported"].get(crawler_key(win["client"], win["ua"], win["host"]))
        return last is not None and win["w"] < last + max(int(getattr(self.params, "repeat_seconds", 3600)), 1)

    def due(self, state: dict[str, Any], win: dict[str, Any]) -> bool:
        """Whether a window that crossed is a new finding: its crawler was not reported within ``repeat_seconds``.
        Either way the window is done (it keeps no more paths)."""
        win["done"] = True
        if self.quiet(state, win):
            return False
        state["reported"][crawler_key(win["client"], win["ua"], win["host"])] = win["w"]
        return True

    def flush(self, state: Any, watermark: datetime) -> list[Finding]:
        if not isinstance(state, dict):
            return []
        now = watermark.timestamp()
        w = self.window()
        for k in [k for k, v in state["windows"].items() if v["w"] + w < now - w]:
            del state["windows"][k]  # closed a window ago: a late line may still land in the window before
        repeat = int(getattr(self.params, "repeat_seconds", 3600))
        for k in [k for k, at in state["reported"].items() if at + repeat + w < now]:
            del state["reported"][k]
        return []

    # ------------------------------------------------------------------ findings

    def finding(self, *, kind: str, what: str, win: dict[str, Any], owner: dict[str, Any], summary: str,
                evidence: list[dict[str, Any]], confidence: float = 0.9) -> Finding:  # fmt: skip
        return crawl_finding(self.policy, detector=self.name, kind=kind, what=what, win=win, owner=owner,
                             summary_text=summary, evidence=evidence, confidence=confidence)  # fmt: skip


def owner_of(df: pl.DataFrame) -> dict[str, Any]:
    """The partition's service, project, customer and raw input (one service a partition)."""
    row = df.select("service_id", "project_id", "customer_id", "raw_id").row(0, named=True)
    return {k: (None if v is None else str(v)) for k, v in row.items()}


def crawl_finding(policy: ClauseMap, *, detector: str, kind: str, what: str, win: dict[str, Any],
                  owner: pl.DataFrame | dict[str, Any], summary_text: str, evidence: list[dict[str, Any]],
                  confidence: float = 0.9) -> Finding:  # fmt: skip
    """A finding about ``win``'s crawler, citing the clause these detectors judge (1.14 for ``crawling``, 1.5 for
    ``mirroring``) when the policy maps ``kind`` to it, else every clause the policy maps ``kind`` to (the shipped
    policy also lists crawling under 1.8, which is about crawling without permission, not about how)."""
    mapped = policy.clauses_for_kind(kind)
    own = CLAUSES.get(kind)
    ids = owner_of(owner) if isinstance(owner, pl.DataFrame) else owner
    return Finding.create(
        detector=detector,
        kind=kind,
        clauses=(own,) if own in mapped else mapped,
        group_key=f"{what}:{win['client']}|{agent_label(win['ua'])}|{win['host']}",
        window_start=utc(win["first"]),
        window_end=utc(win["last"]),
        severity=policy.severity_for_kind(kind),
        confidence=confidence,
        summary=summary_text,
        subject_ip=win["client"],
        customer_id=ids["customer_id"],
        project_id=ids["project_id"],
        service_id=ids["service_id"],
        evidence=tuple(
            {"client": win["client"], "user_agent": win["ua"], "host": win["host"], "raw_id": ids["raw_id"], **item}
            for item in evidence
        ),
    )


def request_evidence(paths: list[list[Any]], limit: int = 20) -> list[dict[str, Any]]:
    """The first ``limit`` kept paths of a window as evidence items, each naming its first line in the raw input
    (``log_line``; ``raw_id`` names the input)."""
    return [{"path": p[0], "requests": p[1], "first_at": utc(p[2]).isoformat(), "status": p[3], "log_line": p[4]}
            for p in paths[:limit]]  # fmt: skip


class RobotsFiles:
    """The robots store as the detectors read it: a host's newest robots.txt, parsed once and kept while its
    record is the newest (a new fetch or import is a new record)."""

    def __init__(self, rt: Any) -> None:
        from abusedesk.robots.store import RobotsStore

        self.rt = rt
        self.store = RobotsStore(rt)
        self._parsed: dict[tuple[str, str], RobotsTxt] = {}

    def for_hosts(self, hosts: Sequence[str]) -> dict[str, tuple[RobotsTxt, str]]:
        """host → (parsed robots.txt, fetch time) for the hosts of ``hosts`` the store has a robots.txt of."""
        out: dict[str, tuple[RobotsTxt, str]] = {}
        if not hosts:
            return out
        with self.rt.sessions() as s:
            for host in hosts:
                record = self.store.latest(s, host)
                if record is None:
                    continue
                at = record.fetched_at.isoformat()
                parsed = self._parsed.get((host, at))
                if parsed is None:
                    if len(self._parsed) > 10_000:  # bounded: the hosts of a busy proxy's recent logs
                        self._parsed.clear()
                    parsed = record.parsed()
                    self._parsed[(host, at)] = parsed
                out[host] = (parsed, at)
        return out
