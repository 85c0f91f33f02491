"""The consent registry (clause 1.3): request, approve, reject, revoke, list by authenticated principals (real
users with real API tokens); findings inside an approved consent are kept without a case; a test beyond its
consent is a finding of its own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from abusedesk.consent import ConsentService
from abusedesk.domain.errors import ConfigError, Conflict, Forbidden, NotFound
from abusedesk.domain.identity import Principal
from abusedesk.evidence.audit import verify
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import FindingRow
from abusedesk.store.tables.evidence import AuditRow
from abusedesk.telemetry.service import import_flow_files
from tests.support.identities import People, make_people

pytestmark = [pytest.mark.integration]

RUN_START = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
RUN_END = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)


@pytest.fixture
def people(lab_rt: Runtime) -> People:
    """Staff (bob approves) and the lab customer's user dana, and eve of another customer."""
    return make_people(lab_rt, {"dana": "cus-lab", "eve": "cus-provider"})


def _request(svc: ConsentService, by: Principal, **kw: object) -> dict[str, object]:
    args: dict[str, object] = {
        "service_ids": ["svc-load"], "targets": ["10.99.1.20/32"], "window_from": RUN_START, "window_to": RUN_END,
        "kind": "load", "max_rate": None,
    }  # fmt: skip
    args.update(kw)
    return svc.request(by, **args)  # type: ignore[arg-type]


def test_lifecycle_with_identities(lab_rt: Runtime, people: People) -> None:
    svc = ConsentService(lab_rt)
    dana, bob, alice, eve = people["dana"], people["bob"], people["alice"], people["eve"]
    c = _request(svc, dana)
    assert c["status"] == "requested" and c["requested_by"] == dana.id
    assert c["customer_id"] == "cus-lab"
    with pytest.raises(Forbidden):  # a customer cannot approve, not even its own
        svc.decide(dana, str(c["id"]), status="approved")
    with pytest.raises(Forbidden):  # an analyst reads, an approver decides
        svc.decide(alice, str(c["id"]), status="approved")
    with pytest.raises(NotFound):  # another customer's user does not learn it exists
        svc.get(eve, str(c["id"]))
    with pytest.raises(NotFound):
        _request(svc, eve)  # svc-load is not eve's
    approved = svc.decide(bob, str(c["id"]), status="approved", reason="ticket 7")
    assert approved["status"] == "approved" and approved["decided_by"] == bob.id
    with pytest.raises(Conflict):
        svc.decide(bob, str(c["id"]), status="rejected")
    revoked = svc.decide(dana, str(c["id"]), status="revoked")  # the customer withdraws its own
    assert revoked["revoked_by"] == dana.id
    other = _request(svc, dana, kind="security")
    assert svc.decide(bob, str(other["id"]), status="rejected")["status"] == "rejected"
    assert sorted(r["status"] for r in svc.list_consents(alice)) == ["rejected", "revoked"]
    assert [r["id"] for r in svc.list_consents(bob, status="rejected")] == [other["id"]]
    assert svc.list_consents(eve) == []
    with lab_rt.sessions() as s:
        actions = [a.action for a in s.scalars(select(AuditRow).where(AuditRow.subject_type == "consent"))]
    assert actions == ["consent.requested", "consent.approved", "consent.revoked", "consent.requested",
                       "consent.rejected"]  # fmt: skip
    with lab_rt.sessions() as s:
        assert verify(s).ok


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"kind": "ddos"}, ConfigError),
        ({"targets": ["10.99.1.300/32"]}, ConfigError),
        ({"targets": []}, ConfigError),
        ({"service_ids": ["svc-nope"]}, NotFound),
        ({"service_ids": ["svc-load", "svc-provider"]}, ConfigError),  # two customers
        ({"window_to": RUN_START}, ConfigError),
        ({"max_rate": 0}, ConfigError),
    ],
)
def test_bad_requests_are_refused(
    lab_rt: Runtime, people: People, change: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        _request(ConsentService(lab_rt), people["root"], **change)


def _load_findings(rt: Runtime) -> list[FindingRow]:
    with rt.sessions() as s:
        return list(s.scalars(select(FindingRow).where(FindingRow.service_id == "svc-load")))


def test_a_consented_load_test_makes_no_case(lab_rt: Runtime, people: People, corpus: Path) -> None:
    svc = ConsentService(lab_rt)
    c = _request(svc, people["dana"])
    svc.decide(people["bob"], str(c["id"]), status="approved")
    import_flow_files(lab_rt, [corpus / "flows" / "flows_ipfix.csv.gz"], "nfdump-csv")
    rows = _load_findings(lab_rt)
    assert rows and all(f.case_id is None and f.data["consent"] == c["id"] for f in rows)
    assert {f.kind for f in rows} == {"load-test"}
    with lab_rt.sessions() as s:  # other services' scenarios still make cases
        assert s.scalars(select(FindingRow).where(FindingRow.service_id == "svc-vscan")).first().case_id is not None


def test_beyond_the_rate_is_a_finding_of_its_own(lab_rt: Runtime, people: People, corpus: Path) -> None:
    svc = ConsentService(lab_rt)
    c = _request(svc, people["dana"], max_rate=100)  # the lab's test ran at thousands of packets a second
    svc.decide(people["bob"], str(c["id"]), status="approved")
    import_flow_files(lab_rt, [corpus / "flows" / "flows_ipfix.csv.gz"], "nfdump-csv")
    rows = _load_findings(lab_rt)
    assert rows and all(f.group_key == f"consent:{c['id']}" and f.case_id is not None for f in rows)
    assert all("exceeded" in f.summary and "rate" in f.summary for f in rows)


def test_outside_the_window_is_a_finding_of_its_own(lab_rt: Runtime, people: People, corpus: Path) -> None:
    svc = ConsentService(lab_rt)
    # approved for a window that ends while the test (21:29:58–21:30:04) is still running
    c = _request(svc, people["dana"], window_to=datetime(2026, 11, 27, 21, 30, 0, tzinfo=UTC))
    svc.decide(people["bob"], str(c["id"]), status="approved")
    import_flow_files(lab_rt, [corpus / "flows" / "flows_ipfix.csv.gz"], "nfdump-csv")
    rows = _load_findings(lab_rt)
    assert any("window" in f.summary and f.case_id is not None for f in rows)
