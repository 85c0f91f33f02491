"""MirroringDetector: one client copying a site's pages and assets wholesale in a short time (clause 1.5)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from abusedesk.detectors.crawls import (
    WeblogDetector,
    WeblogParams,
    crawlers_of,
    frame,
    owner_of,
    request_evidence,
    slim,
)
from abusedesk.domain.records import Finding

#: distinct paths are counted by a 32-bit hash of the path: a window holds thousands, not billions, so two paths
#: sharing one is rare (under 1 in 10,000 for 2,000 paths) and costs one path of the count
_HASH = (pl.col("path").hash(seed=13) & 0xFFFFFFFF).cast(pl.UInt32)
_OK = (pl.col("status") >= 200) & (pl.col("status") < 400)


def _pack(values: np.ndarray) -> str:
    return base64.b64encode(np.asarray(values, np.uint32).tobytes()).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.uint32)


class MirroringDetector(WeblogDetector):
    """Flags a client that fetched at least ``min_pages`` distinct paths of one host in one window, nearly all
    successfully (``min_success`` of them 2xx/3xx), pages and assets alike: the shape of a site copy (wget -m,
    HTTrack). Without a site map we cannot know "most of a site"; the distinct-path count in one window is the
    proxy, and the evidence lists what was copied. A window's distinct paths are kept as 32-bit hashes (at most
    ``max_paths``), so its state is small however many requests it had.

    For: clause 1.5 (mirroring a website). False positives: a search engine's legitimate deep crawl looks the
    same; a case is for an analyst to weigh with the agent and the robots verdicts beside it.
    """

    name = "mirroring"
    keep_paths = 30

    class Params(WeblogParams):
        min_pages: int = Field(500, ge=1, description="Distinct paths of one host in one window.")
        min_success: float = Field(0.8, gt=0, le=1, description="Share of those fetched with 2xx/3xx.")
        max_paths: int = Field(2000, ge=10, description="Distinct paths (hashes) kept per window.")

    def detect(self, batch: Sequence[Any] | pl.DataFrame, state: Any = None) -> list[Finding]:
        params = self.params
        assert isinstance(params, MirroringDetector.Params)
        df = frame(batch)
        if df.height == 0:
            return []
        state = state if state is not None else self.new_state()
        owner = owner_of(df)
        out: list[Finding] = []
        per_path = [_HASH.unique().alias("hashes"), _HASH.filter(_OK).unique().alias("ok")]
        groups = self.windows_of(slim(df), crawlers_of(df), per_path=per_path)
        for group in groups:
            win = self.merge(state, group)
            if win["done"]:
                continue
            cap = max(params.max_paths, params.min_pages)
            seen = np.union1d(_unpack(win.get("hashes", "")), np.asarray(group["hashes"], np.uint32))[:cap]
            ok = np.union1d(_unpack(win.get("ok_hashes", "")), np.asarray(group["ok"], np.uint32))
            ok = np.intersect1d(ok, seen, assume_unique=True)
            win["hashes"], win["ok_hashes"] = _pack(seen), _pack(ok)
            if len(seen) < params.min_pages:
                continue
            share = len(ok) / len(seen)
            if share < params.min_success or not self.due(state, win):
                continue
            out.append(self.finding(
                kind="mirroring", what="mirror", win=win, owner=owner, confidence=0.7,
                summary=(f"{win['client']} copied {len(seen)} distinct paths of {win['host']} in "
                         f"{win['last'] - win['first']:.0f} s"),
                evidence=[{"distinct_paths": len(seen), "success_share": round(share, 3),
                           "seconds": round(win["last"] - win["first"], 1)}, *request_evidence(win["paths"], 30)],
            ))  # fmt: skip
            win["hashes"] = win["ok_hashes"] = ""  # reported: the window keeps nothing more
        return out
