"""Every report in the shared corpus goes through the intake door and the parsers: parsed or quarantined, never
crashed, never lost. A quarantine must be one we expect, for the reason we expect (``EXPECTED_QUARANTINE``).

The sweep runs ``IntakeService.accept`` (the channels' one door) and then ``parse`` on each file, on one Runtime,
so it also proves that every file is stored and recorded exactly once. Files that are not reports (README,
MANIFEST, ``.license`` sidecars, the xarf test-definitions) are skipped by name.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from abusedesk.intake.service import IntakeService
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import RawInputRow

pytestmark = pytest.mark.corpus


def _in(folder: str, names: dict[str, str]) -> dict[str, str]:
    return {f"{folder}/{name}": reason for name, reason in names.items()}


#: relative path under corpus/reports → a substring of the quarantine reason. Each one was checked by hand:
#: - abusix-xarf-v3-samples/negative: invalid on purpose (the reason names the offending field; a sample with
#:   two faults, e.g. harassment_sample_no_description with the unknown type "Harassed", names the first);
#: - xarf-python-shared-samples/samples/invalid: invalid on purpose;
#: - ovh-cerberus-core-samples nothing, sample9/10/21/22: mails with no reported address or URL ("test",
#:   "Nothing to Parse ..."): an analyst must read them.
EXPECTED_QUARANTINE: dict[str, str] = {
    **_in(
        "abusix-xarf-v3-samples/negative/3",
        {
            "harassment_sample_no_description.json": "Report.ReportClass/ReportType: Activity/Harassed is not a",
            "harassment_sample_no_harasser.json": "Report.ReportClass/ReportType: Activity/Harassed is not a known",
            "invalid_additional_fields.json": "Report.Custom.NumberOfIncidents: must be a string, number or",
            "invalid_b64_flag.json": 'Report.Samples[0].Base64Encoded: "yes not I don\'t know" is not true/false',
            "invalid_byte_count.json": "Report.ByteCount: True is not a non-negative integer",
            "invalid_date.json": "Report.Date: 'This is not a date' is not an ISO 8601",
            "invalid_destination.json": "Report.DestinationIp: '198' is not an IPv4 or IPv6 address",
            "invalid_destination2.json": "Report.DestinationIp: must be an IP address string, not int",
            "invalid_email_as_identifier_potentially_compromised_account.json": "Report.Account.AccountIdentifier:",
            "invalid_emails.json": "Report.SmtpMailFromAddress: 'spamexample.com' is not an e-mail addre",
            "invalid_empty.json": "ReporterInfo: is required",
            "invalid_empty_account.json": "Report.Account: must be a non-empty object",
            "invalid_exploit_wrong_cve.json": "Report.CVE: 'CVE-NOW-23112' is not a CVE id (CVE-YYY",
            "invalid_exploit_wrong_vector.json": "Report.CVSS.Vector: vector is CVSS 3.1 but Version says 2",
            "invalid_exploit_wrong_version.json": "Report.CVSS.Version: '4' is not a CVSS version",
            "invalid_file_hash.json": "Report.FileHash.HashAlgorithm: 'whirlpool' is not one of ['md5', 'sha1'",
            "invalid_file_info.json": "Report.FileSize: -3 is not a non-negative integer",
            "invalid_first_seen.json": "Report.FirstSeen: 'This is no date' is not an ISO 8601 dat",
            "invalid_host_name.json": "Report.RpzDomain: 'this is not a hostname' is not a host n",
            "invalid_infringed_props.json": "Report.InfringedMaterial: must be a non-empty string, not 2",
            "invalid_internal_processing_wrong_data_type.json": "InternalProcessing.SubscriberInformation.ID: must",
            "invalid_ip.json": "Report.SourceIp: 'not an IP' is not an IPv4 or IPv6 addre",
            "invalid_ip2.json": "Report.SourceIp: must be an IP address string, not int",
            "invalid_missing_account.json": "Report.Account: is required for PotentiallyCompromisedAc",
            "invalid_missing_report.json": "Report: is required",
            "invalid_missing_report_class_report_type.json": "Report.ReportClass/ReportType: are required strings",
            "invalid_missing_reporter.json": "ReporterInfo: is required",
            "invalid_missing_reporter_props.json": "ReporterInfo: must be a non-empty object",
            "invalid_missing_reporter_props2.json": "ReporterInfo: must be a non-empty object",
            "invalid_missing_reporter_props3.json": "ReporterInfo: must be a non-empty object",
            "invalid_missing_reporter_props4.json": "ReporterInfo: must be a non-empty object",
            "invalid_missing_reporter_props5.json": "ReporterInfo.ReporterOrgEmail: is required for an organisation",
            "invalid_on_behalf_of.json": "OnBehalfOf.ComplainantOrgEmail: 'complainant.example.com' is not an e-ma",
            "invalid_openservice.json": "Report.ServiceName: must be a non-empty string, not 6",
            "invalid_openservice2.json": "Report.TransportProtocol: 'thisisnoprotocol' is not one of ['icmp'",
            "invalid_openservice3.json": "Report.ServiceVersion: must be a non-empty string, not 2",
            "invalid_openservice4.json": "Report.ServiceName: is required for Vulnerability/OpenServic",
            "invalid_openservice_missing_service.json": "Report.Protocol: is not a field of XARF v3 (put extra dat",
            "invalid_ports.json": "Report.SourcePort: 'PORT54321' is not a port number (intege",
            "invalid_report_class_report_type.json": "Report.ReportClass/ReportType: are required strings",
            "invalid_report_class_report_type2.json": "Report.ReportClass/ReportType: are required strings",
            "invalid_report_part.json": "Report.Date: is required",
            "invalid_reporter_info.json": "ReporterInfo: unknown fields ['ShouldNotBeHere']",
            "invalid_reporter_metadata.json": "Report.ReporterCaseID: must be a non-empty string, not 454",
            "invalid_reporter_metadata2.json": "Report.ReporterCaseID: must be a non-empty string, not []",
            "invalid_sample.json": "Report.Samples: must be a list of sample objects",
            "invalid_sample_2.json": "Report.Samples[0].ContentType: is required and must be a string",
            "invalid_type.json": "Report.ReportClass/ReportType: Meh/DoesNotExist is not a known class/ty",
            "invalid_used_ip_in_potentially_compromised_account.json": "Report.Account.AccountIdentifier: must be a",
            "invalid_used_url_in_potentially_compromised_account.json": "Report.SourceUrl: is not allowed for",
        },
    ),
    **_in(
        "ovh-cerberus-core-samples",
        {
            "nothing": "names no IP address or URL",
            "sample10": "names no IP address or URL",
            "sample21": "names no IP address or URL",
            "sample22": "names no IP address or URL",
            "sample9": "names no IP address or URL",
        },
    ),
    **_in(
        "xarf-python-shared-samples/samples/invalid/business_rule_violations",
        {
            "messaging_missing_protocol.json": "protocol: is required for messaging/spam",
        },
    ),
    **_in(
        "xarf-python-shared-samples/samples/invalid/malformed_data",
        {
            "invalid_json.json": "XARF document is not valid JSON",
        },
    ),
    **_in(
        "xarf-python-shared-samples/samples/invalid/missing_fields",
        {
            "missing_reporter.json": "reporter: is required",
        },
    ),
    **_in(
        "xarf-python-shared-samples/samples/invalid/schema_violations",
        {
            "invalid_class.json": "category: 'invalid_class_name' is not one of ['con",
            "missing_xarf_version.json": "xarf_version: is required",
        },
    ),
}

#: MANIFEST.md: "Expect schema drift: 2 of these 93 files now fail (missing `port`)". Shadowserver's current
#: schema asks for a port these older samples lack; quarantine with a loud schema-drift reason is the right outcome.
SCHEMA_DRIFT: dict[str, str] = {
    "intelmq-shadowserver-testdata/malware_url.csv": "schema drift: report type malware_url has no column 'port'",
    "intelmq-shadowserver-testdata/sandbox_url.csv": "schema drift: report type sandbox_url has no column 'port'",
}


def is_report_file(path: Path) -> bool:
    name = path.name
    if name.startswith(".") or name.endswith(".license"):
        return False
    if name.upper().startswith(("README", "MANIFEST")):
        return False
    return "test-definitions" not in path.parts


def report_files(corpus: Path) -> list[Path]:
    root = corpus / "reports"
    return sorted(p for p in root.rglob("*") if p.is_file() and is_report_file(p))


def sweep(runtime: Runtime, corpus: Path) -> dict[str, tuple[str, str | None, int, str | None]]:
    """rel path → (status, parser, events, error) for every report file."""
    intake = IntakeService(runtime)
    root = corpus / "reports"
    results: dict[str, tuple[str, str | None, int, str | None]] = {}
    by_id: dict[str, str] = {}
    for path in report_files(corpus):
        rel = str(path.relative_to(root))
        accepted = intake.accept(path.read_bytes(), channel="file", meta={"filename": path.name})
        raw_id = accepted.raw.id
        if accepted.duplicate and raw_id in by_id:  # byte-identical copies in two sample sets
            results[rel] = results[by_id[raw_id]]
            continue
        by_id[raw_id] = rel
        outcome = intake.parse(raw_id)
        results[rel] = (outcome.status, outcome.parser, len(outcome.events), outcome.error)
    return results


def test_every_corpus_report_is_parsed_or_expectedly_quarantined(runtime: Runtime, corpus: Path) -> None:
    results = sweep(runtime, corpus)
    files = report_files(corpus)
    assert len(results) == len(files) > 350
    # nothing lost: one recorded raw input per distinct file content, none left "stored"
    distinct = {p.read_bytes() for p in files}
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RawInputRow)) == len(distinct)
        assert s.scalar(select(func.count()).select_from(RawInputRow).where(RawInputRow.status == "stored")) == 0
    crashed = {rel: r[3] for rel, r in results.items() if r[3] and " crashed: " in r[3]}
    assert crashed == {}, "a parser crashed (a bug, not a quarantine)"
    quarantined = {rel: r[3] or "" for rel, r in results.items() if r[0] == "quarantined"}
    expected = EXPECTED_QUARANTINE | SCHEMA_DRIFT
    unexpected = {rel: reason for rel, reason in quarantined.items() if rel not in expected}
    assert unexpected == {}, "quarantined but not expected"
    not_quarantined = sorted(set(expected) - set(quarantined))
    assert not_quarantined == [], "expected in quarantine but parsed"
    wrong_reason = {rel: (expected[rel], reason) for rel, reason in quarantined.items() if expected[rel] not in reason}
    assert wrong_reason == {}
    assert all(r[0] in ("parsed", "quarantined") for r in results.values())
    assert all(r[2] > 0 for r in results.values() if r[0] == "parsed")


def main() -> None:  # pragma: no cover - a helper to print the current sweep (python -m tests.corpus.test_corpus_all)
    import tempfile

    from abusedesk.config import Settings
    from tests.conftest import CORPUS

    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime.open(Settings(data_dir=Path(tmp)))
        results = sweep(rt, CORPUS)
        print(Counter((r[0], r[1]) for r in results.values()))
        for rel, r in sorted(results.items()):
            if r[0] != "parsed":
                print(f"{rel}\t{r[1]}\t{r[3]}")


if __name__ == "__main__":  # pragma: no cover
    main()
