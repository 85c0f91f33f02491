"""POST /api/v1/reports (XARF v4, raw mail, web form) and GET /api/v1/reports/{reference}, through TestClient."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from abusedesk.api.app import create_app
from abusedesk.cli.intake import wire_all
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import RawInputRow
from tests.api.testclient import TestClient
from tests.intake.mailsink import Sink, point_smtp_at
from tests.intake.samples import complaint, xarf, xarf_bytes
from tests.support.identities import People, customer_token


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    runtime.settings.intake.send_acks = False
    wire_all(runtime)
    with TestClient(create_app(runtime)) as c:
        yield c


def _json(c: TestClient, doc: object) -> tuple[int, dict[str, object]]:
    r = c.post("/api/v1/reports", content=json.dumps(doc), headers={"Content-Type": "application/json"})
    return r.status_code, r.json()


def test_xarf_is_retry_safe_by_report_id(client: TestClient, runtime: Runtime) -> None:
    code, first = _json(client, xarf())
    assert code == 202
    assert first["ok"] is True
    assert first["format"] == "xarf"
    assert first["duplicate"] is False
    ref = first["reference"]
    assert isinstance(ref, str)
    assert len(ref) == 16
    assert first["status_url"] == f"http://testserver/api/v1/reports/{ref}"
    code, same = _json(client, xarf())
    assert (code, same["reference"], same["duplicate"]) == (200, ref, True)
    # the same report re-serialised (other bytes, same report_id) is still the same report
    resent = client.post(
        "/api/v1/reports", content=json.dumps(xarf(), indent=4), headers={"Content-Type": "application/json"}
    )
    assert (resent.status_code, resent.json()["reference"]) == (200, ref)
    status = client.get(f"/api/v1/reports/{ref}", headers={"X-Report-Token": first["status_token"]}).json()
    assert status["status"] == "parsed"
    assert status["events"] == 1
    assert status["cases"] == []
    assert "related_to" not in status
    # a re-sent copy is the first report itself: no second row, nothing parsed twice
    with runtime.sessions() as s:
        assert list(s.scalars(select(RawInputRow.status))) == ["parsed"]


def test_xarf_report_id_reused_for_other_content_is_409(client: TestClient, runtime: Runtime) -> None:
    code, first = _json(client, xarf())
    assert code == 202
    r = client.post(
        "/api/v1/reports", content=json.dumps(xarf(ip="192.0.2.99")), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 409
    body = r.json()
    assert (body["title"], body["status"], body["errors"]) == ("Conflict", 409, [])
    assert "XARF report_id '5d6f3c2a-9a4e-4f5e-8a1b-0c2d3e4f5a6b'" in body["detail"]
    assert f"as report {first['reference']} with other content" in body["detail"]
    assert "cert@example.net" in body["detail"]
    # refused: nothing recorded, nothing stored in the raw store
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RawInputRow)) == 1
    assert sum(1 for p in runtime.settings.raw_dir.rglob("*") if p.is_file()) == 1
    # the same document again is still a duplicate, not a conflict
    code, again = _json(client, xarf())
    assert (code, again["duplicate"], again["reference"]) == (200, True, first["reference"])


def test_another_reporters_equal_report_id_is_its_own_report(client: TestClient, runtime: Runtime) -> None:
    code, first = _json(client, xarf())
    assert code == 202
    other = {"org": "Other CERT", "contact": "soc@example.org", "domain": "example.org"}
    code, theirs = _json(client, xarf(reporter=other, sender=other))
    assert code == 202, theirs
    assert theirs["duplicate"] is False
    assert theirs["reference"] != first["reference"]
    assert "related_to" not in theirs
    status = client.get(
        f"/api/v1/reports/{theirs['reference']}", headers={"X-Report-Token": theirs["status_token"]}
    ).json()
    assert (status["status"], status["events"]) == ("parsed", 1)
    with runtime.sessions() as s:
        assert sorted(s.scalars(select(RawInputRow.reporter))) == ["cert@example.net", "soc@example.org"]


def test_raw_mail_with_an_earlier_message_id_and_other_content_is_related(client: TestClient, runtime: Runtime) -> None:
    post = {"headers": {"Content-Type": "message/rfc822"}}
    first = client.post("/api/v1/reports", content=complaint(), **post).json()  # type: ignore[arg-type]
    relayed = client.post(
        "/api/v1/reports",
        content=b"Received: from mx2.example.net by mx.provider.example; Sun, 1 Mar 2026 09:05:00 +0000\r\n"
        + complaint().replace(b"\n", b"\r\n"),
        **post,  # type: ignore[arg-type]
    )
    assert (relayed.status_code, relayed.json()["duplicate"]) == (200, True)
    assert relayed.json()["reference"] == first["reference"]
    other = client.post(
        "/api/v1/reports",
        content=complaint(body="Your host 192.0.2.21 sent us spam on 2026-03-01 08:10 UTC.\n"),
        **post,  # type: ignore[arg-type]
    )
    assert other.status_code == 202
    body = other.json()
    assert (body["duplicate"], body["related_to"]) == (False, first["reference"])
    status = client.get(body["status_url"], headers={"X-Report-Token": body["status_token"]}).json()
    assert (status["status"], status["related_to"], status["events"]) == ("parsed", first["reference"], 1)
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RawInputRow)) == 2


def test_raw_mail(client: TestClient, runtime: Runtime) -> None:
    r = client.post("/api/v1/reports", content=complaint(), headers={"Content-Type": "message/rfc822"})
    assert r.status_code == 202
    body = r.json()
    assert body["format"] == "mail"
    with runtime.sessions() as s:
        row = s.scalar(select(RawInputRow))
        assert row is not None
        assert row.channel == "http"
        assert row.reporter == "reporter@example.net"
        assert row.report_ref == "mail:reporter@example.net:c1@example.net"
    token = {"X-Report-Token": body["status_token"]}
    assert client.get(body["status_url"], headers=token).json()["status"] in ("parsed", "quarantined")


FORM = {
    "reporter_email": "Jane <jane@example.net>",
    "subject": "192.0.2.44",
    "description": "This host keeps trying passwords on our SSH server.",
    "time": "2026-03-01T08:30:00Z",
    "kind": "brute-force",
    "protocol": "tcp",
}


def test_webform_json(client: TestClient) -> None:
    code, body = _json(client, FORM)
    assert code == 202, body
    assert body["format"] == "webform"
    status = client.get(f"/api/v1/reports/{body['reference']}", headers={"X-Report-Token": body["status_token"]}).json()
    assert status["status"] == "parsed", status
    assert status["events"] == 1
    # the same form again is the same report
    code, again = _json(client, FORM)
    assert (code, again["reference"]) == (200, body["reference"])


def test_webform_multipart_and_urlencoded(client: TestClient, runtime: Runtime) -> None:
    form = {**FORM, "subject": "https://www.example.com/login.php", "kind": "phishing"}
    form.pop("protocol")
    r = client.post("/api/v1/reports", files={k: (None, v) for k, v in form.items()})
    assert r.status_code == 202, r.json()
    url = client.post("/api/v1/reports", data={**form, "description": "another"})
    assert url.status_code == 202, url.json()
    with runtime.sessions() as s:
        rows = list(s.scalars(select(RawInputRow)))
    assert len(rows) == 2
    for row in rows:
        doc = json.loads(runtime.raw_store.get(row.id))
        assert doc["url"] == "https://www.example.com/login.php"
        assert doc["reporter"]["contact"] == "jane@example.net"
        assert row.status == "parsed", row.error


def test_webform_validation_is_422_with_every_reason(client: TestClient) -> None:
    code, body = _json(
        client, {"reporter_email": "nobody", "subject": "not an address", "time": "yesterday", "kind": "nonsense"}
    )
    assert code == 422
    assert body["status"] == 422
    assert body["status"] == 422
    error = body["detail"]
    assert isinstance(error, str)
    for field in ("reporter_email", "subject", "description", "time", "kind"):
        assert f"field '{field}'" in error
    code, body = _json(client, {**FORM, "colour": "blue"})
    assert code == 422
    assert "unknown form field(s) colour" in str(body["detail"])


def test_webform_refused_when_the_parser_would_quarantine(client: TestClient) -> None:
    form = dict(FORM)
    form.pop("protocol")
    code, body = _json(client, form)
    assert code == 422
    assert "protocol" in str(body["detail"])


def test_unsupported_content_type_and_bad_json(client: TestClient) -> None:
    r = client.post("/api/v1/reports", content=b"hello", headers={"Content-Type": "text/plain"})
    assert r.status_code == 422
    assert "text/plain" in r.json()["detail"]
    r = client.post("/api/v1/reports", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert "not valid JSON" in r.json()["detail"]
    code, body = _json(client, {**xarf(), "report_id": ""})
    assert code == 422
    assert "report_id" in str(body["detail"])


def test_quarantined_status_carries_the_reason(client: TestClient) -> None:
    doc = xarf()
    doc.pop("protocol")
    code, body = _json(client, doc)
    assert code == 202
    status = client.get(str(body["status_url"]), headers={"X-Report-Token": str(body["status_token"])}).json()
    assert status["status"] == "quarantined"
    assert "protocol" in status["reason"]


def test_over_limit_by_content_length_is_413(client: TestClient, runtime: Runtime) -> None:
    runtime.settings.intake.max_input_bytes = 200
    r = client.post("/api/v1/reports", content=xarf_bytes(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    body = r.json()
    assert body["status"] == 413
    assert body["detail"] == (
        f"request body of {len(xarf_bytes())} bytes is over the limit of 200 bytes "
        "(setting intake.max_input_bytes); it was not stored"
    )
    with runtime.sessions() as s:
        assert s.scalars(select(RawInputRow)).all() == []


def test_unknown_and_malformed_references(client: TestClient, people: People) -> None:
    staff = {"Authorization": f"Bearer {people.tokens['alice']}"}
    r = client.get("/api/v1/reports/0123456789abcdef", headers=staff)
    assert r.status_code == 404
    assert r.json()["detail"] == "no report has the reference 0123456789abcdef"
    r = client.get("/api/v1/reports/xyz", headers=staff)
    assert r.status_code == 404
    assert "not a report reference" in r.json()["detail"]


def test_a_report_status_is_for_its_submitter_and_staff_only(client: TestClient, people: People) -> None:
    code, body = _json(client, xarf())
    assert code == 202
    url = f"/api/v1/reports/{body['reference']}"
    assert client.get(url).status_code == 404  # holding the reference is not enough
    assert client.get(url, headers={"X-Report-Token": "rpt_" + "0" * 40}).status_code == 404
    assert client.get(url, headers={"X-Report-Token": body["status_token"]}).status_code == 200
    assert client.get(url, headers={"Authorization": f"Bearer {people.tokens['alice']}"}).status_code == 200
    cora = customer_token(client.app.state.rt, people, "cora", "cust-a")
    assert client.get(url, headers={"Authorization": f"Bearer {cora}"}).status_code == 404
    other = _json(client, xarf(report_id="5d6f3c2a-9a4e-4f5e-8a1b-0c2d3e4f5a99", ip="198.51.100.77"))[1]
    assert client.get(url, headers={"X-Report-Token": other["status_token"]}).status_code == 404


def test_ack_for_http_reports(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    wire_all(runtime)
    with TestClient(create_app(runtime)) as c:
        code, body = _json(c, FORM)
    assert code == 202
    assert body["acknowledged"] is True
    (ack,) = mail_sink.wait(1)
    assert f"[{body['reference']}]" in ack["Subject"]
    assert mail_sink.messages[0][1] == ["jane@example.net"]


def test_no_mail_ack_for_xarf_machine_reports(runtime: Runtime, mail_sink: Sink) -> None:
    point_smtp_at(runtime, mail_sink)
    wire_all(runtime)
    with TestClient(create_app(runtime)) as c:
        code, body = _json(c, xarf())
    assert code == 202
    assert "acknowledged" not in body
    mail_sink.wait(1, timeout=0.5)
    assert mail_sink.messages == []
