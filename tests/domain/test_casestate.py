"""The lifecycle table: every listed move is allowed, every other one refused with a message naming the way out."""

from __future__ import annotations

import itertools

import pytest

from abusedesk.domain.casestate import (
    ENDED,
    TRANSITIONS,
    CaseState,
    allowed_targets,
    check_transition,
    is_open,
    parse_state,
    path_to,
)
from abusedesk.domain.errors import Conflict

pytestmark = pytest.mark.unit

ALL = list(CaseState)


def test_every_state_has_a_row_and_every_state_is_reachable_from_new() -> None:
    assert set(TRANSITIONS) == set(ALL)
    for state in ALL:
        if state is not CaseState.NEW:
            assert path_to(CaseState.NEW, state)[-1] is state


@pytest.mark.parametrize(("src", "dst"), [(a, b) for a in ALL for b in ALL])
def test_table_decides_each_pair(src: CaseState, dst: CaseState) -> None:
    if dst in TRANSITIONS[src]:
        assert check_transition(src, dst, reason="because") is dst
    else:
        with pytest.raises(Conflict) as err:
            check_transition(src, dst, reason="because", case_ref="AD-1")
        msg = err.value.message
        assert f"from {src.value!r} to {dst.value!r}" in msg
        assert "AD-1" in msg
        for allowed in allowed_targets(src):
            assert allowed.value in msg


def test_main_paths_of_the_brief() -> None:
    ok = [
        ["new", "triaged", "notified", "awaiting-customer", "resolved", "closed"],
        ["new", "notified", "awaiting-customer", "escalated", "restricted", "reinstated", "closed"],
        ["new", "escalated", "reported", "closed"],
        ["notified", "appealed", "dismissed"],
        ["resolved", "new"],
    ]
    for path in ok:
        for a, b in itertools.pairwise(path):
            check_transition(a, b, reason="r")


def test_ended_states_only_reopen() -> None:
    for state in ENDED:
        assert not is_open(state)
        assert CaseState.NEW in TRANSITIONS[state]
    assert TRANSITIONS[CaseState.CLOSED] == frozenset({CaseState.NEW})
    assert is_open("awaiting-customer")


@pytest.mark.parametrize("target", ["dismissed", "appealed", "reinstated"])
def test_reason_required(target: str) -> None:
    src = {"dismissed": "new", "appealed": "notified", "reinstated": "restricted"}[target]
    with pytest.raises(Conflict, match="without a reason"):
        check_transition(src, target, reason="  ")
    assert check_transition(src, target, reason="reporter confused victim and attacker").value == target


def test_unknown_state_named() -> None:
    with pytest.raises(Conflict, match="'suspended' is not a case state; the states are new, triaged"):
        parse_state("suspended")


def test_path_to_walks_forward_in_single_steps() -> None:
    assert path_to("new", "awaiting-customer") == [CaseState.NOTIFIED, CaseState.AWAITING_CUSTOMER]
    assert path_to("new", "new") == []
