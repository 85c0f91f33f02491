"""What the clause 1.14 / 1.5 detectors share: the weblog summaries of a batch, and one way to make a finding.

Each summary (weblog/sessions.py) is one client's requests to one host in one window. A finding is grouped by
(detector, client, agent, host) so the case engine keeps one case per crawler and target, however many windows
it spans; its evidence lists the offending requests (path, time, status) and what they were judged against.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from abusedesk.detectors.base import ClauseMap
from abusedesk.domain.records import Event, Finding
from abusedesk.robots.matcher import RobotsTxt

#: the clause each kind of these detectors judges
CLAUSES = {"crawling": "1.14", "mirroring": "1.5"}


def summaries(batch: Sequence[Event] | Any) -> Iterator[tuple[Event, dict[str, Any]]]:
    """(event, summary) for every weblog summary of ours in ``batch``."""
    for event in batch:
        summary = event.extra.get("weblog") if isinstance(event, Event) else None
        if summary is not None and event.service_id is not None:
            yield event, summary


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def agent_label(summary: dict[str, Any]) -> str:
    ua = summary["ua"]
    return "(not logged)" if ua is None else ua or "(empty)"


def crawl_finding(policy: ClauseMap, *, detector: str, kind: str, event: Event, summary: dict[str, Any],
                  what: str, summary_text: str, evidence: list[dict[str, Any]], confidence: float = 0.9,
                  start: float | None = None, end: float | None = None) -> Finding:  # fmt: skip
    """A finding about ``summary``'s client, citing the clause these detectors judge (1.14 for ``crawling``, 1.5
    for ``mirroring``) when the policy maps ``kind`` to it, else every clause the policy maps ``kind`` to (the
    shipped policy also lists crawling under 1.8, which is about crawling without permission, not about how)."""
    mapped = policy.clauses_for_kind(kind)
    own = CLAUSES.get(kind)
    return Finding.create(
        detector=detector,
        kind=kind,
        clauses=(own,) if own in mapped else mapped,
        group_key=f"{what}:{summary['client']}|{agent_label(summary)}|{summary['host']}",
        window_start=utc(summary["first"] if start is None else start),
        window_end=utc(summary["last"] if end is None else end),
        severity=policy.severity_for_kind(kind),
        confidence=confidence,
        summary=summary_text,
        subject_ip=summary["client"],
        customer_id=event.customer_id,
        project_id=event.project_id,
        service_id=event.service_id,
        event_ids=(event.id,),
        evidence=tuple(
            {"client": summary["client"], "user_agent": summary["ua"], "host": summary["host"], **item}
            for item in evidence
        ),
    )


class RobotsFiles:
    """The robots store as the detectors read it: a host's newest robots.txt, parsed, looked up once a batch."""

    def __init__(self, rt: Any) -> None:
        from abusedesk.robots.store import RobotsStore

        self.rt = rt
        self.store = RobotsStore(rt)

    def for_host(self, cache: dict[str, tuple[RobotsTxt, str] | None], host: str) -> tuple[RobotsTxt, str] | None:
        """(parsed robots.txt, fetch time) of ``host``, or None when the store has none."""
        if host not in cache:
            with self.rt.sessions() as s:
                record = self.store.latest(s, host)
            cache[host] = None if record is None else (record.parsed(), record.fetched_at.isoformat())
        return cache[host]


def request_evidence(paths: list[list[Any]], limit: int = 20) -> list[dict[str, Any]]:
    """The first ``limit`` requests of a summary's path list as evidence items."""
    return [{"path": p, "requests": n, "first_at": utc(t).isoformat(), "status": st} for p, n, t, st in paths[:limit]]
