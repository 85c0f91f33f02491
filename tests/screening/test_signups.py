"""Signups through the pipeline: stored, parsed, screened and linked, judged by the signup detector, cases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from abusedesk.clock import ManualClock
from abusedesk.domain.errors import InputRejected
from abusedesk.domain.timeutil import iso
from abusedesk.inventory.service import InventoryService
from abusedesk.runtime import Runtime
from abusedesk.screening.service import SignupService
from abusedesk.store.tables.cases import CaseRow, FindingRow
from abusedesk.store.tables.intake import EventRow, RawInputRow
from tests.conftest import T0

pytestmark = pytest.mark.integration

INVENTORY = {
    "customers": [
        {"id": "cus-gone", "name": "Banned Ltd", "contact_email": "Mallory.Evil@gmail.com", "status": "terminated"},
        {"id": "cus-paused", "name": "Paused Oy", "contact_email": "ops@paused.example", "status": "suspended"},
        {"id": "cus-good", "name": "Good AB", "contact_email": "it@good.example"},
    ],
    "accounts": [{"id": "acct-p1", "customer_id": "cus-paused", "email": "dev-team@yahoo.com"}],
}


@pytest.fixture
def rt(runtime: Runtime, tmp_path: Any) -> Runtime:
    path = tmp_path / "inv.json"
    import json

    path.write_text(json.dumps(INVENTORY))
    InventoryService(runtime).import_file(path)
    return runtime


def signup(n: int, email: str, *, ip: str = "203.0.113.9", device: str | None = None, minutes: int = 0) -> dict:
    record = {"type": "signup", "time": iso(T0 + timedelta(minutes=minutes)), "email": email,
              "account_id": f"acct-new-{n}", "customer_id": f"cus-new-{n}", "ip": ip}  # fmt: skip
    if device:
        record["device"] = device
    return record


def findings(rt: Runtime) -> list[FindingRow]:
    with rt.sessions() as s:
        return list(s.scalars(select(FindingRow).order_by(FindingRow.window_end, FindingRow.id)))


def test_a_disposable_address_and_a_terminated_customer_become_cases(rt: Runtime) -> None:
    svc = SignupService(rt)
    svc.record([
        signup(1, "someone@mailinator.com", ip="198.51.100.1"),
        signup(2, "m.a.l.l.o.r.y.evil+trial@googlemail.com", ip="198.51.100.2"),
        signup(3, "dev-team-newproject@yahoo.com", ip="2001:db8::1"),
        signup(4, "fine@good-company.example", ip="192.0.2.4"),
    ])  # fmt: skip
    rt.drain()
    got = {(f.kind, tuple(f.clauses), f.customer_id, f.group_key) for f in findings(rt)}
    assert got == {
        ("disposable-email", ("2",), "cus-new-1", "account:someone@mailinator.com"),
        ("circumvention", ("1.10",), "cus-new-2", "identity:malloryevil@gmail.com"),
        ("circumvention", ("1.10",), "cus-new-3", "identity:dev@yahoo.com"),
    }
    with rt.sessions() as s:
        cases = list(s.scalars(select(CaseRow)))
        assert {(c.customer_id, c.clause) for c in cases} == {("cus-new-1", "2"), ("cus-new-2", "1.10"),
                                                              ("cus-new-3", "1.10")}  # fmt: skip
        raw = s.scalars(select(RawInputRow)).one()
        assert raw.channel == "signup" and raw.status == "parsed"
        events = list(s.scalars(select(EventRow)))
        assert {e.disposition for e in events} == {"signup"}
    linked = next(f for f in findings(rt) if f.customer_id == "cus-new-2").data
    assert linked["evidence"][0]["linked"][0]["customer_id"] == "cus-gone"
    disposable = next(f for f in findings(rt) if f.kind == "disposable-email").data
    assert {entry["name"] for entry in disposable["evidence"][0]["screening"]["lists"]} >= {"mailchecker"}


def test_a_farm_of_signups_from_one_network_in_a_window(rt: Runtime) -> None:
    svc = SignupService(rt)
    svc.record([signup(i, f"person{i}@example{i}.org", ip=f"192.0.2.{10 + i}", minutes=i) for i in range(4)])
    rt.drain()
    assert findings(rt) == []  # four: below the threshold of five
    svc.record([signup(9, "late@example9.org", ip="192.0.2.99", minutes=5)])
    rt.drain()
    farm = findings(rt)
    assert len(farm) == 5 and {f.group_key for f in farm} == {"farm:net:192.0.2.0/24"}
    assert {f.customer_id for f in farm} == {*(f"cus-new-{i}" for i in range(4)), "cus-new-9"}
    # a sixth signup two hours later is outside the window: no new finding
    svc.record([signup(10, "much-later@example10.org", ip="192.0.2.100", minutes=125)])
    rt.drain()
    assert len(findings(rt)) == 5


def test_shared_device_and_shared_normalised_address(rt: Runtime) -> None:
    svc = SignupService(rt)
    rows = [signup(i, f"tri.al+{i}@gmail.com", ip=f"10.{i}.0.1", device="fp-1" if i < 5 else None) for i in range(5)]
    svc.record(rows)
    rt.drain()
    keys = {f.group_key for f in findings(rt)}
    assert keys == {"farm:email:trial@gmail.com", "farm:device:fp-1"}


def test_replaying_signups_changes_nothing(rt: Runtime, clock: ManualClock) -> None:
    svc = SignupService(rt)
    rows = [signup(i, f"x{i}@example.net", minutes=i) for i in range(6)]
    svc.record(rows)
    rt.drain()
    before = len(findings(rt))
    assert before == 6
    again = svc.record(rows)
    assert again.duplicate
    rt.drain()
    assert len(findings(rt)) == before


def test_a_bad_signup_is_refused_naming_it(rt: Runtime) -> None:
    with pytest.raises(InputRejected, match="signup 2: field 'email'"):
        SignupService(rt).record([signup(1, "ok@example.org"), {"type": "signup", "time": iso(T0), "email": 5}])


def test_bad_lines_of_a_file_are_issues_and_the_rest_is_parsed(rt: Runtime) -> None:
    data = b'{"type": "signup", "time": "2026-03-01T10:00:00Z", "email": "a@mailinator.com", "customer_id": "c1"}\n'
    data += b"not json\n" + b'{"type": "signup", "email": "no-time@example.org"}\n'
    SignupService(rt).record_bytes(data, filename="signups.jsonl")
    rt.drain()
    with rt.sessions() as s:
        raw = s.scalars(select(RawInputRow)).one()
    assert raw.status == "parsed"
    assert [f.kind for f in findings(rt)] == ["disposable-email"]


def test_rescreening_accounts_after_the_lists_change(rt: Runtime, tmp_path: Any) -> None:
    from abusedesk.config import Settings
    from abusedesk.screening.service import ScreeningService, rescreen_accounts

    first = rescreen_accounts(rt)
    assert first["findings"] == 0 and first["checked"] == 4
    # the operator's deny list now names good.example: the contact of cus-good must change
    deny = tmp_path / "deny.txt"
    deny.write_text("good.example\n")
    rt.settings = Settings(data_dir=rt.settings.data_dir, database_url=rt.settings.database_url,
                           screening={"deny_file": deny})  # type: ignore[arg-type]  # fmt: skip
    ScreeningService(rt).reload()
    second = rescreen_accounts(rt)
    assert (second["findings"], second["flagged"]) == (1, ["it@good.example"])
    (finding,) = findings(rt)
    assert (finding.kind, finding.clauses, finding.customer_id) == ("disposable-email", ["2"], "cus-good")
    assert finding.case_id is not None
    # the same lists again: nothing new
    assert rescreen_accounts(rt)["findings"] == 0
    assert len(findings(rt)) == 1
