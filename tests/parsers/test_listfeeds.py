from __future__ import annotations

import json

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.domain.kinds import KINDS
from abusedesk.parsers import listfeeds
from abusedesk.parsers.listfeeds import ListFeedParser
from tests.parsers.feedsupport import make_report, run

parser = ListFeedParser()

DROP = b"""; Spamhaus DROP List 2026/02/28 - (c) 2026 The Spamhaus Project
; Last-Modified: Sat, 28 Feb 2026 04:39:22 GMT
192.0.2.0/24 ; SBL000001
2001:db8::/32 ; SBL000002
"""
CERT = b"""; ip, asn, country, lastseen, botname, domain, remote_ip, remote_port, local_port, protocol
192.0.2.20,AS64496,ZZ,1772272800,conficker,sinkhole.example.net,203.0.113.5,80,1036,tcp
192.0.2.21,AS64496,ZZ,1772272800,openrelay,,,25,,tcp
192.0.2.22,AS64496,ZZ,1772272800,sshauth,,203.0.113.6,22,,tcp
192.0.2.23,AS64496,ZZ,1772272800,misc
192.0.2.24,AS64496,ZZ,notatime,misc
; EOF
"""
CYMRU = b"""# Data file written at Sat Feb 28 13:37:42 2026 GMT
# Format: report|ip|asn|timestamp|comments|asn_name
bots|192.0.2.30|64496|2026-02-28 10:00:05|srcport 1337 mwtype Conficker destaddr 203.0.113.7|Example AS
phishing|192.0.2.31|64496|2026-02-28 10:00:02|http://www.example.net/login|Example AS
openresolvers|192.0.2.32|64496|2026-02-28 10:00:01||Example AS | with pipe
weird|192.0.2.33|64496|2026-02-28 10:00:01||Example AS
broken line
"""
DATAPLANE = b"""# DataPlane.org - for operators, by operators
# sshpwauth
64496  |  EXAMPLE-AS | with | pipes  |  192.0.2.40  |  2026-02-28 04:26:48  |  sshpwauth
NA     |  NA                        |  192.0.2.41  |  2026-02-28 04:26:49  |  vncrfb
64496 | x
"""
ZONEH = (
    b'"add_date","accept_date","attacker","domain","ip_address","system","web_server","reason","hackmode",'
    b'"defacement_id"\n"2026-02-28 11:56:00","2026-02-28 13:20:21","someone","http://defaced.example.net",'
    b'"192.0.2.50","Linux","Apache","fun","SQL Injection","1"\n'
)
CTIP = json.dumps(
    [
        {
            "indicatorthreattype": "Botnet",
            "firstreporteddatetime": "2026-02-28T09:37:02",
            "networksourceipv4": "192.0.2.60",
            "networksourceport": 1204,
            "confidence": 80,
            "networkdestinationipv4": "203.0.113.9, 203.0.113.9",
            "networkdestinationport": 443,
        }
    ]
).encode()
CTIP_AZURE = json.dumps(
    {
        "DataFeed": "CTIP-Infected",
        "DateTimeReceivedUtc": 132348339284870000,
        "Malware": "Avalanche",
        "ThreatConfidence": "Low",
        "SourceIp": "192.0.2.61",
        "SourcePort": 65116,
        "DestinationIp": "203.0.113.10",
        "DestinationPort": 80,
    }
).encode()


def test_kind_tables_use_known_kinds() -> None:
    for table in (
        listfeeds.SPAMHAUS_CERT_KINDS,
        listfeeds.CYMRU_KINDS,
        listfeeds.DATAPLANE_KINDS,
        listfeeds.BLOCKLISTDE_KINDS,
    ):
        assert set(table.values()) <= set(KINDS)


def test_spamhaus_drop() -> None:
    assert parser.recognises(make_report(DROP))
    events, issues = run(parser, DROP)
    assert issues == []
    assert [(e.source_ip, e.extra["source_network"], e.extra["sbl"]) for e in events] == [
        ("192.0.2.0", "192.0.2.0/24", "SBL000001"),
        ("2001:db8::", "2001:db8::/32", "SBL000002"),
    ]
    assert events[0].kind == "blocklisted" and events[0].time.isoformat() == "2026-02-28T04:39:22+00:00"


def test_spamhaus_cert() -> None:
    events, issues = run(parser, CERT)
    assert [e.kind for e in events] == ["infected-host", "open-relay", "brute-force", "other"]
    bot = events[0]
    assert (bot.source_ip, bot.source_port, bot.destination_ip, bot.destination_port) == (
        "192.0.2.20",
        1036,
        "203.0.113.5",
        80,
    )
    assert bot.time.isoformat() == "2026-02-28T10:00:00+00:00" and bot.extra["botname"] == "conficker"
    assert events[3].extra["triage"] is True
    assert [i.line for i in issues] == [6] and "Unix time" in issues[0].reason


def test_cymru() -> None:
    events, issues = run(parser, CYMRU)
    assert [e.kind for e in events] == ["infected-host", "phishing", "open-resolver", "other"]
    assert events[0].source_port == 1337 and events[0].destination_ip == "203.0.113.7"
    assert events[0].extra["malware"] == "Conficker"
    assert events[1].source_url == "http://www.example.net/login"
    assert events[2].extra["as_name"] == "Example AS | with pipe"
    assert [i.line for i in issues] == [7]


def test_dataplane_as_name_with_pipes() -> None:
    events, issues = run(parser, DATAPLANE)
    assert [(e.kind, e.source_ip) for e in events] == [("brute-force", "192.0.2.40"), ("scan", "192.0.2.41")]
    assert events[0].extra["as_name"] == "EXAMPLE-AS | with | pipes"
    assert [i.line for i in issues] == [5]


def test_zoneh() -> None:
    (e,), _ = run(parser, ZONEH)
    assert (e.kind, e.source_ip, e.source_url) == ("compromised-host", "192.0.2.50", "http://defaced.example.net")
    assert e.extra["defacement"] is True


def test_ctip_both_shapes() -> None:
    (a,), _ = run(parser, CTIP)
    assert (a.kind, a.source_ip, a.destination_ip, a.confidence) == ("infected-host", "192.0.2.60", "203.0.113.9", 0.8)
    (b,), _ = run(parser, CTIP_AZURE)
    assert b.source_ip == "192.0.2.61" and b.time.isoformat().startswith("2020-05-24T22:45:28")
    assert b.confidence == 0.5


def test_plain_ip_list_needs_configured_feed() -> None:
    data = b"192.0.2.70\n192.0.2.71 # comment\n\nnot-an-ip\n198.51.100.0/24\n"
    assert not parser.recognises(make_report(data))
    events, issues = run(parser, data, "blocklistde__ssh.txt", feed="blocklist.de")
    assert [e.source_ip for e in events] == ["192.0.2.70", "192.0.2.71", "198.51.100.0"]
    assert {e.kind for e in events} == {"brute-force"} and events[0].extra["list"] == "ssh"
    assert events[0].time.isoformat() == "2026-03-01T10:00:00+00:00"
    assert [i.line for i in issues] == [4]
    events, _ = run(parser, data, feed="blocklist.de", list="mail")
    assert events[0].kind == "spam"
    events, _ = run(parser, data, feed="ip_list", kind="scan")
    assert events[0].kind == "scan"
    with pytest.raises(ParseError, match="not a known event kind"):
        run(parser, data, feed="ip_list", kind="nonsense")


def test_openphish_and_url_list() -> None:
    data = b"http://phish.example.net/login\nhttps://example.com/x?y=1\nnot a url\n"
    events, issues = run(parser, data, feed="openphish")
    assert [e.source_url for e in events] == ["http://phish.example.net/login", "https://example.com/x?y=1"]
    assert events[0].kind == "phishing" and len(issues) == 1
    events, _ = run(parser, data, feed="url_list", kind="malware")
    assert events[0].kind == "malware"


def test_generic_csv() -> None:
    data = b"# comment\n  # indented comment\n2026-02-28 04:19:00\tx\tfiles.example.net/a.zip\t192.0.2.80\tnote\n"
    cols = ["time.source", "", "source.url", "source.ip", "extra.comment"]
    (e,), _ = run(parser, data, feed="generic_csv", delimiter="\t", kind="malware", columns=cols)
    assert (e.kind, e.source_ip, e.source_url) == ("malware", "192.0.2.80", "http://files.example.net/a.zip")
    assert e.extra["comment"] == "note"
    with pytest.raises(ParseError, match="needs meta 'columns'"):
        run(parser, data, feed="generic_csv")
    with pytest.raises(ParseError, match="not catalogue fields"):
        run(parser, data, feed="generic_csv", columns=["source.nonsense"])


@pytest.mark.parametrize("data", [CTIP[:40], b"[1, 2", b"; ip, asn, country, lastseen, botname\nx\ny\n"])
def test_unreadable(data: bytes) -> None:
    with pytest.raises(ParseError):
        run(parser, data)


def test_unknown_input_not_recognised() -> None:
    assert not parser.recognises(make_report(b"<html><body>table</body></html>"))
    with pytest.raises(ParseError, match="not a list feed"):
        run(parser, b"hello\n")


def test_docs_list_the_kind_tables() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "reference" / "formats-feeds.md").read_text()
    for table in (
        listfeeds.SPAMHAUS_CERT_KINDS,
        listfeeds.CYMRU_KINDS,
        listfeeds.DATAPLANE_KINDS,
        listfeeds.BLOCKLISTDE_KINDS,
    ):
        for key, kind in table.items():
            assert f"| `{key}` | `{kind}` |" in page, key


def test_feed_named_by_file_name_prefix() -> None:
    data = b"http://phish.example.net/login\n"
    assert parser.recognises(make_report(data, "openphish__2026-02-28.txt"))
    events, _ = run(parser, data, "incoming/openphish__2026-02-28.txt")
    assert events[0].kind == "phishing" and events[0].feed == "openphish"
    events, _ = run(parser, b"192.0.2.9\n", "blocklist.de__mail.txt")
    assert events[0].kind == "spam" and events[0].extra["list"] == "mail"
    assert not parser.recognises(make_report(data, "notes__2026.txt"))


FEODO = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Feodo Tracker | Browse Botnet C&amp;Cs</title>
<script>var x = "<table><tr><td>not a table</td></tr></table>";</script></head>
<body><h1>Browse Botnet C&amp;Cs</h1>
<table id="layout"><tr><td>navigation</td></tr></table>
<table id="botnet_c2s" class="table">
  <thead>
    <tr role="row"><th>Firstseen (UTC)</th><th>Host</th><th>Port</th><th>Malware</th><th>Status</th>
    <th>Network (ASN)</th><th>Country</th></tr>
  </thead>
  <tbody>
  <tr><td>2026-02-28 14:56:05</td><td><a href="https://feodotracker.example/browse/host/192.0.2.90/">192.0.2.90</a></td>
      <td>443</td><td><center><span><i class="fas fa-bug"></i> Dridex</span></center></td>
      <td><center><span><i></i>  Online</span></center></td><td>AS64496 EXAMPLE-AS Example&nbsp;Net</td>
      <td><img src="zz.png" title="ZZ"> ZZ</td></tr>
<tr><td>2026-02-28 14:56:04</td><td>2001:db8::91</td><td></td><td>Emotet</td><td>Offline</td><td>n/a</td><td></td></tr>
  <tr><td>2026-02-28 14:56:03</td><td>C2.Example.NET</td><td>8080</td><td>TrickBot</td><td>Online</td>
      <td>AS64497</td><td>ZZ</td></tr>
  <tr><td>yesterday</td><td>192.0.2.92</td><td></td><td>Dridex</td><td>Online</td><td></td><td></td></tr>
  <tr><td>2026-02-28 14:56:01</td><td>not a host!</td><td></td><td>Dridex</td><td>Online</td><td></td><td></td></tr>
  <tr><td>2026-02-28 14:56:00</td></tr>
  </tbody>
</table></body></html>
"""


def test_feodo_tracker_table() -> None:
    report = make_report(FEODO, "browse.html")
    assert parser.recognises(report)
    events, issues = run(parser, FEODO, "browse.html")
    assert [(e.kind, e.source_ip, e.source_fqdn, e.source_port) for e in events] == [
        ("botnet", "192.0.2.90", None, 443),
        ("botnet", "2001:db8::91", None, None),
        ("botnet", None, "c2.example.net", 8080),
    ]
    first = events[0]
    assert first.feed == "feodotracker" and first.reporter == "abuse.ch"
    assert first.time.isoformat() == "2026-02-28T14:56:05+00:00"
    assert first.extra == {
        "malware": "Dridex",
        "status": "Online",
        "country": "ZZ",
        "asn": "64496",
        "as_name": "EXAMPLE-AS Example Net",  # &nbsp; decoded, whitespace collapsed
    }
    assert first.confidence == 0.8 and events[1].confidence == 0.6  # an offline C&C is older news
    assert events[1].extra == {"malware": "Emotet", "status": "Offline"}  # "n/a" is no network
    assert [(i.line, i.reason.split(" ")[0]) for i in issues] == [(19, "firstseen"), (20, "host"), (21, "row")]


def test_feodo_tracker_page_without_its_table_or_cut_short() -> None:
    no_table = b"<!DOCTYPE html><html><head><title>Feodo Tracker</title></head><body><p>maintenance</p></body></html>"
    with pytest.raises(ParseError, match="no table with 'Firstseen' and 'Host' columns"):
        run(parser, no_table)
    cut = FEODO[: FEODO.index(b"2001:db8::91")]  # the page stops inside the second row
    events, issues = run(parser, cut)
    assert [e.source_ip for e in events] == ["192.0.2.90"]
    assert [i.line for i in issues] == [16]  # the half row is named, not guessed


def test_feodo_table_found_by_its_columns_not_by_position() -> None:
    page = (
        b"<html><title>Feodo Tracker</title><table><tr><th>Host</th><th>Firstseen</th></tr>"
        b"<tr><td>198.51.100.93</td><td>2026-02-28T10:00:00Z</td></tr></table>"
    )
    (event,), _ = run(parser, page)
    assert (event.source_ip, event.time.isoformat()) == ("198.51.100.93", "2026-02-28T10:00:00+00:00")
    assert event.extra == {}


def test_other_html_is_not_a_feodo_page() -> None:
    page = b"<html><title>Some list</title><table><tr><th>Host</th><th>Firstseen</th></tr></table></html>"
    assert not parser.recognises(make_report(page))
