"""The case lifecycle as an explicit state machine: states, the allowed transitions, and the check. No I/O.

::

    new ─► triaged ─► notified ─► awaiting-customer ─► resolved ─► closed
     │        │          │               │
     │        └──────────┴───────────────┴─► escalated ─► restricted ─► reinstated ─► closed
     │                                          │              │
     └─► dismissed (false positive,             └─► reported ◄─┘   (to officials or third parties)
         reason required)                 appealed: the customer disputes; a human decides

A finding on a recently ended case (resolved, closed, dismissed) reopens it: the case goes back to ``new``. The
full table is :data:`TRANSITIONS`; docs/reference/case-lifecycle.md prints it.
"""

from __future__ import annotations

from enum import StrEnum

from abusedesk.domain.errors import Conflict


class CaseState(StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    NOTIFIED = "notified"
    AWAITING_CUSTOMER = "awaiting-customer"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    RESTRICTED = "restricted"
    REINSTATED = "reinstated"
    CLOSED = "closed"
    DISMISSED = "dismissed"
    APPEALED = "appealed"
    REPORTED = "reported"


S = CaseState

#: from-state -> the states it may move to. Anything else is refused with Conflict.
TRANSITIONS: dict[CaseState, frozenset[CaseState]] = {
    S.NEW: frozenset({S.TRIAGED, S.NOTIFIED, S.ESCALATED, S.DISMISSED, S.RESOLVED}),
    S.TRIAGED: frozenset({S.NOTIFIED, S.ESCALATED, S.DISMISSED, S.RESOLVED}),
    S.NOTIFIED: frozenset({S.AWAITING_CUSTOMER, S.ESCALATED, S.RESOLVED, S.DISMISSED, S.APPEALED}),
    S.AWAITING_CUSTOMER: frozenset({S.NOTIFIED, S.RESOLVED, S.ESCALATED, S.DISMISSED, S.APPEALED}),
    S.ESCALATED: frozenset({S.RESTRICTED, S.REPORTED, S.RESOLVED, S.DISMISSED, S.APPEALED, S.AWAITING_CUSTOMER}),
    S.RESTRICTED: frozenset({S.REINSTATED, S.REPORTED, S.APPEALED, S.CLOSED}),
    S.REPORTED: frozenset({S.RESTRICTED, S.APPEALED, S.CLOSED, S.REINSTATED}),
    S.APPEALED: frozenset({S.DISMISSED, S.REINSTATED, S.RESOLVED, S.ESCALATED, S.RESTRICTED, S.AWAITING_CUSTOMER}),
    S.REINSTATED: frozenset({S.CLOSED, S.ESCALATED}),
    S.RESOLVED: frozenset({S.CLOSED, S.NEW}),
    S.CLOSED: frozenset({S.NEW}),
    S.DISMISSED: frozenset({S.NEW}),
}

#: States in which a case is over: findings no longer join it unless they reopen it (-> new).
ENDED: frozenset[CaseState] = frozenset({S.RESOLVED, S.CLOSED, S.DISMISSED})
#: States that need a reason from whoever moves the case there.
NEEDS_REASON: frozenset[CaseState] = frozenset({S.DISMISSED, S.APPEALED, S.REINSTATED})
#: Ending states that say the violation was real (reporter accuracy counts them as confirmed).
CONFIRMED: frozenset[CaseState] = frozenset({S.RESOLVED, S.RESTRICTED, S.REPORTED})


def parse_state(value: str) -> CaseState:
    """The state named ``value``; Conflict naming the known states otherwise."""
    try:
        return CaseState(value)
    except ValueError:
        raise Conflict(
            f"{value!r} is not a case state; the states are {', '.join(s.value for s in CaseState)}"
        ) from None


def allowed_targets(state: CaseState | str) -> tuple[CaseState, ...]:
    """The states a case in ``state`` may move to, in lifecycle order."""
    targets = TRANSITIONS[CaseState(state)]
    return tuple(s for s in CaseState if s in targets)


def is_open(state: CaseState | str) -> bool:
    return CaseState(state) not in ENDED


def check_transition(
    current: CaseState | str, target: CaseState | str, *, reason: str = "", case_ref: str = ""
) -> CaseState:
    """Return ``target`` as a CaseState if the move is allowed, else raise Conflict saying why.

    The message names the case, the from and to states and the states that are allowed from here.
    """
    src, dst = parse_state(str(current)), parse_state(str(target))
    what = f"case {case_ref}" if case_ref else "a case"
    if dst not in TRANSITIONS[src]:
        allowed = ", ".join(s.value for s in allowed_targets(src)) or "none"
        raise Conflict(
            f"{what} cannot move from {src.value!r} to {dst.value!r}; from {src.value!r} it may move to: {allowed}"
        )
    if dst in NEEDS_REASON and not reason.strip():
        raise Conflict(f"{what} cannot move to {dst.value!r} without a reason; give one (--reason)")
    return dst


def path_to(current: CaseState | str, target: CaseState | str) -> list[CaseState]:
    """The shortest chain of allowed moves from ``current`` to ``target`` (excluding ``current``); [] if equal.

    The engine uses it to walk a new case through ``triaged``/``notified`` so each step is recorded. Conflict if
    ``target`` cannot be reached.
    """
    src, dst = CaseState(current), CaseState(target)
    if src == dst:
        return []
    frontier: list[list[CaseState]] = [[src]]
    seen = {src}
    while frontier:
        nxt: list[list[CaseState]] = []
        for path in frontier:
            for step in allowed_targets(path[-1]):
                if step in seen:
                    continue
                if step == dst:
                    return [*path[1:], step]
                seen.add(step)
                nxt.append([*path, step])
        frontier = nxt
    raise Conflict(f"a case in {src.value!r} can never reach {dst.value!r}")  # pragma: no cover - table is connected
