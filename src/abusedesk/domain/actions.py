"""The action catalogue: every action the desk can take on a case, in one table. No I/O.

Each :class:`ActionSpec` says how many persons the action needs (1: the proposer starts it; 2 or more: a
proposer and different approvers), the case state it *asserts* (reached only when the action has been carried
out: see :data:`ASSERTED_STATES`), its scope, what it does to the inventory's service row when carried out
(``effect``), which action undoes it, and which adapter family carries it out (``adapter``: the configured
adapter of that family, from the plugin registry; ``actions/runner.py``).

A new action (say, null-routing one address) is one entry here and one adapter whose ``kinds`` name it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from abusedesk.domain.casestate import CaseState
from abusedesk.domain.errors import Conflict


class Scope(StrEnum):
    CASE = "case"  # a message about the case (notices)
    SERVICE = "service"  # the customer's service (control plane)
    OFFICIALS = "officials"  # leaves the provider: evidence to officials


class AdapterFamily(StrEnum):
    NOTIFY = "notify"  # setting notify_backend
    CONTROL = "control"  # setting control_backend
    OFFICIALS = "officials"  # the evidence bundle


@dataclass(frozen=True, slots=True)
class ActionSpec:
    kind: str
    persons: int  # 1: one person starts it; >= 2: proposed, then approved by different persons
    scope: Scope
    adapter: AdapterFamily
    asserts: CaseState | None = None  # the state that says "this was done"
    effect: Mapping[str, str] = field(default_factory=dict)  # service row columns set when carried out
    undo: str | None = None
    needs_reason: bool = False
    summary: str = ""

    @property
    def needs_approval(self) -> bool:
        return self.persons >= 2


_SPECS = (
    ActionSpec("notify", 1, Scope.CASE, AdapterFamily.NOTIFY, summary="notice to the customer's abuse contact"),
    ActionSpec(
        "request-to-cease", 1, Scope.CASE, AdapterFamily.NOTIFY, summary="notice with a deadline (duty to cease)"
    ),
    ActionSpec("renotify", 1, Scope.CASE, AdapterFamily.NOTIFY, summary="reminder of an unanswered notice"),
    ActionSpec(
        "suspend-service",
        2,
        Scope.SERVICE,
        AdapterFamily.CONTROL,
        asserts=CaseState.RESTRICTED,
        effect=MappingProxyType({"status": "suspended"}),
        undo="reinstate",
        summary="discontinue the service (AUP section 3)",
    ),
    ActionSpec(
        "disable-data-access",
        2,
        Scope.SERVICE,
        AdapterFamily.CONTROL,
        asserts=CaseState.RESTRICTED,
        effect=MappingProxyType({"data_access": "disabled"}),
        undo="reinstate",
        summary="remove or disable access to the service's data (AUP section 3)",
    ),
    ActionSpec(
        "report-officials",
        2,
        Scope.OFFICIALS,
        AdapterFamily.OFFICIALS,
        asserts=CaseState.REPORTED,
        summary="evidence bundle for officials (AUP section 3)",
    ),
    ActionSpec(
        "reinstate",
        1,
        Scope.SERVICE,
        AdapterFamily.CONTROL,
        asserts=CaseState.REINSTATED,
        effect=MappingProxyType({"status": "active", "data_access": "enabled"}),
        needs_reason=True,
        summary="undo suspension and disabled data access",
    ),
)

CATALOGUE: Mapping[str, ActionSpec] = MappingProxyType({s.kind: s for s in _SPECS})
#: kinds that need a proposer and a different approver
TWO_PERSON: frozenset[str] = frozenset(k for k, s in CATALOGUE.items() if s.needs_approval)
#: states that say an action was carried out: only carrying out that action moves a case there
ASSERTED_STATES: frozenset[CaseState] = frozenset(s.asserts for s in CATALOGUE.values() if s.asserts is not None)
#: the least number of persons a two-person action needs
MIN_PERSONS = 2


def spec(kind: str) -> ActionSpec:
    """The catalogue entry of ``kind``; Conflict naming the known actions otherwise."""
    try:
        return CATALOGUE[kind]
    except KeyError:
        raise Conflict(f"{kind!r} is not an action; the actions are {', '.join(sorted(CATALOGUE))}") from None


def kinds_of(family: AdapterFamily) -> tuple[str, ...]:
    """The action kinds an adapter family carries out, in catalogue order."""
    return tuple(s.kind for s in _SPECS if s.adapter is family)
