"""What the Policy answers: clauses, kinds, severities, playbooks, durations and the repeat rule."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from abusedesk.detectors.base import ClauseMap, Detector
from abusedesk.domain.errors import NotFound
from abusedesk.domain.records import Event, Finding, Severity
from abusedesk.policy import (
    Policy,
    RepeatRule,
    StepType,
    format_duration,
    load_policy,
    parse_duration,
)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 12H ", timedelta(hours=12)),
        ("0", timedelta(0)),
        (0, timedelta(0)),
        (timedelta(hours=1), timedelta(hours=1)),
    ],
)
def test_parse_duration(text: Any, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("30", "no unit"),
        (30, "no unit"),
        ("30 days", "unit"),
        ("1y", "unit"),
        ("-5m", "unit"),
        ("", "unit"),
        ("h", "unit"),
        ("99999d", "ten years"),
        (True, "text"),
        (1.5, "text"),
        (None, "text"),
        (timedelta(seconds=-1), "negative"),
    ],
)
def test_parse_duration_refuses(text: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_duration(text)


def test_format_duration_is_short() -> None:
    assert format_duration(timedelta(hours=36)) == "1d12h"
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(0)) == "0"


def test_clause_lookup_and_not_found(policy: Policy) -> None:
    assert policy.clause("1.10").title
    with pytest.raises(NotFound, match=r"clause '9\.9' is not in policy aiven-aup@.*1\.15"):
        policy.clause("9.9")


def test_clauses_for_kind_put_the_primary_first(policy: Policy) -> None:
    assert policy.clauses_for_kind("crawling") == ("1.14", "1.8")
    assert policy.clauses_for_kind("header-forgery") == ("1.11", "1.7")
    assert policy.clauses_for_kind("csam") == ("1.1", "1.5")
    assert policy.clauses_for_kind("mirroring") == ("1.5", "1.2")
    assert policy.severity_for_kind("csam") is Severity.CRITICAL
    assert policy.severity_for_kind("crawling") is Severity.LOW  # 1.14's, not 1.8's


def test_unknown_kind_is_not_found(policy: Policy) -> None:
    with pytest.raises(NotFound, match="not a known event kind"):
        policy.clauses_for_kind("port-scan")
    with pytest.raises(NotFound):
        policy.severity_for_kind("port-scan")


def test_playbook_for_picks_the_severity_or_the_default(policy: Policy) -> None:
    high = policy.playbook_for("1.8", Severity.HIGH)
    assert high.name == "network-abuse" and high.clause_id == "1.8" and high.severity is Severity.HIGH
    assert [s.type for s in high.steps] == [
        StepType.REQUEST_TO_CEASE,
        StepType.RENOTIFY,
        StepType.ESCALATE_ON_REPEAT,
    ]
    assert high.cease_deadline == timedelta(hours=4)
    # 1.2 lists only default and critical: medium falls back to default
    medium = policy.playbook_for("1.2", "medium")
    assert medium.steps == policy.clause("1.2").playbook.steps["default"]  # type: ignore[union-attr]
    assert policy.playbook_for("1", "low").cease_deadline is None
    with pytest.raises(NotFound, match="no playbook"):
        policy.playbook_for("3", Severity.LOW)
    with pytest.raises(ValueError):
        policy.playbook_for("1.8", "severe")


def test_destructive_steps_need_two_persons_and_cite_section_3(policy: Policy) -> None:
    crit = policy.playbook_for("1.1", Severity.CRITICAL)
    proposals = [s for s in crit.steps if s.type is StepType.PROPOSE]
    assert {s.action for s in proposals} == {"disable-data-access", "report-officials"}
    assert all(s.approvals == 2 and s.cite == "3" and s.needs_human for s in proposals)
    assert crit.steps[-1].type is StepType.TRIAGE and not crit.steps[-1].is_automatic


@pytest.mark.parametrize(
    ("rule", "base", "findings", "reopens", "expected"),
    [
        (RepeatRule(10, timedelta(days=7), 1, Severity.CRITICAL), Severity.LOW, 1, 0, Severity.LOW),
        (RepeatRule(10, timedelta(days=7), 1, Severity.CRITICAL), Severity.LOW, 9, 0, Severity.LOW),
        (RepeatRule(10, timedelta(days=7), 1, Severity.CRITICAL), Severity.LOW, 10, 0, Severity.MEDIUM),
        (RepeatRule(10, timedelta(days=7), 1, Severity.CRITICAL), Severity.LOW, 25, 0, Severity.HIGH),
        (RepeatRule(10, timedelta(days=7), 1, Severity.CRITICAL), Severity.LOW, 1000, 0, Severity.CRITICAL),
        (RepeatRule(10, timedelta(days=7), 1, Severity.CRITICAL), Severity.MEDIUM, 1, 1, Severity.HIGH),
        (RepeatRule(10, timedelta(days=7), 1, Severity.HIGH), Severity.MEDIUM, 100, 3, Severity.HIGH),
        (RepeatRule(10, timedelta(days=7), 1, Severity.MEDIUM), Severity.HIGH, 100, 3, Severity.HIGH),
        (RepeatRule(None, timedelta(days=7), 0, Severity.CRITICAL), Severity.LOW, 1000, 5, Severity.LOW),
    ],
)
def test_repeat_rule(rule: RepeatRule, base: Severity, findings: int, reopens: int, expected: Severity) -> None:
    assert rule.raised(base, findings, reopens) is expected


def test_playbooks_inherit_the_engine_repeat_rule(policy: Policy) -> None:
    assert policy.playbook_for("1.11", "medium").severity_on_repeat == policy.severity_on_repeat
    assert policy.playbook_for("1.8", "medium").severity_on_repeat.every == 5


def test_to_dict_is_json_and_complete(policy: Policy) -> None:
    data = json.loads(json.dumps(policy.to_dict()))
    assert data["version"] == policy.version
    assert [c["id"] for c in data["clauses"]] == list(policy.clauses)
    assert data["engine"]["max_notice_delay"]["critical"] == "0"
    assert data["playbooks"]["cease"]["steps"]["default"][0] == {
        "step": "request-to-cease",
        "deadline": "3d",
        "cite": "4",
    }


def test_policy_is_frozen_and_compares_by_version(policy: Policy) -> None:
    with pytest.raises(AttributeError):
        policy.id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.clauses["1.1"] = policy.clauses["1.2"]  # type: ignore[index]
    assert policy == load_policy() and hash(policy) == hash(load_policy())


class _ScanDetector(Detector):
    """A minimal detector used only to show that Policy serves as a detector's ClauseMap."""

    name = "test_scan"

    def detect(self, batch: Sequence[Event] | Any, state: Any = None) -> list[Finding]:
        return [
            Finding.create(
                detector=self.name,
                kind=e.kind,
                clauses=self.policy.clauses_for_kind(e.kind),
                group_key=e.source_ip or "",
                window_start=e.time,
                window_end=e.time,
                severity=self.policy.severity_for_kind(e.kind),
                confidence=1.0,
                summary="scan",
            )
            for e in batch
        ]


def test_policy_serves_as_a_detectors_clause_map(policy: Policy) -> None:
    clause_map: ClauseMap = policy
    when = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    events = [Event.create(kind="crawling", time=when, feed="test", source_ip="192.0.2.7")]
    [finding] = _ScanDetector(clause_map).detect(events)
    assert finding.clauses == ("1.14", "1.8") and finding.severity is Severity.LOW
