"""The policy as data: clauses, the kinds that fall under them, and the playbook the case engine runs.

A :class:`Policy` is built only by :mod:`abusedesk.policy.loader`, which validates the file first; everything here
is frozen and can be shared between threads. The case engine asks the policy three questions: which clauses does a
kind fall under (:meth:`Policy.clauses_for_kind`), how severe is it (:meth:`Policy.severity_for_kind`), and what
to do about it (:meth:`Policy.playbook_for`). The file format is described in docs/reference/policy-file.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from abusedesk.domain.actions import MIN_PERSONS, TWO_PERSON
from abusedesk.domain.errors import NotFound
from abusedesk.domain.identity import Role
from abusedesk.domain.kinds import KINDS
from abusedesk.domain.records import Severity

# ---------------------------------------------------------------------------------------------------- durations

_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_DURATION_WHOLE = re.compile(r"(?:\d+[smhdw])+")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: Longest duration a policy may give (ten years): a typo like "7000d" for "7d" is caught, not obeyed.
MAX_DURATION = timedelta(days=3660)


def parse_duration(value: object) -> timedelta:
    """``"30m"``, ``"24h"``, ``"7d"``, ``"1h30m"``, ``"2w"`` or ``0`` to a timedelta; ValueError otherwise.

    Units: s (seconds), m (minutes), h (hours), d (days), w (weeks). A bare number other than 0 is refused because
    its unit would be a guess.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds < 0:
            raise ValueError(f"duration {value} is negative")
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"duration must be text like '30m', '24h' or '7d', not {type(value).__name__}")
    text = str(value).strip().lower()
    if text == "0":
        return timedelta(0)
    if isinstance(value, int) or text.isdigit():
        raise ValueError(f"duration {value!r} has no unit; write e.g. '{text}m', '{text}h' or '{text}d'")
    if not _DURATION_WHOLE.fullmatch(text):
        raise ValueError(
            f"duration {value!r} is not a number followed by a unit (s, m, h, d, w), e.g. '30m', '24h', '7d'"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {value!r} is longer than ten years; is a unit wrong?")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest text :func:`parse_duration` reads back to ``value`` ("0", "90m", "7d", "1d12h")."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0"
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        n, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------------- playbooks


class StepType(StrEnum):
    """What one playbook step does; see docs/reference/policy-file.md#steps."""

    NOTIFY = "notify"  # an automatic notice to the customer's abuse contact
    REQUEST_TO_CEASE = "request-to-cease"  # an automatic notice with a deadline, citing the duty to cease
    RENOTIFY = "renotify"  # a reminder ``after`` the previous notice when the customer has not answered
    ESCALATE_ON_REPEAT = "escalate-on-repeat"  # findings continue after the deadline: escalate, propose ``action``
    PROPOSE = "propose"  # propose a destructive ``action``; a second person must approve it
    TRIAGE = "triage"  # a human decides what to do


class ClauseRole(StrEnum):
    """Clauses that state rights and duties rather than forbidden uses; the case engine cites them by role."""

    CUSTOMER_RESPONSIBILITY = "customer-responsibility"  # the umbrella: the customer answers for its users
    ENFORCEMENT_RIGHTS = "enforcement-rights"  # review, discontinue use, disable data access, report to officials
    DUTY_TO_CEASE = "duty-to-cease"  # the customer must stop at once when asked


#: The least number of persons every destructive action needs: one proposes, a different one approves.
MIN_APPROVALS = MIN_PERSONS


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a playbook. Which optional fields a step carries depends on its ``type``:

    - ``notify``: ``template`` (optional)
    - ``request-to-cease``: ``deadline`` (required), ``template`` (optional); ``cite`` is the duty-to-cease clause
    - ``renotify``: ``after`` (required), ``repeat`` (how many reminders, default 1), ``template`` (optional)
    - ``escalate-on-repeat``: ``action`` and ``approvals`` >= 2 (required), ``role`` (who approves, default
      approver); ``cite`` is the enforcement-rights clause
    - ``propose``: ``action`` and ``approvals`` >= 2 (required), ``role``; ``cite`` is the enforcement-rights clause
    - ``triage``: ``note`` (optional) for the analyst
    """

    type: StepType
    deadline: timedelta | None = None
    after: timedelta | None = None
    repeat: int = 1
    action: str | None = None  # a two-person kind of the action catalogue (domain/actions.py)
    approvals: int = 0
    role: Role | None = None  # who must approve the proposed action (approver by default; admin always may)
    template: str | None = None
    cite: str | None = None
    note: str | None = None

    @property
    def is_automatic(self) -> bool:
        """True for steps the engine carries out without a person (notices and reminders)."""
        return self.type in (StepType.NOTIFY, StepType.REQUEST_TO_CEASE, StepType.RENOTIFY)

    @property
    def needs_human(self) -> bool:
        """True for triage and for proposals (which wait for approvals)."""
        return not self.is_automatic

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.type.value}
        if self.deadline is not None:
            out["deadline"] = format_duration(self.deadline)
        if self.after is not None:
            out["after"] = format_duration(self.after)
        if self.type is StepType.RENOTIFY:
            out["repeat"] = self.repeat
        if self.action is not None:
            out["action"] = self.action
            out["approvals"] = self.approvals
            if self.role is not None:
                out["role"] = self.role.value
        for name in ("template", "cite", "note"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class RepeatRule:
    """How repetition raises a case's severity.

    Every ``every`` findings of the same case within ``within`` raise the severity one level (``every`` None: never);
    a case that reopens (a finding within the policy's ``reopen_window`` after it closed) is raised ``on_reopen``
    levels. The result never exceeds ``max`` and never falls below the base severity.
    """

    every: int | None
    within: timedelta
    on_reopen: int
    max: Severity

    def raised(self, base: Severity, findings_in_window: int = 1, reopens: int = 0) -> Severity:
        """The severity for a case at ``base`` with ``findings_in_window`` findings and ``reopens`` reopenings."""
        levels = (findings_in_window // self.every if self.every else 0) + reopens * self.on_reopen
        if levels <= 0 or base.rank >= self.max.rank:
            return base
        return Severity(list(Severity)[min(base.rank + levels, self.max.rank)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "every": self.every,
            "within": format_duration(self.within),
            "on_reopen": self.on_reopen,
            "max": self.max.value,
        }


DEFAULT_KEY = "default"


@dataclass(frozen=True, slots=True)
class PlaybookSpec:
    """A named playbook as written in the file: ordered steps per severity, with a ``default`` for the rest."""

    name: str
    description: str
    steps: Mapping[str, tuple[Step, ...]]  # "default" and any of the severities
    severity_on_repeat: RepeatRule

    def steps_for(self, severity: Severity | str) -> tuple[Step, ...]:
        return self.steps.get(Severity(severity).value, self.steps[DEFAULT_KEY])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "severity_on_repeat": self.severity_on_repeat.to_dict(),
            "steps": {key: [s.to_dict() for s in steps] for key, steps in self.steps.items()},
        }


@dataclass(frozen=True, slots=True)
class Playbook:
    """What the case engine runs for one clause at one severity: the ordered steps and the repeat rule."""

    name: str
    clause_id: str
    severity: Severity
    steps: tuple[Step, ...]
    severity_on_repeat: RepeatRule

    @property
    def cease_deadline(self) -> timedelta | None:
        """The deadline of the first request-to-cease step, if the playbook has one."""
        return next((s.deadline for s in self.steps if s.type is StepType.REQUEST_TO_CEASE), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "clause": self.clause_id,
            "severity": self.severity.value,
            "steps": [s.to_dict() for s in self.steps],
            "severity_on_repeat": self.severity_on_repeat.to_dict(),
        }


# ---------------------------------------------------------------------------------------------------- clauses


@dataclass(frozen=True, slots=True)
class Clause:
    """One section of the policy.

    ``text`` is the verbatim clause (evidence bundles cite it); ``summary`` is our own one-sentence reading of it.
    ``kinds`` are the event kinds that fall under it; ``kind_severity`` overrides ``severity`` for some of them.
    Clauses that state rights or duties (sections 3 and 4 of the shipped policy) have a ``role``, no kinds and no
    playbook.
    """

    id: str
    title: str
    summary: str
    text: str
    kinds: tuple[str, ...]
    severity: Severity
    role: ClauseRole | None = None
    playbook: PlaybookSpec | None = None
    kind_severity: Mapping[str, Severity] = field(default_factory=lambda: MappingProxyType({}))

    def severity_for(self, kind: str) -> Severity:
        return self.kind_severity.get(kind, self.severity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "summary": self.summary,
            "text": self.text,
            "kinds": list(self.kinds),
            "severity": self.severity.value,
            "kind_severity": {k: v.value for k, v in self.kind_severity.items()},
            "role": self.role.value if self.role else None,
            "playbook": self.playbook.name if self.playbook else None,
        }


# ---------------------------------------------------------------------------------------------------- policy


@dataclass(frozen=True, eq=False)
class Policy:
    """A loaded, validated policy. Equal policies have equal ``version`` (id and the file's SHA-256).

    Satisfies :class:`abusedesk.detectors.base.ClauseMap`.
    """

    id: str
    version: str  # "<id>@<first 12 hex of sha256 of the file bytes>"
    sha256: str
    effective: date
    title: str
    source: str  # the name of the policy's text (e.g. "aup-2025-06-10.txt")
    path: str  # where this policy was loaded from (a file path or a description)
    source_text: str  # the policy file itself, exactly as loaded
    clauses: Mapping[str, Clause]  # in file order
    playbooks: Mapping[str, PlaybookSpec]
    primary: Mapping[str, str]  # kind -> primary clause id, where a kind falls under several clauses
    fallback_clause: str | None
    reopen_window: timedelta
    digest_interval: timedelta
    notice_delays: Mapping[Severity, timedelta]
    severity_on_repeat: RepeatRule  # the default for playbooks that give none
    _by_kind: Mapping[str, tuple[str, ...]] = field(repr=False, default_factory=lambda: MappingProxyType({}))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and other.version == self.version

    def __hash__(self) -> int:
        return hash(self.version)

    def __repr__(self) -> str:  # the full text and clause map would drown every log line and test report
        return f"Policy(version={self.version!r}, path={self.path!r}, clauses={len(self.clauses)})"

    # --- clauses

    def clause(self, clause_id: str) -> Clause:
        try:
            return self.clauses[str(clause_id)]
        except KeyError:
            raise NotFound(
                f"clause {clause_id!r} is not in policy {self.version}; its clauses are {', '.join(self.clauses)}"
            ) from None

    def clause_for_role(self, role: ClauseRole | str) -> Clause:
        """The clause with ``role`` (e.g. "duty-to-cease"); NotFound if the policy has none."""
        for clause in self.clauses.values():
            if clause.role is not None and clause.role.value == str(role):
                return clause
        raise NotFound(f"policy {self.version} has no clause with role {str(role)!r}")

    def cite_for_action(self, action: str) -> str:
        """The clause a destructive action cites: the one stating the provider's enforcement rights."""
        if action not in TWO_PERSON:
            raise NotFound(f"{action!r} is not a destructive action; they are {', '.join(sorted(TWO_PERSON))}")
        return self.clause_for_role(ClauseRole.ENFORCEMENT_RIGHTS).id

    def clauses_for_kind(self, kind: str) -> tuple[str, ...]:
        """The clauses ``kind`` falls under, primary first; the fallback clause if none names it."""
        self._check_kind(kind)
        found = self._by_kind.get(kind)
        if found:
            return found
        return (self.fallback_clause,) if self.fallback_clause else ()

    def primary_clause(self, kind: str) -> Clause:
        ids = self.clauses_for_kind(kind)
        if not ids:
            raise NotFound(f"event kind {kind!r} falls under no clause of policy {self.version}")
        return self.clauses[ids[0]]

    def severity_for_kind(self, kind: str) -> Severity:
        """The default severity of ``kind``: its primary clause's, or the override that clause gives the kind."""
        return self.primary_clause(kind).severity_for(kind)

    def _check_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise NotFound(f"{kind!r} is not a known event kind (see abusedesk.domain.kinds.KINDS)")

    # --- playbooks and engine settings

    def playbook_for(self, clause_id: str, severity: Severity | str) -> Playbook:
        """The ordered steps to run for a case under ``clause_id`` at ``severity``."""
        clause = self.clause(clause_id)
        sev = Severity(severity)
        if clause.playbook is None:
            raise NotFound(
                f"clause {clause.id} of policy {self.version} has no playbook; it states rights or duties and is "
                "cited by other steps, not run"
            )
        spec = clause.playbook
        return Playbook(spec.name, clause.id, sev, spec.steps_for(sev), spec.severity_on_repeat)

    def max_notice_delay(self, severity: Severity | str) -> timedelta:
        """How long a first notice at ``severity`` may wait in a digest (0: send at once)."""
        return self.notice_delays[Severity(severity)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "sha256": self.sha256,
            "effective": self.effective.isoformat(),
            "title": self.title,
            "source": self.source,
            "path": self.path,
            "fallback_clause": self.fallback_clause,
            "engine": {
                "reopen_window": format_duration(self.reopen_window),
                "digest_interval": format_duration(self.digest_interval),
                "max_notice_delay": {s.value: format_duration(d) for s, d in self.notice_delays.items()},
                "severity_on_repeat": self.severity_on_repeat.to_dict(),
            },
            "primary": dict(self.primary),
            "playbooks": {name: spec.to_dict() for name, spec in self.playbooks.items()},
            "clauses": [c.to_dict() for c in self.clauses.values()],
        }
