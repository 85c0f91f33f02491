"""XARF JSON: abusix v1-v3 validation, XARF v4 strict/tolerant, _internal, evidence hashes, export round trip."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.domain.kinds import XARF_TO_KIND, kind_from_xarf
from abusedesk.parsers.xarf import XarfParser, event_to_xarf
from tests.parsers.mailsupport import make_report, run

PAYLOAD = base64.b64encode(b"Received: from mta.example.com [192.0.2.8]\n\nbuy now").decode()

V4: dict[str, Any] = {
    "xarf_version": "4.2.0",
    "report_id": "0b9f7c42-3f0e-4d0a-9b1c-6a2f5e8d7c11",
    "timestamp": "2026-02-02T10:00:00Z",
    "reporter": {"org": "Example Trap", "contact": "abuse@example.net", "domain": "example.net"},
    "sender": {"org": "Example Trap", "contact": "abuse@example.net", "domain": "example.net"},
    "source_identifier": "192.0.2.8",
    "source_port": 41234,
    "category": "messaging",
    "type": "spam",
    "protocol": "smtp",
    "smtp_from": "news@example.com",
    "evidence": [
        {
            "content_type": "message/rfc822",
            "payload": PAYLOAD,
            "hash": "sha256:" + hashlib.sha256(base64.b64decode(PAYLOAD)).hexdigest(),
        }
    ],
    "_internal": {"ticket": "secret-123"},
}

ABUSIX: dict[str, Any] = {
    "Version": "3",
    "ReporterInfo": {"ReporterOrg": "Example", "ReporterOrgDomain": "example.net", "ReporterOrgEmail": "r@example.net"},
    "Disclosure": True,
    "Report": {
        "ReportClass": "Activity",
        "ReportType": "LoginAttack",
        "Date": "2026-02-02T10:00:00Z",
        "SourceIp": "2001:db8::5",
        "SourcePort": 50022,
        "DestinationIp": "198.51.100.7",
        "DestinationPort": 22,
        "ReporterCaseID": "case-77",
    },
    "InternalProcessing": {"EventTags": ["SSH"]},
}


def as_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.unit
def test_v4_strict_report() -> None:
    parser = XarfParser()
    assert parser.recognises(make_report(as_bytes(V4)))
    (ev,), issues = run(parser, as_bytes(V4))
    assert issues == []
    assert ev.kind == "spam"
    assert ev.source_ip == "192.0.2.8" and ev.source_port == 41234
    assert ev.report_id == V4["report_id"]
    assert ev.reporter == "abuse@example.net"
    assert "xarf_tolerant" not in ev.extra
    assert "secret-123" not in json.dumps(ev.to_dict())
    assert ev.extra["xarf_fields"]["smtp_from"] == "news@example.com"


@pytest.mark.unit
def test_v4_evidence_hash_mismatch_is_reported() -> None:
    doc = copy.deepcopy(V4)
    doc["evidence"][0]["hash"] = "sha256:" + "0" * 64
    (ev,), issues = run(XarfParser(), as_bytes(doc))
    assert "does not match" in issues[0].reason
    assert ev.extra["evidence_hash_mismatch"]


@pytest.mark.unit
def test_v4_draft_falls_back_to_tolerant_mode_and_is_marked() -> None:
    doc = copy.deepcopy(V4)
    del doc["sender"]
    doc["report_id"] = "not-a-uuid-1"
    doc["xarf_version"] = "4.0.0"
    (ev,), _ = run(XarfParser(), as_bytes(doc))
    assert ev.extra["xarf_tolerant"] is True
    assert "sender" in ev.extra["xarf_strict_error"] or "report_id" in ev.extra["xarf_strict_error"]
    with pytest.raises(ParseError, match="report_id"):
        list(XarfParser(XarfParser.Params(mode="strict")).parse(make_report(as_bytes(doc))))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "nonsense"}, "category"),
        ({"reporter": None}, "reporter"),
        ({"protocol": None}, "protocol"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"source_port": 70000}, "source_port"),
    ],
)
def test_v4_invalid_even_in_tolerant_mode(change: dict[str, Any], field: str) -> None:
    doc = {**copy.deepcopy(V4), **change}
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(ParseError, match=field):
        list(XarfParser(XarfParser.Params(mode="tolerant")).parse(make_report(as_bytes(doc))))


@pytest.mark.unit
def test_v4_strict_requires_category_fields() -> None:
    doc = copy.deepcopy(V4)
    doc.update(category="content", type="phishing")
    with pytest.raises(ParseError, match="url"):
        list(XarfParser(XarfParser.Params(mode="strict")).parse(make_report(as_bytes(doc))))


@pytest.mark.unit
def test_abusix_v3_login_attack() -> None:
    (ev,), _ = run(XarfParser(), as_bytes(ABUSIX))
    assert ev.kind == "brute-force"
    assert ev.source_ip == "2001:db8::5" and ev.source_port == 50022
    assert ev.destination_ip == "198.51.100.7" and ev.destination_port == 22
    assert ev.report_id == "case-77"
    assert ev.extra["internal_stripped"] is True
    assert "EventTags" not in json.dumps(ev.extra)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("Report", "SourceIp"), "999.1.1.1", "Report.SourceIp"),
        (("Report", "DestinationPort"), "22", "Report.DestinationPort"),
        (("Report", "Date"), "2026-02-02", "Report.Date"),
        (("Report", "ReportType"), "Nope", "ReportType"),
        (("ReporterInfo", "ReporterOrgEmail"), "nope", "ReporterOrgEmail"),
        (("Report", "Unknown"), "x", "Report.Unknown"),
    ],
)
def test_abusix_invalid_field_is_named(path: tuple[str, str], value: Any, field: str) -> None:
    doc = copy.deepcopy(ABUSIX)
    doc[path[0]][path[1]] = value
    with pytest.raises(ParseError, match=field.replace(".", r"\.")):
        list(XarfParser().parse(make_report(as_bytes(doc))))


@pytest.mark.unit
def test_netcraft_v1_in_arf_envelope() -> None:
    doc = {
        "Version": "1",
        "ReporterInfo": {
            "ReporterOrg": "Netcraft",
            "ReporterOrgDomain": "example.net",
            "ReporterOrgEmail": "t@example.net",
        },
        "Report": {
            "ReportClass": "Content",
            "ReportType": "Phishing",
            "Date": "2026-01-30T00:23:47Z",
            "SourceUrl": "http://[2001:db8::80]:8080/login",
            "SourceIp": "2001:db8::80",
            "ReporterCaseID": "123",
        },
    }
    mail = (
        "From: takedown@example.net\nTo: abuse@example.org\nSubject: Issue 123\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nphishing\n"
        "--b\nContent-Type: message/feedback-report\n\nFeedback-Type: xarf\nUser-Agent: Netcraft\nVersion: 1\n\n"
        '--b\nContent-Type: application/json; name="xarf.json"\nContent-Disposition: attachment; filename="xarf.json"\n'
        f"Content-Transfer-Encoding: base64\n\n{base64.b64encode(json.dumps(doc).encode()).decode()}\n--b--\n"
    ).encode()
    assert XarfParser().recognises(make_report(mail))
    (ev,), _ = run(XarfParser(), mail)
    assert ev.kind == "phishing"
    assert ev.source_url == "http://[2001:db8::80]:8080/login"
    assert ev.source_ip == "2001:db8::80"
    assert ev.extra["xarf_version"] == "1"
    assert ev.extra["envelope_subject"] == "Issue 123"


@pytest.mark.unit
@pytest.mark.parametrize("data", [b'{"xarf_version": "4.2.0", ', b"[]", b'{"Version": "3"}', b'{"xarf_version": 4}'])
def test_broken_documents_raise_parse_error(data: bytes) -> None:
    parser = XarfParser()
    with pytest.raises(ParseError):
        list(parser.parse(make_report(data)))


@pytest.mark.unit
def test_export_of_a_non_xarf_event_is_valid_v42() -> None:
    (arf_like,), _ = run(XarfParser(), as_bytes(ABUSIX))
    out = event_to_xarf(arf_like)
    assert out["category"] == "connection" and out["type"] == "login_attack"
    assert out["destination_ip"] == "198.51.100.7"
    (back,), _ = run(XarfParser(XarfParser.Params(mode="strict")), as_bytes({**out, "protocol": "tcp"}))
    assert back.kind == arf_like.kind and back.source_ip == arf_like.source_ip


@pytest.mark.corpus
def test_round_trip_of_all_32_xarf_spec_samples(corpus: Path) -> None:
    files = sorted((corpus / "reports" / "xarf-spec-samples" / "v4").glob("*.json"))
    assert len(files) == 32
    seen = set()
    for path in files:
        doc = json.loads(path.read_bytes())
        (ev,), _ = run(XarfParser(XarfParser.Params(mode="strict")), path.read_bytes())
        out = event_to_xarf(ev)
        assert (out["category"], out["type"]) == (doc["category"], doc["type"]), path.name
        assert kind_from_xarf(out["category"], out["type"]) == ev.kind
        assert out["source_identifier"] == doc["source_identifier"]
        assert out["report_id"] == doc["report_id"]
        (again,), _ = run(XarfParser(XarfParser.Params(mode="strict")), json.dumps(out).encode())
        assert (again.kind, again.source_ip, again.source_url, again.time) == (
            ev.kind,
            ev.source_ip,
            ev.source_url,
            ev.time,
        ), path.name
        seen.add((doc["category"], doc["type"]))
    assert seen == set(XARF_TO_KIND)
