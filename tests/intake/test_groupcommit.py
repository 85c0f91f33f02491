"""Group commit at the door: concurrent accepts share a flush and a commit; a batch answers each input alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select

from abusedesk.domain.errors import InputRejected
from abusedesk.intake.groupcommit import GroupCommit
from abusedesk.intake.service import Accepted, AcceptRequest, IntakeService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.bus import OutboxRow
from abusedesk.store.tables.intake import RawInputRow


def test_concurrent_callers_share_commits_and_each_gets_its_own_answer() -> None:
    batches: list[int] = []

    def commit_many(items: Sequence[int]) -> list[int]:
        batches.append(len(items))
        time.sleep(0.02)  # a commit's fsync: callers arriving meanwhile wait for the next one
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(commit_many)
    answers: dict[int, int] = {}
    start = threading.Barrier(40)

    def call(i: int) -> None:
        start.wait()
        answers[i] = group.submit(i)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert answers == {i: i * 10 for i in range(40)}
    assert sum(batches) == 40
    assert len(batches) < 40  # grouped: fewer commits than callers


def test_a_failed_commit_fails_every_caller_of_that_batch_and_the_next_batch_goes_on() -> None:
    calls: list[list[str]] = []

    def commit_many(items: Sequence[str]) -> list[str]:
        calls.append(list(items))
        if "bad" in items:
            raise OSError("disk full")
        return list(items)

    group: GroupCommit[str, str] = GroupCommit(commit_many)
    with pytest.raises(OSError, match="disk full"):
        group.submit("bad")
    assert group.submit("good") == "good"


def mail(n: int, body: str = "x") -> bytes:
    return (
        f"From: reporter@example.net\r\nMessage-ID: <m{n}@example.net>\r\nSubject: report {n}\r\n\r\n{body}\r\n"
    ).encode()


def test_accept_many_answers_each_input_in_one_transaction(runtime: Runtime) -> None:
    runtime.settings.intake.max_input_bytes = 400
    intake = IntakeService(runtime)
    requests = [
        AcceptRequest(mail(1), "file", reporter="reporter@example.net", report_ref="mail:r:1"),
        AcceptRequest(mail(1), "file", reporter="reporter@example.net", report_ref="mail:r:1"),  # a copy
        AcceptRequest(mail(1, "other body"), "file", reporter="reporter@example.net", report_ref="mail:r:1"),
        AcceptRequest(mail(2, "y" * 500), "file", reporter="reporter@example.net"),  # over the limit
        AcceptRequest(mail(3), "file", reporter="reporter@example.net"),
    ]
    first, copy, related, big, third = intake.accept_many(requests)
    assert isinstance(first, Accepted) and not first.duplicate
    assert isinstance(copy, Accepted) and copy.duplicate and copy.duplicate_of == first.raw.id
    assert isinstance(related, Accepted) and not related.duplicate and related.related_to == first.raw.id
    assert isinstance(big, InputRejected) and "over the limit of 400 bytes" in big.message
    assert isinstance(third, Accepted) and not third.duplicate
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RawInputRow)) == 3
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == 3  # one hand-off per new input
    # the same batch again: every input is a duplicate of what is stored, nothing new is handed on
    again = intake.accept_many(requests)
    assert [a.duplicate for a in again if isinstance(a, Accepted)] == [True, True, True, True]
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == 3


def test_acknowledgements_are_counted_with_the_stored_inputs_and_keep_the_hourly_limit(runtime: Runtime) -> None:
    runtime.settings.intake.ack_per_reporter_per_hour = 2
    intake = IntakeService(runtime)
    requests = [
        AcceptRequest(mail(n), "smtp", reporter="reporter@example.net", ack_to="reporter@example.net") for n in range(3)
    ]
    answers = intake.accept_many(requests)
    reservations = [a.ack for a in answers if isinstance(a, Accepted)]
    assert [r is not None and r.refused is None for r in reservations] == [True, True, False]
    assert reservations[2] is not None and "2 replies an hour" in (reservations[2].refused or "")
