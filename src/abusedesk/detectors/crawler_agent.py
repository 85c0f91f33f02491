"""CrawlerAgentDetector: a crawler that does not identify itself with a unique user agent (clause 1.14)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.base import Detector
from abusedesk.detectors.crawls import crawl_finding, request_evidence, summaries
from abusedesk.domain.records import Event, Finding
from abusedesk.robots.tokens import product_tokens

#: the defaults HTTP libraries and tools send when the caller names nothing (docs/reference/detectors-crawling.md)
LIBRARY_DEFAULTS = re.compile(
    r"^(?:python-requests|python-urllib|python-httpx|aiohttp|httpx|curl|wget|go-http-client|java|"
    r"okhttp|apache-httpclient|libwww-perl|lwp::simple|ruby|faraday|axios|node-fetch|undici|got|"
    r"guzzlehttp|php|scrapy|httpclient|winhttp|powershell|mechanize|http\.rb|reqwest|dart)\b",
    re.IGNORECASE,
)
_CONTACT = re.compile(r"https?://|www\.|@|\+http", re.IGNORECASE)
_BROWSER = re.compile(r"^Mozilla/\d", re.IGNORECASE)
_BOTLIKE = re.compile(r"bot|crawl|spider|scrap|fetch", re.IGNORECASE)


def judge_agent(ua: str) -> str | None:
    """Why ``ua`` does not identify a crawler, or None when it does (a product token and a contact)."""
    if not ua.strip():
        return "empty user agent"
    if LIBRARY_DEFAULTS.match(ua.strip()):
        return "a library's default user agent"
    if _BROWSER.match(ua) and not _BOTLIKE.search(ua):
        return "a browser's user agent"
    if not product_tokens(ua):
        return "no product token"
    if not _CONTACT.search(ua):
        return "no contact (URL or address) in the user agent"
    return None


class CrawlerAgentDetector(Detector):
    """Flags a client crawling (at least ``min_requests`` requests to one host in a window) whose user agent is
    empty, a library's default (python-requests, curl, Wget, Go-http-client, Java, okhttp, Scrapy's default ...),
    a browser's string, or names no product token or no contact.

    For: clause 1.14 (a unique user agent that describes the crawler's purpose). Below the rate a person browses
    at, nothing is flagged. False positives: a person's browser on a fast page-prefetching site can reach the rate;
    an internal tool run by the customer against its own site is the customer's to explain.
    """

    name = "crawler_agent"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min_requests: int = Field(20, ge=1, description="Requests to one host in one window that make a crawl.")
        min_distinct_paths: int = Field(10, ge=1, description="Distinct paths in that window that make a crawl.")

    def detect(self, batch: Sequence[Event] | Any, state: Any = None) -> list[Finding]:
        params = self.params
        assert isinstance(params, CrawlerAgentDetector.Params)
        out: list[Finding] = []
        for event, s in summaries(batch):
            if s["ua"] is None or s["requests"] < params.min_requests or s["paths_total"] < params.min_distinct_paths:
                continue
            why = judge_agent(s["ua"])
            if why is None:
                continue
            rate = s["requests"] / max(1.0, s["last"] - s["first"])
            out.append(crawl_finding(
                self.policy, detector=self.name, kind="crawling", event=event, summary=s, what="agent",
                summary_text=(f"{s['client']} crawled {s['host']} ({s['requests']} requests, {rate:.2f}/s) with "
                              f"{why}: {s['ua']!r}"),
                evidence=[{"reason": why, "requests": s["requests"], "rate_per_s": round(rate, 3)},
                          *request_evidence(s["paths"], 10)],
            ))  # fmt: skip
        return out
