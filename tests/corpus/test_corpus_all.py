"""Every report in the shared corpus goes in the way ``abusedesk intake file`` takes it: parsed or quarantined, never
crashed, never lost. A quarantine must be one we expect, for the reason we expect (``EXPECTED_QUARANTINE``).

The sweep is the command's own path: ``wire_channels`` (the pipeline, with cases), ``import_paths`` through the
mail door and ``IntakeService.accept``, ``drain``, then ``mailbox.outcomes``, the rows ``intake file --json``
prints. Nothing calls ``parse`` on the side, so a file the door wrongly took for a re-sent copy of an earlier one
would show here as a duplicate with no events (issue 9 item 7: 20 files that reuse an earlier file's Message-ID
were lost that way). The only duplicate allowed is a byte-identical copy (``EXPECTED_DUPLICATES``, checked);
files that share a Message-ID with an earlier one are parsed and linked to it (``EXPECTED_RELATED``). Files that
are not reports (README, MANIFEST, ``.license`` sidecars, the xarf test-definitions) are skipped by name.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from abusedesk.intake.channels import wire_channels
from abusedesk.intake.mailbox import import_paths, outcomes
from abusedesk.runtime import Runtime
from abusedesk.store.tables.intake import RawInputRow
from tests.corpus.test_corpus_feeds import ACNS, SHADOWSERVER, SHADOWSERVER_MAILS
from tests.corpus.test_corpus_mail import EXPECTED_EVENTS

pytestmark = pytest.mark.corpus


def _in(folder: str, names: dict[str, str]) -> dict[str, str]:
    return {f"{folder}/{name}": reason for name, reason in names.items()}


def _pairs(folder: str, names: dict[str, str]) -> dict[str, str]:
    return {f"{folder}/{name}": f"{folder}/{other}" for name, other in names.items()}


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


#: a byte-identical copy in the corpus: the one input the door may call a duplicate (of the file named)
EXPECTED_DUPLICATES: dict[str, str] = _pairs(
    "abuseio-notifier-samples/ip-echelon", {"ip-echelon_sample16.eml": "ip-echelon_sample10.eml"}
)

#: file → the earlier file whose Message-ID (from the same sender) it reuses with other content: each is a report
#: of its own, parsed, and linked (``related_to``). These 20 were stored as "duplicate" and never parsed before.
EXPECTED_RELATED: dict[str, str] = {
    **_pairs(
        "abuseio-notifier-samples",
        {
            "abusehub/Abusehub_Example_2.eml": "abusehub/Abusehub_Example_1.eml",
            "blocklistde/Blocklistde_Example_2.eml": "blocklistde/Blocklistde_Example_1.eml",
            "cleanmx/Cleanmx_Example_3.eml": "cleanmx/Cleanmx_Example_1.eml",
            "cleanmx/Cleanmx_Example_4.eml": "cleanmx/Cleanmx_Example_2.eml",
            "copyrightcompliance/Copyrightcompliance_Example_2.eml": (
                "copyrightcompliance/Copyrightcompliance_Example_1.eml"
            ),
            "cyscon/Cyscon_Example_2.eml": "cyscon/Cyscon_Example_1.eml",
            "google/Safe_Browsing_Report_2.eml": "google/Safe_Browsing_Report_1.eml",
            "ip-echelon/ip-echelon_sample9.eml": "ip-echelon/ip-echelon_sample15.eml",
            "netcraft/Netcraft_Example_2.eml": "netcraft/Netcraft_Example_1.eml",
            "netcraft/Netcraft_Example_3.eml": "netcraft/Netcraft_Example_1.eml",
            "netcraft/Netcraft_Example_4.eml": "netcraft/Netcraft_Example_1.eml",
            "projecthoneypot/Projecthoneypot_Example_free_2.eml": "projecthoneypot/Projecthoneypot_Example_free_1.eml",
            "projecthoneypot/Projecthoneypot_Example_paid_2.eml": "projecthoneypot/Projecthoneypot_Example_paid_1.eml",
            **{
                f"shadowserver/2019-10-15-{t}-sample-asn.csv.zip.eml": (
                    "shadowserver/2015-01-01-dns_openresolver-sample-asn.csv.zip.eml"
                )
                for t in ("scan_dns", "scan_ftp", "scan_http", "scan_ldap_tcp", "scan_rsync")
            },
            "spamexperts/11.eml": "spamexperts/10.eml",
            "webiron/Webiron_Example_3.eml": "webiron/Webiron_Example_2.eml",
        },
    )
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


def sweep(runtime: Runtime, corpus: Path) -> dict[str, dict[str, Any]]:
    """rel path → the row ``abusedesk intake file --json`` prints for it, every report file in one import."""
    root = corpus / "reports"
    door = wire_channels(runtime)
    files = report_files(corpus)
    items = import_paths(door, files)
    runtime.drain()
    rows = outcomes(runtime, items)

    def rel(source: str) -> str:  # an mbox-shaped file (it starts with "From ") is one message, "<path>#1"
        return str(Path(source.removesuffix("#1")).relative_to(root))

    results: dict[str, dict[str, Any]] = {}
    for row in rows:
        for key in ("source", "duplicate_of_source", "related_to_source"):
            if key in row:
                row[key] = rel(row[key])
        assert row["source"] not in results, f"{row['source']} gave more than one input"
        results[row["source"]] = row
    return results


def test_every_corpus_report_is_parsed_or_expectedly_quarantined(runtime: Runtime, corpus: Path) -> None:
    results = sweep(runtime, corpus)
    root = corpus / "reports"
    files = report_files(corpus)
    assert sorted(results) == sorted(str(p.relative_to(root)) for p in files)
    assert len(files) > 350
    # a duplicate only where the bytes are the same: nothing silently lost
    duplicates = {rel: r["duplicate_of_source"] for rel, r in results.items() if r["status"] == "duplicate"}
    assert duplicates == EXPECTED_DUPLICATES
    for copy, first in duplicates.items():
        assert (root / copy).read_bytes() == (root / first).read_bytes()
        assert results[copy]["duplicate_of"] == results[first]["reference"]
        assert results[copy]["original_status"] == results[first]["status"] == "parsed"
    related = {rel: r["related_to_source"] for rel, r in results.items() if r.get("related_to")}
    assert related == EXPECTED_RELATED
    for later, first in related.items():
        assert results[later]["related_to"] == results[first]["reference"]
        assert results[later]["reference"] != results[first]["reference"]
    # one recorded raw input per file that is not a duplicate, every one parsed or quarantined
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RawInputRow)) == len(files) - len(EXPECTED_DUPLICATES)
        statuses = Counter(s.scalars(select(RawInputRow.status)))
        assert set(statuses) == {"parsed", "quarantined"}
    own = {rel: r for rel, r in results.items() if r["status"] != "duplicate"}
    crashed = {rel: r.get("reason") for rel, r in own.items() if " crashed: " in (r.get("reason") or "")}
    assert crashed == {}, "a parser crashed (a bug, not a quarantine)"
    quarantined = {rel: r["reason"] or "" for rel, r in own.items() if r["status"] == "quarantined"}
    expected = EXPECTED_QUARANTINE | SCHEMA_DRIFT
    unexpected = {rel: reason for rel, reason in quarantined.items() if rel not in expected}
    assert unexpected == {}, "quarantined but not expected"
    not_quarantined = sorted(set(expected) - set(quarantined))
    assert not_quarantined == [], "expected in quarantine but parsed"
    wrong_reason = {rel: (expected[rel], reason) for rel, reason in quarantined.items() if expected[rel] not in reason}
    assert wrong_reason == {}
    assert {r["status"] for r in own.values()} == {"parsed", "quarantined"}
    assert [rel for rel, r in own.items() if r["status"] == "parsed" and r["events"] == 0] == []
    # through the door, each file yields what the per-family tables say its parser yields on the bare file
    want: dict[str, tuple[str | None, int]] = {name: (parser, count) for name, parser, count, _, _ in EXPECTED_EVENTS}
    for table, folder in (
        (SHADOWSERVER, "intelmq-shadowserver-testdata/{}.csv"),
        (SHADOWSERVER_MAILS, "abuseio-notifier-samples/shadowserver/{}"),
        (ACNS, "abuseio-notifier-samples/{}"),
    ):
        for name, expect in table.items():
            if len(expect) == 3:
                want[folder.format(name)] = (None, expect[0])
    got = {
        rel: (r["parser"] if parser else None, r["events"])
        for rel, (parser, _) in want.items()
        for r in [own.get(rel, results[rel])]
        if r["status"] != "duplicate"
    }
    assert got == {rel: w for rel, w in want.items() if rel in got}
    assert set(want) - set(got) == set(EXPECTED_DUPLICATES) & set(want)


def main() -> None:  # pragma: no cover - a helper to print the current sweep (python -m tests.corpus.test_corpus_all)
    import tempfile

    from abusedesk.config import Settings
    from tests.conftest import CORPUS

    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime.open(Settings(data_dir=Path(tmp)))
        results = sweep(rt, CORPUS)
        print(Counter((r["status"], r.get("parser")) for r in results.values()))
        for rel, r in sorted(results.items()):
            if r["status"] != "parsed" or r.get("related_to"):
                print(
                    f"{rel}\t{r['status']}\t{r.get('reason') or r.get('duplicate_of_source') or ''}\t"
                    f"{r.get('related_to_source') or ''}"
                )


if __name__ == "__main__":  # pragma: no cover
    main()
