"""CrawlDelayIgnoredDetector: request spacing below the host's declared Crawl-delay, sustained (clause 1.14)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.base import Detector
from abusedesk.detectors.crawls import RobotsFiles, crawl_finding, request_evidence, summaries
from abusedesk.domain.records import Event, Finding
from abusedesk.robots.matcher import RobotsTxt


class CrawlDelayIgnoredDetector(Detector):
    """Flags a client whose requests to one host come faster than the ``Crawl-delay`` that host's robots.txt
    declares for the client's group, sustained over a window: at least ``min_requests`` requests, the mean rate
    above one per delay, and at least ``min_fraction`` of the gaps shorter than the delay (a burst of a few quick
    requests in an otherwise slow crawl is not flagged). The finding carries the measured rate.

    For: clause 1.14 (obey the crawl-delay directive). Needs the host's robots.txt in the robots store.
    False positives: requests of several processes behind one address and agent are judged together (they are
    one crawler to the target).
    """

    name = "crawl_delay_ignored"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min_requests: int = Field(10, ge=3, description="Requests in a window before spacing is judged.")
        min_fraction: float = Field(0.5, gt=0, le=1, description="Share of gaps below the delay that is sustained.")
        tolerance: float = Field(0.9, gt=0, le=1, description="A gap counts as short below delay × tolerance.")

    files: RobotsFiles | None = None

    def bind(self, rt: Any) -> None:
        self.files = RobotsFiles(rt)

    def detect(self, batch: Sequence[Event] | Any, state: Any = None) -> list[Finding]:
        params = self.params
        assert isinstance(params, CrawlDelayIgnoredDetector.Params)
        out: list[Finding] = []
        cache: dict[str, tuple[RobotsTxt, str] | None] = {}
        for event, s in summaries(batch):
            if s["ua"] is None or s["requests"] < params.min_requests:
                continue
            robots = self.files.for_host(cache, s["host"]) if self.files else None
            if robots is None:
                continue
            parsed, fetched_at = robots
            delay = parsed.crawl_delay(s["ua"])
            if not delay:
                continue
            times = s["times"]
            gaps = [b - a for a, b in itertools.pairwise(times)]
            short = sum(1 for g in gaps if g < delay * params.tolerance)
            span = max(times[-1] - times[0], 1e-3)
            rate = (len(times) - 1) / span
            if not gaps or short / len(gaps) < params.min_fraction or rate <= 1.0 / delay:
                continue
            out.append(crawl_finding(
                self.policy, detector=self.name, kind="crawling", event=event, summary=s, what="crawl-delay",
                summary_text=(f"{s['client']} fetched {s['host']} at {rate:.2f} requests/s over {span:.0f} s; its "
                              f"robots.txt asks {s['ua']!r} for one per {delay:g} s"),
                evidence=[{"crawl_delay": delay, "rate_per_s": round(rate, 3),
                           "allowed_rate_per_s": round(1 / delay, 3), "requests": len(times), "short_gaps": short,
                           "gaps": len(gaps),
                           "robots_fetched_at": fetched_at}, *request_evidence(s["paths"], 10)],
            ))  # fmt: skip
        return out
