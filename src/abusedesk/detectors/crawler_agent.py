"""CrawlerAgentDetector: a crawler that does not identify itself with a unique user agent (clause 1.14)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

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


@lru_cache(maxsize=4096)
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


class CrawlerAgentDetector(WeblogDetector):
    """Flags a client crawling (at least ``min_requests`` requests for ``min_distinct_paths`` distinct paths of one
    host in a window) whose user agent is empty, a library's default (python-requests, curl, Wget,
    Go-http-client, Java, okhttp, Scrapy's default ...), a browser's string, or names no product token or no contact.

    For: clause 1.14 (a unique user agent that describes the crawler's purpose). Below the rate a person browses
    at, nothing is flagged. Each distinct agent of a batch is judged once. False positives: a person's browser on a
    fast page-prefetching site can reach the rate; an internal tool run by the customer against its own site is the
    customer's to explain.
    """

    name = "crawler_agent"

    class Params(WeblogParams):
        min_requests: int = Field(20, ge=1, description="Requests to one host in one window that make a crawl.")
        min_distinct_paths: int = Field(10, ge=1, description="Distinct paths in that window that make a crawl.")

    def detect(self, batch: Sequence[Any] | pl.DataFrame, state: Any = None) -> list[Finding]:
        params = self.params
        assert isinstance(params, CrawlerAgentDetector.Params)
        df = frame(batch)
        if df.height == 0:
            return []
        state = state if state is not None else self.new_state()
        names = crawlers_of(df)  # each distinct agent judged once, the requests picked by crawler id
        bad = [c for c, ua in zip(names["crawler"], names["ua"], strict=True) if ua is not None and judge_agent(ua)]
        owner = owner_of(df)
        df = slim(df).filter(pl.col("crawler").is_in(bad))
        keep = max(self.keep_paths, params.min_distinct_paths)
        out: list[Finding] = []
        for group in self.windows_of(df, names, keep=keep):
            win = self.merge(state, group, keep=keep)
            if win["done"] or win["requests"] < params.min_requests or win["distinct"] < params.min_distinct_paths:
                continue
            if not self.due(state, win):
                continue
            why = judge_agent(win["ua"])
            rate = win["requests"] / max(1.0, win["last"] - win["first"])
            out.append(self.finding(
                kind="crawling", what="agent", win=win, owner=owner,
                summary=(f"{win['client']} crawled {win['host']} ({win['requests']} requests, {rate:.2f}/s) with "
                         f"{why}: {win['ua']!r}"),
                evidence=[{"reason": why, "requests": win["requests"], "rate_per_s": round(rate, 3)},
                          *request_evidence(win["paths"], 10)],
            ))  # fmt: skip
        return out
