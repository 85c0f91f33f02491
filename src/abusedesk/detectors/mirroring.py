"""MirroringDetector: one client copying a site's pages and assets wholesale in a short time (clause 1.5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.base import Detector
from abusedesk.detectors.crawls import crawl_finding, request_evidence, summaries
from abusedesk.domain.records import Event, Finding


class MirroringDetector(Detector):
    """Flags a client that fetched at least ``min_pages`` distinct paths of one host in one window, nearly all
    successfully (``min_success`` of them 2xx/3xx), pages and assets alike: the shape of a site copy (wget -m,
    HTTrack). Without a site map we cannot know "most of a site"; the distinct-path count in one window is the
    proxy, and the evidence lists what was copied.

    For: clause 1.5 (mirroring a website). False positives: a search engine's legitimate deep crawl looks the
    same; a case is for an analyst to weigh with the agent and the robots verdicts beside it.
    """

    name = "mirroring"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min_pages: int = Field(500, ge=1, description="Distinct paths of one host in one window.")
        min_success: float = Field(0.8, gt=0, le=1, description="Share of those fetched with 2xx/3xx.")

    def detect(self, batch: Sequence[Event] | Any, state: Any = None) -> list[Finding]:
        params = self.params
        assert isinstance(params, MirroringDetector.Params)
        out: list[Finding] = []
        for event, s in summaries(batch):
            if s["paths_total"] < params.min_pages:
                continue
            ok = sum(1 for p in s["paths"] if 200 <= p[3] < 400) / max(1, len(s["paths"]))
            if ok < params.min_success:
                continue
            out.append(crawl_finding(
                self.policy, detector=self.name, kind="mirroring", event=event, summary=s, what="mirror",
                summary_text=(f"{s['client']} copied {s['paths_total']} distinct paths of {s['host']} in "
                              f"{s['last'] - s['first']:.0f} s"),
                evidence=[{"distinct_paths": s["paths_total"], "success_share": round(ok, 3),
                           "seconds": round(s["last"] - s["first"], 1)}, *request_evidence(s["paths"], 30)],
                confidence=0.7,
            ))  # fmt: skip
        return out
