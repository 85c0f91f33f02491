"""De-duplication at the intake door, attacked: what is a re-sent copy, what is a new report, and exactly once.

A duplicate is the same content (mail: set aside the header fields added in transit) from the same reporter;
nothing else. Every test goes through the mail door or ``IntakeService.accept`` on a real database (SQLite, or
PostgreSQL with ABUSEDESK_TEST_DATABASE=postgresql) and drains the real pipeline.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from abusedesk.domain.errors import Conflict
from abusedesk.domain.ids import sha256_hex
from abusedesk.intake.channels import MailDoor, Receipt, wire_channels
from abusedesk.intake.service import IntakeService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.evidence import AuditRow
from abusedesk.store.tables.intake import EventRow, RawInputRow
from tests.intake.samples import complaint, xarf_bytes

RELAY = b"Received: from mx2.example.net (mx2.example.net [192.0.2.30])\n\tby mx.provider.example; Sun, 1 Mar 2026\n"
OTHER_BODY = "Your host 192.0.2.21 sent us spam on 2026-03-01 08:10 UTC.\n"
CSV = b'"timestamp","ip","port","asn","geo"\n"2026-03-01 08:00:00","192.0.2.5","23","64500","XX"\n'


@pytest.fixture
def door(runtime: Runtime) -> MailDoor:
    runtime.settings.intake.send_acks = False
    return wire_channels(runtime)


def _rows(rt: Runtime) -> list[RawInputRow]:
    with rt.sessions() as s:
        return list(s.scalars(select(RawInputRow).order_by(RawInputRow.received_at, RawInputRow.id)))


def _count(rt: Runtime, table: type) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def _blobs(rt: Runtime) -> int:
    return sum(1 for p in Path(rt.settings.raw_dir).rglob("*") if p.is_file() and not p.name.startswith("."))


def _smtp(door: MailDoor, data: bytes, sender: str = "reporter@example.net") -> Receipt:
    return door.receive(data, channel="smtp", mail_from=sender)


def test_same_bytes_twice_is_one_input(door: MailDoor, runtime: Runtime) -> None:
    first = _smtp(door, complaint())
    again = _smtp(door, complaint())
    runtime.drain()
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.raw_id == again.original_id == first.raw_id
    assert again.reference == first.reference
    assert [r.status for r in _rows(runtime)] == ["parsed"]
    assert _blobs(runtime) == 1
    with runtime.sessions() as s:
        stored = s.scalars(select(AuditRow.subject_id).where(AuditRow.action == "raw.stored")).all()
    assert stored == [first.raw_id]


@pytest.mark.parametrize(
    "variant",
    [
        lambda m: RELAY + m,
        lambda m: b"Delivered-To: abuse@provider.example\nX-Original-To: abuse@provider.example\n" + RELAY + m,
        lambda m: (b"Return-Path: <reporter@example.net>\n" + RELAY + m).replace(b"\n", b"\r\n"),
        lambda m: b"From reporter@example.net Sun Mar  1 09:00:02 2026\nStatus: RO\nX-UID: 7\n" + m,
        lambda m: b"Authentication-Results: mx.provider.example; dkim=pass\nARC-Seal: i=1; cv=none\n" + m,
    ],
    ids=["relay", "delivery", "crlf", "mbox", "auth-results"],
)
def test_same_message_through_another_received_chain_is_a_duplicate(
    door: MailDoor, runtime: Runtime, variant: object
) -> None:
    first = _smtp(door, RELAY.replace(b"mx2", b"mx9") + complaint())
    assert callable(variant)
    copy = door.receive(variant(complaint()), channel="imap")
    assert copy.duplicate
    assert (copy.raw_id, copy.reference) == (first.raw_id, first.reference)
    runtime.drain()
    assert len(_rows(runtime)) == 1
    assert _blobs(runtime) == 1  # the copy's bytes are not kept: its content is the first one's


def test_same_message_id_with_other_content_is_a_new_report_linked_to_the_first(
    door: MailDoor, runtime: Runtime
) -> None:
    first = _smtp(door, complaint())
    second = _smtp(door, complaint(subject="Spam from 192.0.2.21", body=OTHER_BODY))
    third = _smtp(door, complaint(subject="Spam again from 192.0.2.20"))
    runtime.drain()
    assert not second.duplicate and not third.duplicate
    assert len({first.raw_id, second.raw_id, third.raw_id}) == 3
    assert second.related_to == third.related_to == first.raw_id  # linked to the first, not to a chain
    assert first.related_to is None
    rows = {r.id: r for r in _rows(runtime)}
    assert {r.status for r in rows.values()} == {"parsed"}
    assert rows[second.raw_id].related_to == first.raw_id
    assert rows[second.raw_id].report_ref == rows[first.raw_id].report_ref == "mail:reporter@example.net:c1@example.net"
    with runtime.sessions() as s:
        ips = set(s.scalars(select(EventRow.source_ip).where(EventRow.raw_id == second.raw_id)))
    assert ips == {"192.0.2.21"}  # the second report's own content was parsed


def test_same_content_from_another_reporter_is_not_a_duplicate_of_theirs(door: MailDoor, runtime: Runtime) -> None:
    # no From header: the reporter is the envelope sender, so the very same bytes come from two reporters
    bare = complaint().replace(b"From: Reporter <reporter@example.net>\n", b"")
    assert b"\nFrom:" not in bare and not bare.startswith(b"From:")
    a = _smtp(door, bare, "a@example.net")
    b = _smtp(door, bare, "b@example.org")
    b_again = _smtp(door, RELAY + bare, "b@example.org")
    a_again = _smtp(door, bare, "a@example.net")
    runtime.drain()
    assert (a.duplicate, b.duplicate, b_again.duplicate, a_again.duplicate) == (False, False, True, True)
    assert a.raw_id == sha256_hex(bare)  # the first input with these bytes is named by them
    assert b.raw_id != a.raw_id
    assert (b_again.raw_id, a_again.raw_id) == (b.raw_id, a.raw_id)
    rows = {r.id: r for r in _rows(runtime)}
    assert {r.reporter for r in rows.values()} == {"a@example.net", "b@example.org"}
    assert {r.blob for r in rows.values()} == {a.raw_id}  # the bytes are stored once
    assert _blobs(runtime) == 1
    assert {r.status for r in rows.values()} == {"parsed"}  # the derived id reads the shared bytes
    # a feed file sent by two reporters: the same
    intake = door.intake
    x = intake.accept(CSV, channel="http", reporter="x@example.net", meta={"filename": "scan_telnet.csv"})
    y = intake.accept(CSV, channel="http", reporter="y@example.net", meta={"filename": "scan_telnet.csv"})
    assert not x.duplicate and not y.duplicate and x.raw.id != y.raw.id
    assert intake.accept(CSV, channel="folder", reporter="y@example.net").duplicate_of == y.raw.id


def test_no_message_id(door: MailDoor, runtime: Runtime) -> None:
    def bare(body: str = "Your host 192.0.2.20 sent us spam on 2026-03-01 08:00 UTC.\n") -> bytes:
        return complaint(body=body).replace(b"Message-ID: <c1@example.net>\n", b"")

    assert b"Message-ID" not in bare()
    first = _smtp(door, bare())
    copy = _smtp(door, RELAY + bare())
    other = _smtp(door, bare(OTHER_BODY))
    assert copy.duplicate and copy.raw_id == first.raw_id
    assert not other.duplicate and other.related_to is None  # nothing links it: no Message-ID to share
    assert [r.report_ref for r in _rows(runtime)] == [None, None]


def test_non_mail_inputs_are_keyed_on_their_whole_bytes(door: MailDoor, runtime: Runtime) -> None:
    csv = door.receive(CSV, channel="file", meta={"filename": "2026-03-01-scan_telnet-example-asn.csv"})
    same = door.receive(CSV, channel="folder", meta={"filename": "again.csv"})
    longer = door.receive(CSV + b"\n", channel="file", meta={"filename": "2026-03-01-scan_telnet-example-asn.csv"})
    doc = xarf_bytes()
    js = door.receive(doc, channel="file", meta={"filename": "r.json"})
    respaced = door.receive(doc.replace(b'": ', b'":  '), channel="file", meta={"filename": "r2.json"})
    runtime.drain()
    assert same.duplicate and same.raw_id == csv.raw_id
    assert not longer.duplicate and not js.duplicate and not respaced.duplicate
    rows = {r.id: r for r in _rows(runtime)}
    assert len(rows) == 4
    assert rows[respaced.raw_id].status == rows[js.raw_id].status == "parsed"
    # the same observation from both files is one event (event ids leave the raw input out)
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(EventRow).where(EventRow.raw_id == respaced.raw_id)) == 0
        assert s.scalar(select(func.count()).select_from(EventRow).where(EventRow.raw_id == js.raw_id)) == 1


def test_refused_report_id_reuse_stores_nothing(runtime: Runtime) -> None:
    intake = IntakeService(runtime)
    kw = {"channel": "http", "report_ref": "xarf:cert@example.net:r1", "reporter": "cert@example.net"}
    first = intake.accept(xarf_bytes(), refuse_ref_reuse="XARF report_id 'r1'", **kw)  # type: ignore[arg-type]
    with pytest.raises(Conflict) as caught:
        intake.accept(xarf_bytes(ip="192.0.2.99"), refuse_ref_reuse="XARF report_id 'r1'", **kw)  # type: ignore[arg-type]
    assert caught.value.status == 409
    assert caught.value.message.startswith(
        f"XARF report_id 'r1' was already received from cert@example.net as report {first.raw.id[:16]} with other"
    )
    assert _count(runtime, RawInputRow) == 1
    assert _blobs(runtime) == 1
    again = intake.accept(xarf_bytes(), refuse_ref_reuse="XARF report_id 'r1'", **kw)  # type: ignore[arg-type]
    assert again.duplicate_of == first.raw.id


def test_resend_after_a_crash_between_fsync_and_commit_is_taken_once(door: MailDoor, runtime: Runtime) -> None:
    # the bytes reached the disk, the row never did (the process died): nothing was acknowledged, the sender
    # sends again, and this time the input is recorded, once
    runtime.raw_store.put(complaint())
    receipt = _smtp(door, complaint())
    assert not receipt.duplicate
    assert _smtp(door, RELAY + complaint()).duplicate
    runtime.drain()
    assert [r.status for r in _rows(runtime)] == ["parsed"]
    assert _count(runtime, EventRow) == 1


def test_resend_after_a_crash_before_the_ack_is_taken_once(runtime: Runtime) -> None:
    # accept committed, then the process died before it acked (and before the parse stage ran): the sender
    # sends again through a new process; the copy is a duplicate and the one input is parsed once after recovery
    IntakeService(runtime).accept(complaint(), channel="smtp", reporter="reporter@example.net")
    assert [r.status for r in _rows(runtime)] == ["stored"]
    runtime.settings.intake.send_acks = False
    door = wire_channels(runtime)
    resent = _smtp(door, RELAY + complaint())
    assert resent.duplicate
    outcomes = door.intake.retry(status="stored")
    runtime.drain()
    assert [o.status for o in outcomes] == ["parsed"]
    assert [r.status for r in _rows(runtime)] == ["parsed"]
    assert _count(runtime, EventRow) == 1
    assert door.intake.retry(status="stored") == []


def test_concurrent_copies_are_one_input(runtime: Runtime) -> None:
    intake = IntakeService(runtime)
    copies = [f"Received: from relay{i}.example.net\n".encode() + complaint() for i in range(6)]
    start = threading.Barrier(len(copies))
    results: list[object] = []

    def send(data: bytes) -> None:
        start.wait()
        try:
            results.append(intake.accept(data, channel="smtp", reporter="reporter@example.net"))
        except Exception as exc:  # the test reports it below
            results.append(exc)

    threads = [threading.Thread(target=send, args=(c,)) for c in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    new = [r for r in results if not r.duplicate]  # type: ignore[attr-defined]
    assert len(new) == 1
    assert {r.raw.id for r in results} == {new[0].raw.id}  # type: ignore[attr-defined]
    assert _count(runtime, RawInputRow) == 1
