from __future__ import annotations

import gzip
import logging

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.domain.kinds import KINDS
from abusedesk.domain.records import Event
from abusedesk.parsers.shadowserver import ShadowserverParser, parse_timestamp, type_from_filename
from abusedesk.parsers.shadowserver_types import REPORT_TYPES, report_type_from_columns
from tests.parsers.feedsupport import mail_with_attachment, make_report, run

DNS_HEADER = (
    '"timestamp","ip","protocol","port","hostname","tag","dns_version","asn","geo","region","city",'
    '"min_amplification","naics","sic","sector"\n'
)
DNS_ROWS = (
    '"2026-02-28 01:09:24","192.0.2.10","udp",53,"ns1.example.net","openresolver",,64496,"ZZ","-","-","1.3810",0,0,\n'
    '"2026-02-28 01:10:00","2001:db8::53","udp",53,,"openresolver",,64496,"ZZ","-","-","2.0",0,0,\n'
)
DNS = (DNS_HEADER + DNS_ROWS).encode()
NAME = "2026-02-28-scan_dns-example-asn.csv"
SINKHOLE = (
    b'"timestamp","protocol","src_ip","src_port","src_asn","src_geo","dst_ip","dst_port","infection","family","tag"\n'
    b'"2026-02-28 02:00:00","tcp","198.51.100.7",50123,64496,"ZZ","203.0.113.99",80,"andromeda","andromeda",\n'
)

parser = ShadowserverParser()


def test_type_from_file_name() -> None:
    assert type_from_filename("2026-02-28-scan_dns-example-asn.csv") == "scan_dns"
    assert type_from_filename("2019-01-16-event4_sinkhole_http-my-org-geo.csv.zip") == "event4_sinkhole_http"
    assert type_from_filename("scan_ipmi.csv") == "scan_ipmi"
    assert type_from_filename("accounts.csv") is None
    assert type_from_filename(None) is None


def test_timestamps_are_utc_without_zone() -> None:
    t = parse_timestamp("2026-02-28 01:09:24")
    assert t.isoformat() == "2026-02-28T01:09:24+00:00"
    assert parse_timestamp("2026-02-28T03:09:24+02:00") == t
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")


def test_every_type_maps_to_a_known_kind() -> None:
    for rtype in REPORT_TYPES.values():
        assert rtype.kind in KINDS, rtype.name
        assert rtype.role in ("actor", "exposed", "victim")
        assert 0 < rtype.confidence <= 1


def test_scan_dns_rows_become_open_resolver_events() -> None:
    events, issues = run(parser, DNS, NAME)
    assert issues == []
    assert [e.source_ip for e in events] == ["192.0.2.10", "2001:db8::53"]
    first = events[0]
    assert first.kind == "open-resolver"
    assert first.time.isoformat() == "2026-02-28T01:09:24+00:00"
    assert first.source_port == 53
    assert first.transport == "udp"
    assert first.source_fqdn == "ns1.example.net"
    assert first.feed == "shadowserver_scan_dns"
    assert first.report_id == NAME
    assert first.extra["report_type"] == "scan_dns" and first.extra["role"] == "exposed"
    assert first.extra["min_amplification"] == "1.3810"
    assert events[1].source_fqdn is None


def test_event_ids_are_stable_across_deliveries() -> None:
    a, _ = run(parser, DNS, NAME)
    b, _ = run(parser, mail_with_attachment(NAME, DNS), None)
    assert [e.id for e in a] == [e.id for e in b]


def test_src_ip_reports_use_src_columns() -> None:
    events, _ = run(parser, SINKHOLE, "2026-02-28-event4_sinkhole-example-asn.csv")
    (e,) = events
    assert (e.kind, e.source_ip, e.source_port) == ("infected-host", "198.51.100.7", 50123)
    assert (e.destination_ip, e.destination_port) == ("203.0.113.99", 80)
    assert e.extra["infection"] == "andromeda" and e.extra["role"] == "actor"


@pytest.mark.parametrize("zipped", [True, False])
def test_csv_attached_to_mail(zipped: bool) -> None:
    data = mail_with_attachment(NAME, DNS, zipped=zipped)
    report = make_report(data)
    assert parser.recognises(report)
    events, _ = run(parser, data)
    assert len(events) == 2 and events[0].report_id == NAME


def test_gzip_file() -> None:
    events, _ = run(parser, gzip.compress(DNS), NAME + ".gz")
    assert len(events) == 2


def test_recognises_by_header_without_name() -> None:
    assert parser.recognises(make_report(DNS))
    assert not parser.recognises(make_report(b"ip,port\n192.0.2.1,80\n"))
    assert not parser.recognises(make_report(b"hello world\n"))


def test_type_from_columns_when_name_is_missing() -> None:
    events, issues = run(parser, DNS)
    assert issues == [] and events[0].kind == "open-resolver"
    assert report_type_from_columns(["timestamp", "ip", "port"]) is None


def test_missing_required_column_is_schema_drift(caplog: pytest.LogCaptureFixture) -> None:
    data = DNS.replace(b'"port",', b'"portnumber",')
    with (
        caplog.at_level(logging.WARNING),
        pytest.raises(ParseError, match=r"schema drift: report type scan_dns has no column 'port'"),
    ):
        run(parser, data, NAME)
    assert any("schema drift" in r.message for r in caplog.records if r.levelno == logging.WARNING)


def test_known_type_without_any_event_is_schema_drift() -> None:
    bad = (DNS_HEADER + '"not a time","192.0.2.10","udp",53,,,,,,,,,,,\n').encode()
    with pytest.raises(ParseError, match="yielded no events from 1 rows"):
        run(parser, bad, NAME)


def test_bad_rows_are_issues_and_others_still_parse() -> None:
    data = DNS + b'"2026-02-28 01:11:00","not-an-ip","udp",53,,,,,,,,,,,\n"2026-02-28 01:12:00",,"udp",53,,,,,,,,,,,\n'
    events, issues = run(parser, data, NAME)
    assert len(events) == 2
    assert [i.line for i in issues] == [4, 5]
    assert "not an IPv4 or IPv6 address" in issues[0].reason
    assert "empty" in issues[1].reason


def test_short_rows_are_padded_long_rows_are_issues() -> None:
    data = (
        DNS_HEADER.encode()
        + b'"2026-02-28 01:09:24","192.0.2.10","udp",53\n'
        + b'"2026-02-28 01:09:24","192.0.2.11","udp",53,,,,,,,,,,,,,,,,\n'
    )
    events, issues = run(parser, data, NAME)
    assert [e.source_ip for e in events] == ["192.0.2.10"]
    assert "fields" in issues[0].reason


def test_prefix_in_address_column() -> None:
    data = b'"timestamp","ip","hostname","source","reason"\n"2026-02-28 00:00:00","192.0.2.0/24",,"list","spam"\n'
    events, _ = run(parser, data, "2026-02-28-blocklist-example-asn.csv")
    assert events[0].source_ip == "192.0.2.0" and events[0].extra["source_network"] == "192.0.2.0/24"
    assert events[0].kind == "blocklisted"


def test_unknown_type_parses_generically_for_triage() -> None:
    data = b'"timestamp","src_ip","src_port","thing"\n"2026-02-28 00:00:00","192.0.2.5",4444,"x"\n'
    events, issues = run(parser, data, "2026-02-28-event4_new_thing-example-asn.csv")
    assert events[0].kind == "other" and events[0].extra["triage"] is True and events[0].source_port == 4444
    assert "event4_new_thing is unknown" in issues[0].reason


def test_retired_type_is_named_as_such() -> None:
    data = b'"timestamp","url","host","ip"\n"2026-02-28 00:00:00","http://example.net/x","example.net","192.0.2.5"\n'
    events, issues = run(parser, data, "phish_url.csv")
    assert "retired" in issues[0].reason and events[0].kind == "other"


def test_header_only_is_an_issue_not_an_event() -> None:
    events, issues = run(parser, DNS_HEADER.encode(), NAME)
    assert events == [] and "no rows" in issues[0].reason


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x02",
        b"PK\x03\x04broken zip",
        b'"timestamp","ip","port"\n"2026-02-28 00:00:00","192.0.2.1",53,"\x00\n',
    ],
)
def test_unreadable_input_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        run(parser, data, NAME if data else None)


def test_mail_without_report_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="no Shadowserver CSV"):
        run(parser, mail_with_attachment("notes.txt", b"hello", zipped=False))


def test_docs_list_every_report_type_with_its_kind() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "reference" / "formats-feeds.md").read_text()
    for rtype in REPORT_TYPES.values():
        assert f"| `{rtype.name}` | `{rtype.kind}` | {rtype.role} |" in page, rtype.name


def test_a_dated_file_name_alone_is_not_enough() -> None:
    assert not parser.recognises(make_report(b"name,email\nx,y@example.net\n", "2026-02-28-customers-export.csv"))
    assert parser.recognises(make_report(DNS, "2026-02-28-customers-export.csv"))  # but the header is


SINKHOLE_HTTP_HEADER = (
    b'"timestamp","ip","asn","geo","url","type","http_agent","tor","src_port","p0f_genre","p0f_detail",'
    b'"hostname","dst_port","http_host","http_referer","http_referer_asn","http_referer_geo","dst_ip"\n'
)


def _sinkhole_http(url: str, http_host: str, dst_port: str = "80") -> Event:
    row = f'"2026-02-28 03:00:00","192.0.2.7",64496,"ZZ","{url}","downadup","Mozilla/4.0",,1042,,,,{dst_port},'
    row += f'"{http_host}",,,,\n'
    events, issues = run(parser, SINKHOLE_HTTP_HEADER + row.encode(), "2026-02-28-sinkhole_http_drone-x-asn.csv")
    assert issues == []
    (event,) = events
    return event


def test_sinkhole_request_line_becomes_url_method_and_version() -> None:
    e = _sinkhole_http("GET /search?q=0 HTTP/1.0", "sinkholed.example.net")
    assert e.source_url == "http://sinkholed.example.net/search?q=0"
    assert (e.extra["http_method"], e.extra["http_version"]) == ("GET", "HTTP/1.0")
    assert e.extra["http_path"] == "/search?q=0"
    assert e.extra["url"] == "GET /search?q=0 HTTP/1.0"  # the report's own column is kept as it was


def test_sinkhole_url_keeps_an_unusual_port_and_brackets_ipv6() -> None:
    assert (
        _sinkhole_http("POST /gate.php HTTP/1.1", "192.0.2.99", "8080").source_url == "http://192.0.2.99:8080/gate.php"
    )
    assert _sinkhole_http("GET / HTTP/1.1", "c2.example.net", "443").source_url == "https://c2.example.net/"
    assert _sinkhole_http("GET /x HTTP/1.1", "2001:db8::5").source_url == "http://[2001:db8::5]/x"
    assert _sinkhole_http("GET /x HTTP/1.1", "c2.example.net:81", "81").source_url == "http://c2.example.net:81/x"


@pytest.mark.parametrize(
    ("url", "http_host"),
    [
        ("GET /search?q=0 HTTP/1.0", ""),  # no host: the path stays in extra
        ("GET * HTTP/1.1", "sinkholed.example.net"),  # not a path
        ("GET", "sinkholed.example.net"),  # a method alone
        ("GET /a b HTTP/1.1", "sinkholed.example.net"),  # not a request line
        ("GET /x HTTP/1.1", "bad host.example.net"),
    ],
)
def test_no_url_is_made_from_a_request_line_without_a_usable_host(url: str, http_host: str) -> None:
    assert _sinkhole_http(url, http_host).source_url is None


def test_absolute_request_target_is_the_url() -> None:
    e = _sinkhole_http("GET http://proxied.example.net/a HTTP/1.1", "sinkholed.example.net")
    assert e.source_url == "http://proxied.example.net/a"
