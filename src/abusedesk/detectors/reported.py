"""ReportedAbuseDetector: a complaint about one of our subjects is a finding in itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from abusedesk.detectors.base import Detector
from abusedesk.detectors.facts import event_facts, summarise
from abusedesk.domain.ipnet import is_ip, normalise_ip
from abusedesk.domain.records import Event, Finding


def group_key(event: Event) -> str:
    """What makes two complaints "the same problem": the reported address, else the URL's host, else the feed."""
    if event.source_ip:
        return f"ip:{event.source_ip}"
    if event.source_url:
        try:
            host = urlsplit(event.source_url).hostname
        except ValueError:  # a malformed URL still groups, by its text
            return f"url:{event.source_url}"
        if host:
            return f"ip:{normalise_ip(host)}" if is_ip(host) else f"host:{host.lower()}"
    if event.source_fqdn:
        return f"host:{event.source_fqdn.lower()}"
    if event.source_account:
        return f"account:{event.source_account.lower()}"
    return f"feed:{event.feed}"


class ReportedAbuseDetector(Detector):
    """Flags every attributed event from an outside report (complaint mail, XARF, feeds) as a finding.

    For: the clauses that only outside reports can reveal (1.1, 1.2, 1.4, 1.5, 1.12, 1.13, 1.15) and reports of
    the rest. One finding per event, citing the clauses the policy maps the event's kind to, at the kind's
    default severity. The finding's evidence carries the report's technical facts (``detectors/facts.py``) and its
    summary names no reporter. Events that are not ours, or that a parser marked for triage (low confidence, an
    incomplete DMCA notice), make no finding: they wait for an analyst.
    False positives: a reporter's mistake (a victim's address reported as the attacker) is the reporter's;
    reporter accuracy is tracked so such reporters can be weighted down.
    """

    name = "reported"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min_confidence: float = Field(0.5, ge=0.0, le=1.0, description="Events below this go to triage instead.")

    def detect(self, batch: Sequence[Event] | Any, state: Any = None) -> list[Finding]:
        params = self.params
        assert isinstance(params, ReportedAbuseDetector.Params)
        findings: list[Finding] = []
        for event in batch:
            if event.service_id is None or event.extra.get("triage") or event.confidence < params.min_confidence:
                continue
            if "weblog" in event.extra:  # our own egress log: an observation the crawler detectors judge
                continue
            clauses = self.policy.clauses_for_kind(event.kind)
            if not clauses:
                continue
            reporter = event.reporter or event.feed
            facts = event_facts(event)
            findings.append(
                Finding.create(
                    detector=self.name,
                    kind=event.kind,
                    clauses=clauses,
                    group_key=group_key(event),
                    window_start=event.time,
                    window_end=event.time,
                    severity=self.policy.severity_for_kind(event.kind),
                    confidence=event.confidence,
                    summary=summarise(event.kind, facts),
                    subject_ip=event.source_ip,
                    customer_id=event.customer_id,
                    project_id=event.project_id,
                    service_id=event.service_id,
                    event_ids=(event.id,),
                    evidence=(
                        {
                            "event": event.id,
                            "raw": event.raw_id,
                            "reporter": reporter,
                            "report_id": event.report_id,
                            "url": event.source_url,
                            "facts": facts,
                        },
                    ),
                )
            )
        return findings
