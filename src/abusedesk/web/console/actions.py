"""Mass actions on a selection of cases from the queue: each case goes through the same :class:`CaseService`
call the REST API and the CLI make (transition, propose an action, add a note), as the signed-in person, one
transaction per case. One case refused (a move its state does not allow, a concurrent change) does not stop
the others: the outcome of each is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from abusedesk.cases.service import CaseService
from abusedesk.domain import actions as actions_catalogue
from abusedesk.domain.errors import AbuseDeskError, Conflict
from abusedesk.domain.identity import Can, Principal
from abusedesk.runtime import Runtime
from abusedesk.web.console.queries import require_staff

#: what a selection can get: a state to move to, an action to propose, or a note
OPERATIONS = ("transition", "propose", "note")
#: how many cases one mass action may touch (a page of the queue holds at most 200)
MAX_SELECTION = 200


@dataclass(frozen=True, slots=True)
class Outcome:
    ref: str
    ok: bool
    message: str


def apply_to_selection(
    rt: Runtime, by: Principal, refs: list[str], operation: str, value: str, reason: str
) -> list[Outcome]:
    """Apply one operation to every case of ``refs`` (a transition to ``value``, a proposal of action ``value``,
    or a note whose text is ``reason``); returns each case's outcome in the order given."""
    require_staff(by, Can.CASE_READ)
    refs = list(dict.fromkeys(r.strip() for r in refs if r.strip()))
    if not refs:
        raise Conflict("select at least one case")
    if len(refs) > MAX_SELECTION:
        raise Conflict(f"a mass action takes at most {MAX_SELECTION} cases; {len(refs)} were selected")
    if operation not in OPERATIONS:
        raise Conflict(f"operation {operation!r} is not one of {', '.join(OPERATIONS)}")
    if operation == "propose":
        actions_catalogue.spec(value)  # an unknown kind is refused once, naming the catalogue
    if operation in ("transition", "propose") and not value:
        raise Conflict(f"{operation} needs a {'state' if operation == 'transition' else 'kind of action'}")
    svc = CaseService(rt)
    out: list[Outcome] = []
    for ref in refs:
        try:
            out.append(Outcome(ref, True, _one(svc, by, ref, operation, value, reason)))
        except AbuseDeskError as exc:
            out.append(Outcome(ref, False, exc.message))
    return out


def _one(svc: CaseService, by: Principal, ref: str, operation: str, value: str, reason: str) -> str:
    if operation == "transition":
        case: dict[str, Any] = svc.transition(ref, value, by=by, reason=reason)
        return f"now {case['state']}"
    if operation == "propose":
        action = svc.propose(ref, value, by=by, reason=reason)
        return f"{action['kind']} {action['status']} ({action['id']})"
    note = svc.note(ref, reason, by=by)
    return f"note {note['id']} added"
