"""The feed and legal-notice parsers against the shared corpus (read in place from ../shared/corpus).

Each table gives, per file: the number of events, the kind and the first reported address (or URL). The
Shadowserver table notes IntelMQ 3.5.0's result from the corpus MANIFEST beside ours; the files where they differ
are explained there. ``DRIFT`` marks files that must be quarantined as schema drift (the corpus keeps two report
files that lost their ``port`` column).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers.acns import AcnsParser
from abusedesk.parsers.base import Parser
from abusedesk.parsers.dmca import DmcaParser
from abusedesk.parsers.listfeeds import ListFeedParser
from abusedesk.parsers.shadowserver import ShadowserverParser
from abusedesk.plugins import load_parsers, sniff
from tests.parsers.feedsupport import make_report

pytestmark = pytest.mark.corpus

REPORTS = "reports"
DRIFT = ("drift",)
Expect = tuple[int, str, str | None] | tuple[str]

# file (without .csv) -> (events, kind, first source ip); IntelMQ 3.5.0 with the current schema in the comment
SHADOWSERVER: dict[str, Expect] = {
    "blocklist": (3, "blocklisted", "198.123.245.134"),  # IntelMQ: 3 events
    "compromised_website": (3, "compromised-host", "203.0.113.1"),  # IntelMQ: 3 events
    "device_id": (3, "other", "88.84.0.0"),  # IntelMQ: 3 events
    "event4_ddos_participant": (3, "dos", "192.168.0.1"),  # IntelMQ: 3 events
    "event4_honeypot_brute_force": (6, "brute-force", "141.98.1.2"),  # IntelMQ: 6 events
    "event4_honeypot_darknet": (8, "scan", "61.3.1.2"),  # IntelMQ: 8 events
    "event4_honeypot_ddos": (3, "dos", "192.168.0.1"),  # IntelMQ: 3 events
    "event4_honeypot_ddos_amp": (4, "dos", "107.141.1.2"),  # IntelMQ: 5 events
    "event4_honeypot_ddos_target": (3, "dos", "192.168.0.1"),  # IntelMQ: 3 events
    "event4_honeypot_http_scan": (2, "vulnerability-scan", "191.23.45.67"),  # IntelMQ: 2 events
    "event4_ip_spoofer": (6, "spoofed-source", "98.191.250.0"),  # IntelMQ: 6 events
    "event4_microsoft_sinkhole": (6, "infected-host", "190.229.1.2"),  # IntelMQ: 6 events
    "event4_microsoft_sinkhole_http": (5, "infected-host", "31.206.1.2"),  # IntelMQ: 5 events
    "event4_sinkhole": (3, "infected-host", "190.113.1.2"),  # IntelMQ: 3 events
    "event4_sinkhole_dns": (3, "infected-host", "217.110.0.0"),  # IntelMQ: 3 events
    "event4_sinkhole_http": (5, "infected-host", "103.196.1.2"),  # IntelMQ: 5 events
    "event4_sinkhole_http_referer": (5, "infected-host", "178.162.203.211"),  # IntelMQ: 5 events
    "event6_sinkhole_http": (3, "infected-host", "2001:448a:1082:4d9b:7491:bf9e:3d5f:a634"),  # IntelMQ: 3 events
    "malware_url": DRIFT,  # IntelMQ: 0 events, 3 line errors
    "phish_url": (
        3,
        "other",
        "172.245.0.0",
    ),  # IntelMQ: rejected: ValueError("Could not get a config for 'phish_url', check th
    "population_http_proxy": (3, "open-proxy", "192.168.0.1"),  # IntelMQ: 3 events
    "sandbox_conn": (3, "malware", "40.119.6.228"),  # IntelMQ: 3 events
    "sandbox_dns": (3, "threat-intel", None),  # IntelMQ: 3 events
    "sandbox_url": DRIFT,  # IntelMQ: 0 events, 3 line errors
    "scan_adb": (2, "open-service", "36.239.124.210"),  # IntelMQ: 2 events
    "scan_afp": (2, "open-service", "198.13.34.22"),  # IntelMQ: 2 events
    "scan_amqp": (3, "open-service", "47.103.0.0"),  # IntelMQ: 3 events
    "scan_ard": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_chargen": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_cisco_smart_install": (2, "open-service", "198.51.100.103"),  # IntelMQ: 2 events
    "scan_coap": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_couchdb": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_cwmp": (2, "open-service", "198.123.245.142"),  # IntelMQ: 2 events
    "scan_db2": (2, "open-service", "192.168.0.1"),  # IntelMQ: 2 events
    "scan_ddos_middlebox": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_dns": (100, "open-resolver", "198.51.100.179"),  # IntelMQ: 100 events
    "scan_docker": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_dvr_dhcpdiscover": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_elasticsearch": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_exchange": (7, "vulnerable-service", "12.237.1.2"),  # IntelMQ: 7 events
    "scan_ftp": (2, "open-service", "61.126.3.70"),  # IntelMQ: 2 events
    "scan_hadoop": (2, "open-service", "199.116.235.200"),  # IntelMQ: 2 events
    "scan_http": (2, "open-service", "75.74.78.113"),  # IntelMQ: 2 events
    "scan_http_proxy": (3, "open-proxy", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_http_vulnerable": (3, "vulnerable-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_ics": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_ipmi": (95, "open-service", "198.51.100.4"),  # IntelMQ: 95 events
    "scan_ipp": (1, "open-service", "123.45.67.89"),  # IntelMQ: 1 events
    "scan_isakmp": (2, "vulnerable-service", "198.123.245.42"),  # IntelMQ: 2 events
    "scan_kubernetes": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_ldap_tcp": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_ldap_udp": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_mdns": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_memcached": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_mongodb": (10, "open-service", "198.51.100.203"),  # IntelMQ: 10 events
    "scan_mqtt": (1, "open-service", "18.220.0.0"),  # IntelMQ: 1 events
    "scan_mqtt_anon": (3, "open-service", "47.106.0.0"),  # IntelMQ: 3 events
    "scan_mssql": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_mysql": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_nat_pmp": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_netbios": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_netis_router": (3, "vulnerable-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_ntp": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_ntpmonitor": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_portmapper": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_postgres": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_qotd": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_quic": (3, "open-service", "176.255.0.0"),  # IntelMQ: 3 events
    "scan_radmin": (9, "open-service", "74.101.218.75"),  # IntelMQ: 9 events
    "scan_rdp": (2, "open-service", "198.123.245.178"),  # IntelMQ: 2 events
    "scan_rdpeudp": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_redis": (93, "open-service", "198.51.100.152"),  # IntelMQ: 93 events
    "scan_rsync": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_sip": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_slp": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_smb": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_smtp_vulnerable": (2, "vulnerable-service", "1.2.3.4"),  # IntelMQ: 2 events
    "scan_snmp": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_socks": (3, "open-proxy", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_ssdp": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_ssh": (3, "open-service", "18.179.0.0"),  # IntelMQ: 3 events
    "scan_ssl": (3, "open-service", "96.60.0.0"),  # IntelMQ: 3 events
    "scan_ssl_freak": (45, "vulnerable-service", "198.51.100.232"),  # IntelMQ: 45 events
    "scan_ssl_poodle": (31, "vulnerable-service", "203.0.113.85"),  # IntelMQ: 31 events
    "scan_stun": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_synfulknock": (3, "compromised-host", "66.9.0.0"),  # IntelMQ: 3 events
    "scan_telnet": (2, "open-service", "198.123.245.145"),  # IntelMQ: 2 events
    "scan_tftp": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_ubiquiti": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_vnc": (2, "open-service", "198.123.245.53"),  # IntelMQ: 2 events
    "scan_ws_discovery": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "scan_xdmcp": (3, "open-service", "192.168.0.1"),  # IntelMQ: 3 events
    "special": (3, "vulnerable-service", "192.168.0.1"),  # IntelMQ: 3 events
}

SHADOWSERVER_MAILS: dict[str, Expect] = {
    "2015-01-01-dns_openresolver-sample-asn.csv.zip.eml": (5, "open-resolver", "208.70.149.107"),
    "2015-01-01-scan_ipmi-sample-asn.csv.zip.eml": (9, "open-service", "199.238.169.219"),
    "2015-01-01-scan_memcached-sample-asn.csv.zip.eml": (9, "open-service", "167.160.165.190"),
    "2015-01-01-scan_mssql-sample-asn.csv.zip.eml": (10, "open-service", "110.88.113.98"),
    "2015-01-01-scan_nat_pmp-sample-asn.csv.zip.eml": (7, "open-service", "177.9.199.160"),
    "2015-01-01-scan_netbios-sample-asn.csv.zip.eml": (8, "open-service", "118.232.245.224"),
    "2015-01-01-scan_ntp-sample-asn.csv.zip.eml": (9, "open-service", "76.22.142.205"),
    "2015-01-01-scan_ntpmonitor-sample-asn.csv.zip.eml": (11, "open-service", "218.161.57.7"),
    "2015-01-01-scan_redis-sample-asn.csv.zip.eml": (13, "open-service", "98.126.92.5"),
    "2015-01-01-scan_snmp-sample-asn.csv.zip.eml": (10, "open-service", "129.113.21.93"),
    "2015-01-01-scan_ssdp-sample-asn.csv.zip.eml": (9, "open-service", "67.193.128.173"),
    "2015-01-01-sinkhole_http_drone-sample-asn.csv.zip.eml": (8, "infected-host", "202.86.21.11"),
    "2019-01-06-scan_afp-sample-ip.csv.zip.eml": (2, "open-service", "127.0.6.59"),
    "2019-10-15-scan_dns-sample-asn.csv.zip.eml": (1, "open-resolver", "31.42.105.195"),
    "2019-10-15-scan_ftp-sample-asn.csv.zip.eml": (1, "open-service", "31.42.105.195"),
    "2019-10-15-scan_http-sample-asn.csv.zip.eml": (1, "open-service", "31.42.105.195"),
    "2019-10-15-scan_ldap_tcp-sample-asn.csv.zip.eml": (1, "open-service", "31.42.105.195"),
    "2019-10-15-scan_rsync-sample-asn.csv.zip.eml": (1, "open-service", "31.42.105.195"),
}
ACNS: dict[str, Expect] = {
    "ip-echelon/ip-echelon_sample1.eml": (1, "copyright-p2p", "192.168.2.200"),
    "ip-echelon/ip-echelon_sample10.eml": (1, "copyright-p2p", "192.168.3.3"),
    "ip-echelon/ip-echelon_sample11.eml": (1, "copyright-p2p", "192.168.3.3"),
    "ip-echelon/ip-echelon_sample12.eml": (1, "copyright-p2p", "192.168.3.3"),
    "ip-echelon/ip-echelon_sample13.eml": (1, "copyright-p2p", "192.168.3.3"),
    "ip-echelon/ip-echelon_sample14.eml": (1, "copyright-p2p", "192.168.3.6"),
    "ip-echelon/ip-echelon_sample15.eml": (1, "copyright-p2p", "192.168.3.6"),
    "ip-echelon/ip-echelon_sample16.eml": (1, "copyright-p2p", "192.168.3.3"),
    "ip-echelon/ip-echelon_sample2.eml": (1, "copyright-p2p", "192.168.2.212"),
    "ip-echelon/ip-echelon_sample3.eml": (1, "copyright-p2p", "192.168.2.100"),
    "ip-echelon/ip-echelon_sample4.eml": (1, "copyright-p2p", "192.168.2.100"),
    "ip-echelon/ip-echelon_sample5.eml": (1, "copyright-p2p", "192.168.2.200"),
    "ip-echelon/ip-echelon_sample6.eml": (1, "copyright-p2p", "192.168.3.2"),
    "ip-echelon/ip-echelon_sample7.eml": (1, "copyright-p2p", "192.168.3.2"),
    "ip-echelon/ip-echelon_sample8.eml": (1, "copyright-p2p", "192.168.3.2"),
    "ip-echelon/ip-echelon_sample9.eml": (1, "copyright-p2p", "192.168.3.2"),
    "copyrightcompliance/Copyrightcompliance_Example_1.eml": (1, "copyright-p2p", "10.0.2.100"),
    "copyrightcompliance/Copyrightcompliance_Example_2.eml": (1, "copyright-p2p", "fdf1:cb9d:f59e:19b0:2:3:ff33:345"),
}
# intelmq-3.5.0-parser-testdata: file -> (meta, expectation); a feed that cannot be sniffed is named by meta
# or by the file name's '<feed>__' prefix
GENERIC_COLUMNS = ["time.source", "", "", "", "", "source.url", "source.ip", "source.fqdn", "extra.comment"]
LISTFEEDS: dict[str, tuple[dict[str, object], Expect]] = {
    "blocklistde__imap.txt": ({}, (6, "brute-force", "192.0.2.4")),  # feed from the file name
    "cymru__infected_20171031.txt": ({}, (9, "brute-force", "172.16.0.21")),
    "dataplane__sshpwauth.txt": ({}, (3, "brute-force", "170.239.104.183")),
    "html_table__feodotracker.html": ({}, (2, "botnet", "94.177.255.18")),  # sniffed: Feodo Tracker's C&C table
    "generic__sample_report.csv": (
        {"feed": "generic_csv", "delimiter": "\t", "kind": "malware", "columns": GENERIC_COLUMNS},
        (2, "malware", "198.105.221.5"),
    ),
    "microsoft__ctip.txt": ({}, (5, "infected-host", "224.0.5.8")),
    "microsoft__ctip_azure.txt": ({}, (6, "infected-host", "224.0.5.8")),
    "openphish__feed.txt": ({}, (2, "phishing", "http://www..example.com/phishing")),  # ditto
    "spamhaus__cert.txt": ({}, (19, "infected-host", "109.126.64.2")),
    "spamhaus__drop.txt": ({}, (2, "blocklisted", "1.4.0.0")),
    "zoneh__defacement_accepted.csv": ({}, (2, "compromised-host", "203.0.113.1")),
}


def outcome(parser: Parser, path: Path, **meta: object) -> tuple[Expect, list[ParseIssue]]:
    report = make_report(path.read_bytes(), path.name, **meta)
    assert parser.recognises(report), f"{parser.name} does not recognise {path.name}"
    try:
        items = list(parser.parse(report))
    except ParseError as exc:
        error = exc.message
    else:
        error = None
    if error is not None:
        assert "schema drift" in error, error
        return DRIFT, []
    events = [i for i in items if isinstance(i, Event)]
    issues = [i for i in items if isinstance(i, ParseIssue)]
    assert events, f"no events from {path.name}: {[i.reason for i in issues]}"
    first = events[0]
    return (len(events), first.kind, first.source_ip or first.source_url), issues


def test_shadowserver_table_covers_the_corpus(corpus: Path) -> None:
    files = {p.stem for p in (corpus / REPORTS / "intelmq-shadowserver-testdata").glob("*.csv")}
    assert files == set(SHADOWSERVER)


@pytest.mark.parametrize("name", sorted(SHADOWSERVER))
def test_shadowserver_csv(corpus: Path, name: str) -> None:
    path = corpus / REPORTS / "intelmq-shadowserver-testdata" / f"{name}.csv"
    got, issues = outcome(ShadowserverParser(), path)
    assert got == SHADOWSERVER[name]
    if name == "phish_url":
        assert "retired" in issues[0].reason


@pytest.mark.parametrize("name", sorted(SHADOWSERVER_MAILS))
def test_shadowserver_zipped_in_mail(corpus: Path, name: str) -> None:
    path = corpus / REPORTS / "abuseio-notifier-samples" / "shadowserver" / name
    assert outcome(ShadowserverParser(), path)[0] == SHADOWSERVER_MAILS[name]


#: the Shadowserver files whose rows carry an HTTP request, and the URL the first event reports
SHADOWSERVER_URLS: dict[str, str | None] = {
    "intelmq-shadowserver-testdata/compromised_website.csv": "http://example.com/header.php",
    "intelmq-shadowserver-testdata/event4_microsoft_sinkhole_http.csv": "http://40.121.206.97/locator.php",
    "intelmq-shadowserver-testdata/event4_sinkhole_http_referer.csv": "http://12106.mobapptrack.com/favicon.ico",
    "intelmq-shadowserver-testdata/event6_sinkhole_http.csv": "http://devps.net/QKMSvF2hl11j%2fbMkyPbF5EpHYhd6VW",
    "intelmq-shadowserver-testdata/event4_honeypot_http_scan.csv": None,  # a path against the honeypot, no host
    "intelmq-shadowserver-testdata/phish_url.csv": "https://priceless-pare.example.net/Postal-/acec6/",
    "abuseio-notifier-samples/shadowserver/2015-01-01-sinkhole_http_drone-sample-asn.csv.zip.eml": (
        "http://149.20.56.32/search?q=0"
    ),
}


def _shadowserver_files(corpus: Path) -> list[Path]:
    base = corpus / REPORTS
    return sorted((base / "intelmq-shadowserver-testdata").glob("*.csv")) + sorted(
        (base / "abuseio-notifier-samples" / "shadowserver").glob("*.eml")
    )


def test_shadowserver_urls_are_urls_never_request_lines(corpus: Path) -> None:
    """Every Shadowserver file of the corpus: a source.url has a scheme, a host and no white space (issue 9)."""
    from urllib.parse import urlsplit

    first_urls: dict[str, str | None] = {}
    for path in _shadowserver_files(corpus):
        try:
            items = list(ShadowserverParser().parse(make_report(path.read_bytes(), path.name)))
        except ParseError:
            continue  # schema drift, checked above
        events = [i for i in items if isinstance(i, Event)]
        for e in events:
            if e.source_url is None:
                continue
            parts = urlsplit(e.source_url)
            assert parts.scheme in ("http", "https") and parts.hostname, (path.name, e.source_url)
            assert not any(c.isspace() for c in e.source_url), (path.name, e.source_url)
            assert parts.hostname.upper() not in ("GET", "POST", "HEAD"), (path.name, e.source_url)
        if any("url" in e.extra or "http_url" in e.extra for e in events):
            first_urls[path.relative_to(corpus / REPORTS).as_posix()] = events[0].source_url
    assert set(first_urls) == set(SHADOWSERVER_URLS)
    for name, want in SHADOWSERVER_URLS.items():
        got = first_urls[name]
        assert got == want if want is None else (got or "").startswith(want), (name, got)


def test_sinkhole_http_drone_request_line_is_split(corpus: Path) -> None:
    path = (
        corpus
        / REPORTS
        / "abuseio-notifier-samples"
        / "shadowserver"
        / next(n for n in SHADOWSERVER_MAILS if "sinkhole_http_drone" in n)
    )
    events = [i for i in ShadowserverParser().parse(make_report(path.read_bytes())) if isinstance(i, Event)]
    e = events[0]
    assert e.source_url == "http://149.20.56.32/search?q=0"
    assert (e.extra["http_method"], e.extra["http_version"], e.extra["http_path"]) == ("GET", "HTTP/1.0", "/search?q=0")


@pytest.mark.parametrize("name", sorted(ACNS))
def test_acns_notices(corpus: Path, name: str) -> None:
    assert outcome(AcnsParser(), corpus / REPORTS / "abuseio-notifier-samples" / name)[0] == ACNS[name]


def test_degban_dmca_notice_is_incomplete(corpus: Path) -> None:
    report = make_report((corpus / REPORTS / "ovh-cerberus-core-samples" / "sample5").read_bytes())
    items = list(DmcaParser().parse(report))
    (event,) = [i for i in items if isinstance(i, Event)]
    assert event.kind == "copyright"
    assert event.source_url == "http://www.example.com/share/file/AAAAAAAAAAAAAAAAAAAAAAAAAA/"
    assert event.extra["dmca_complete"] is False and event.extra["triage"] is True
    assert set(event.extra["dmca_missing"]) == {"work", "good_faith", "accuracy_perjury"}
    assert event.report_id == "HL55754793.8BD69-2c75-0b6d2"


@pytest.mark.parametrize("name", sorted(LISTFEEDS))
def test_list_feeds(corpus: Path, name: str) -> None:
    meta, expected = LISTFEEDS[name]
    got, _ = outcome(ListFeedParser(), corpus / REPORTS / "intelmq-3.5.0-parser-testdata" / name, **meta)
    assert got == expected


def test_feodo_tracker_page_rows(corpus: Path) -> None:
    """The saved Feodo Tracker page went to the free-text parser before (six 'blocklisted' events, among them the
    Malpedia links of its prose); its table has two C&C servers."""
    path = corpus / REPORTS / "intelmq-3.5.0-parser-testdata" / "html_table__feodotracker.html"
    report = make_report(path.read_bytes(), path.name)
    chosen = sniff(report, load_parsers())
    assert chosen is not None and chosen.name == "listfeeds"
    items = list(chosen.parse(report))
    assert [i for i in items if isinstance(i, ParseIssue)] == []
    got = [
        (e.kind, e.time.isoformat(), e.source_ip, e.extra["malware"], e.extra["status"], e.extra["asn"], e.confidence)
        for e in items
        if isinstance(e, Event)
    ]
    assert got == [
        ("botnet", "2021-05-10T14:56:05+00:00", "94.177.255.18", "Dridex", "Online", "199883", 0.8),
        ("botnet", "2021-05-10T14:56:04+00:00", "203.114.109.124", "Dridex", "Offline", "131293", 0.6),
    ]


def test_sniffing_with_every_registered_parser_picks_ours(corpus: Path) -> None:
    """Recognised by content, not by channel: the whole registry must hand these files to our parsers."""
    parsers = load_parsers()
    base = corpus / REPORTS
    expected: dict[Path, str] = {}
    expected |= {base / "intelmq-shadowserver-testdata" / f"{n}.csv": "shadowserver" for n in SHADOWSERVER}
    expected |= {base / "abuseio-notifier-samples" / "shadowserver" / n: "shadowserver" for n in SHADOWSERVER_MAILS}
    expected |= {base / "abuseio-notifier-samples" / n: "acns" for n in ACNS}
    expected[base / "ovh-cerberus-core-samples" / "sample5"] = "dmca"
    expected |= {
        base / "intelmq-3.5.0-parser-testdata" / n: "listfeeds" for n, (meta, _) in LISTFEEDS.items() if not meta
    }
    wrong = {}
    for path, name in expected.items():
        chosen = sniff(make_report(path.read_bytes(), path.name), parsers)
        if chosen is None or chosen.name != name:
            wrong[path.name] = chosen.name if chosen else None
    assert wrong == {}


@pytest.mark.parametrize(
    ("name", "status", "events", "error"),
    [
        ("scan_dns", "parsed", 100, None),
        ("malware_url", "quarantined", 0, "schema drift: report type malware_url has no column 'port'"),
        ("sandbox_url", "quarantined", 0, "schema drift: report type sandbox_url has no column 'port'"),
    ],
)
def test_schema_drift_ends_in_quarantine_through_intake(
    corpus: Path, runtime: object, name: str, status: str, events: int, error: str | None
) -> None:
    """Through the real intake door and parse stage (SQLite or PostgreSQL): drift is quarantined with its reason."""
    from abusedesk.intake.service import IntakeService

    data = (corpus / REPORTS / "intelmq-shadowserver-testdata" / f"{name}.csv").read_bytes()
    service = IntakeService(runtime)  # type: ignore[arg-type]
    accepted = service.accept(data, channel="folder", meta={"filename": f"2026-02-28-{name}-example-asn.csv"})
    outcome = service.parse(accepted.raw.id)
    assert (outcome.status, outcome.parser, len(outcome.events)) == (status, "shadowserver", events)
    if error is None:
        assert outcome.error is None
    else:
        assert outcome.error is not None and error in outcome.error
        assert [r.id for r in service.quarantined()] == [accepted.raw.id]
