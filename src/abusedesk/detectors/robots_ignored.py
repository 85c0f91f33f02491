"""RobotsIgnoredDetector: requests a host's robots.txt disallows for that client's token, or a crawl without
fetching robots.txt first (clause 1.14)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.base import Detector
from abusedesk.detectors.crawls import RobotsFiles, crawl_finding, request_evidence, summaries, utc
from abusedesk.domain.records import Event, Finding
from abusedesk.robots.matcher import RobotsTxt


class RobotsIgnoredDetector(Detector):
    """Flags (1) requests for paths the target host's robots.txt disallows for the client's product token — only
    certain verdicts of our RFC 9309 matcher count, never ambiguous ones — and (2) a crawl (``min_requests`` to one
    host) that did not fetch ``/robots.txt`` before it went on from the first ``grace_requests`` requests (wget
    fetches the URL it was given, then robots.txt, then follows links: that is obeying).

    For: clause 1.14 (obey the robots exclusion standard). (1) needs the host's robots.txt in the robots store
    (``abusedesk robots fetch|import``); without it only (2) is judged. False positives: a robots.txt changed after
    the crawl (the store keeps when it was fetched; the evidence names rule, line and fetch time); a crawler that
    fetched robots.txt over another path than the proxy (an earlier fetch outside the log).
    """

    name = "robots_ignored"
    holds_events = False  # its state remembers robots.txt fetches; every finding is made when its event comes

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min_disallowed: int = Field(1, ge=1, description="Disallowed paths in a window that make a finding.")
        min_requests: int = Field(10, ge=1, description="Requests to one host that make a crawl (for (2)).")
        grace_requests: int = Field(
            1, ge=0, description="Requests before robots.txt that are not yet a crawl (the URL the operator named)."
        )
        forget_after_hours: float = Field(24.0, gt=0, description="A client idle this long starts over.")

    files: RobotsFiles | None = None

    def bind(self, rt: Any) -> None:
        self.files = RobotsFiles(rt)

    def new_state(self) -> Any:
        return {}

    def detect(self, batch: Sequence[Event] | Any, state: Any = None) -> list[Finding]:
        params = self.params
        assert isinstance(params, RobotsIgnoredDetector.Params)
        state = state if state is not None else {}
        out: list[Finding] = []
        cache: dict[str, tuple[RobotsTxt, str] | None] = {}
        for event, s in summaries(batch):
            key = f"{s['client']}|{s['ua']}|{s['host']}"
            seen = state.setdefault(key, {"early": [], "robots": None, "flagged": False, "last": s["last"]})
            seen["last"] = max(seen["last"], s["last"])
            if s["robots"]:
                first_robots = min(s["robots"])
                seen["robots"] = first_robots if seen["robots"] is None else min(seen["robots"], first_robots)
            others = [p for p in s["paths"] if not p[0].startswith("/robots.txt")]
            seen["early"] = sorted(seen["early"] + [p[2] for p in others])[: params.grace_requests + 1]
            crawl_started = seen["early"][params.grace_requests] if len(seen["early"]) > params.grace_requests else None
            if (not seen["flagged"] and crawl_started is not None and sum(p[1] for p in others) >= params.min_requests
                    and (seen["robots"] is None or seen["robots"] > crawl_started)):  # fmt: skip
                seen["flagged"] = True
                out.append(crawl_finding(
                    self.policy, detector=self.name, kind="crawling", event=event, summary=s, what="robots-unread",
                    summary_text=(f"{s['client']} crawled {s['host']} ({s['requests']} requests) without fetching "
                                  "/robots.txt first"),
                    evidence=[{"reason": "no /robots.txt before the crawl went on",
                               "robots_fetched_at": None if seen["robots"] is None
                               else utc(seen["robots"]).isoformat()}, *request_evidence(others, 10)],
                ))  # fmt: skip
            robots = self.files.for_host(cache, s["host"]) if s["ua"] is not None and self.files else None
            if robots is None:
                continue
            parsed, fetched_at = robots
            bad = []
            for path, count, first, status in others:
                verdict = parsed.check(s["ua"], path)
                if verdict.state == "disallowed":
                    bad.append({"path": path, "requests": count, "first_at": utc(first).isoformat(), "status": status,
                                "rule": verdict.rule, "line": verdict.line, "group": verdict.group,
                                "robots_fetched_at": fetched_at})  # fmt: skip
            if len(bad) >= params.min_disallowed:
                out.append(crawl_finding(
                    self.policy, detector=self.name, kind="crawling", event=event, summary=s, what="robots-disallowed",
                    summary_text=(f"{s['client']} requested {len(bad)} paths of {s['host']} that its robots.txt "
                                  f"disallows for {s['ua']!r}"),
                    evidence=bad[:50], confidence=0.95,
                ))  # fmt: skip
        return out

    def flush(self, state: Any, watermark: datetime) -> list[Finding]:
        horizon = watermark.timestamp() - self.params.forget_after_hours * 3600  # type: ignore[attr-defined]
        for key in [k for k, v in state.items() if v["last"] < horizon]:
            del state[key]
        return []
