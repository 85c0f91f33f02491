from __future__ import annotations

import json
from pathlib import Path

import pytest

from abusedesk.domain.errors import ParseError
from abusedesk.domain.kinds import KINDS
from abusedesk.parsers.intelmq import TAXONOMY_TO_KIND, TYPE_TO_KIND, IntelmqParser, kind_for
from tests.parsers.feedsupport import make_report, run
from tests.support.components import missing

SCANNER = {
    "__type": "Event",
    "feed.name": "Example CERT honeypots",
    "feed.provider": "cert.example.net",
    "feed.accuracy": 90.0,
    "classification.taxonomy": "information-gathering",
    "classification.type": "scanner",
    "classification.identifier": "ssh-scan",
    "source.ip": "192.0.2.15",
    "source.port": 40022,
    "destination.port": 22,
    "protocol.transport": "tcp",
    "protocol.application": "ssh",
    "time.source": "2026-02-28T10:00:00+00:00",
    "time.observation": "2026-02-28T10:05:00+00:00",
    "extra.count": 17,
    "raw": "c29tZSByYXcgbGluZQ==",
}
RESOLVER = {
    "classification": {"taxonomy": "vulnerable", "type": "vulnerable-system", "identifier": "dns-open-resolver"},
    "source": {"ip": "2001:db8::53", "port": 53},
    "time": {"observation": "2026-02-28T11:00:00Z"},
    "feed": {"name": "Open resolvers"},
}

parser = IntelmqParser()


def test_json_lines_flat_and_hierarchical() -> None:
    data = (json.dumps(SCANNER) + "\n" + json.dumps(RESOLVER) + "\n").encode()
    assert parser.recognises(make_report(data))
    events, issues = run(parser, data)
    assert issues == []
    scan, resolver = events
    assert (scan.kind, scan.source_ip, scan.source_port, scan.destination_port) == ("scan", "192.0.2.15", 40022, 22)
    assert scan.time.isoformat() == "2026-02-28T10:00:00+00:00" and scan.confidence == 0.9
    assert scan.reporter == "cert.example.net" and scan.transport == "tcp" and scan.application == "ssh"
    assert scan.extra["extra.count"] == 17 and scan.extra["raw_present"] is True and "raw" not in scan.extra
    assert (resolver.kind, resolver.source_ip) == ("open-resolver", "2001:db8::53")
    assert resolver.time.isoformat() == "2026-02-28T11:00:00+00:00"  # time.observation when no time.source


def test_json_list() -> None:
    events, _ = run(parser, json.dumps([SCANNER, SCANNER | {"source.ip": "192.0.2.16"}]).encode())
    assert [e.source_ip for e in events] == ["192.0.2.15", "192.0.2.16"]


def test_table_maps_to_known_kinds() -> None:
    assert set(TYPE_TO_KIND.values()) <= set(KINDS)
    assert set(TAXONOMY_TO_KIND.values()) <= set(KINDS)
    assert kind_for({"classification.type": "c2-server"}) == ("botnet", True)
    assert kind_for({"classification.taxonomy": "fraud", "classification.type": "new-type"}) == ("fraud", True)
    assert kind_for(
        {"classification.type": "potentially-unwanted-accessible", "classification.identifier": "open-socks"}
    ) == (
        "open-proxy",
        True,
    )
    assert kind_for({"classification.type": "undetermined"}) == ("other", False)


def test_unknown_classification_goes_to_triage() -> None:
    events, _ = run(parser, json.dumps(SCANNER | {"classification.type": "x", "classification.taxonomy": "y"}).encode())
    assert events[0].kind == "other" and events[0].extra["triage"] is True


def test_bad_lines_are_issues() -> None:
    data = (
        json.dumps(SCANNER)
        + "\n{not json\n"
        + json.dumps({"a": 1})
        + "\n"
        + json.dumps(SCANNER | {"time.source": "yesterday"})
        + "\n"
        + json.dumps(SCANNER | {"source.ip": "192.0.2.999"})
        + "\n"
        + json.dumps({k: v for k, v in SCANNER.items() if not k.startswith("time")})
        + "\n[1]\n"
    ).encode()
    events, issues = run(parser, data)
    assert len(events) == 1
    assert [i.line for i in issues] == [2, 3, 4, 5, 6, 7]
    assert "not JSON" in issues[0].reason and "no classification" in issues[1].reason
    assert "ISO 8601" in issues[2].reason and "source.ip" in issues[3].reason
    assert "neither time.source" in issues[4].reason and "not a JSON object" in issues[5].reason


@pytest.mark.parametrize("data", [b"[" + json.dumps(SCANNER).encode(), b"{garbage\n{more garbage\n", b"", b'{"a": 1}'])
def test_unreadable_inputs(data: bytes) -> None:
    if data == b'{"a": 1}':
        events, issues = run(parser, data)
        assert events == [] and issues
        return
    with pytest.raises(ParseError):
        run(parser, data)


def test_not_recognised() -> None:
    assert not parser.recognises(make_report(b'{"xarf_version": "4.2.0", "category": "messaging"}'))
    assert not parser.recognises(make_report(b"timestamp,ip\n"))
    assert not parser.recognises(make_report(b'[{"indicatorthreattype": "Botnet"}]'))


def test_docs_list_the_classification_table() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "reference" / "formats-feeds.md").read_text()
    for ctype, kind in TYPE_TO_KIND.items():
        assert f"| `{ctype}` | `{kind}` |" in page, ctype


def test_every_intelmq_classification_type_is_in_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against IntelMQ's own harmonisation (intelmq is a dev dependency), so a new IntelMQ type shows up here."""
    for sub in ("var/lib/bots", "etc", "var/log", "var/run"):
        (tmp_path / sub).mkdir(parents=True)
    monkeypatch.setenv("INTELMQ_ROOT_DIR", str(tmp_path))  # intelmq reads it at import
    try:
        from intelmq.lib.harmonization import ClassificationType
    except ImportError:
        missing("intelmq (dev extra) is not installed")
    assert set(ClassificationType.allowed_values) <= set(TYPE_TO_KIND)
