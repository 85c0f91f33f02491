"""The AbuseHub parser: recognised by its CSV (name or header), one event per row, kinds by report type, times
with AbuseHub's zone (the mail text's offset, else Europe/Amsterdam with summer time)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from pydantic import ValidationError

from abusedesk.domain.errors import ParseError
from abusedesk.domain.kinds import KINDS
from abusedesk.parsers.abusehub import REPORT_TYPES, AbusehubParser
from abusedesk.plugins import load_parsers, sniff
from tests.parsers.feedsupport import make_report, run

parser = AbusehubParser()

HEADER = (
    "reliable_notifier,report_type,infection_type,event_date,event_time,src_asn,src_ip,src_port,protocol,"
    "original_hotmail_recipient,hotmail_reporting_ip,dst_asn,dst_ip,dst_port,agent_id,src_url,dst_url,src_email,"
    "dst_email,src_hostname,dst_hostname,correlation_score1,correlation_score2,correlation_score3,"
    "correlation_score4,priority"
)


def row(report_type: str, date: str, time: str, ip: str, *, port: str = "", proto: str = "", url: str = "") -> str:
    fields = ['"Notifier"', f'"{report_type}"', "", date, time, "64496", ip, port, proto]
    fields += ["", "", "", "", "", "", url, "", "", "", "", "", "", "", "", "", "medium"]
    return ",".join(fields)


def csv_bytes(*rows: str) -> bytes:
    return (HEADER + "\n" + "\n".join(rows) + "\n").encode()


def mail(
    csv_data: bytes,
    *,
    csv_name: str = "abusehubcsv-1.0.0_1.0.0_2026-03-02T12:00:00+01:00.csv",
    text: str = "Hello Abuse-Team,\n",
    notifier: tuple[str, bytes] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = "reports@reports.example.net"
    msg["To"] = "abuse@example.com"
    msg["Subject"] = "[Abusehub] [192.0.2.1] Incident Report"
    msg["Date"] = "Mon, 02 Mar 2026 12:00:00 +0100"
    msg["Message-ID"] = "<hub-1@example.net>"
    msg.set_content(text)
    msg.add_attachment(csv_data, maintype="text", subtype="csv", filename=csv_name)
    if notifier:
        msg.add_attachment(notifier[1], maintype="text", subtype="csv", filename=notifier[0])
    return msg.as_bytes()


def test_every_report_type_maps_to_a_known_kind() -> None:
    assert all(t.kind in KINDS and 0 < t.confidence <= 1 for t in REPORT_TYPES.values())
    assert all(name == name.lower() for name in REPORT_TYPES)


@pytest.mark.parametrize(
    ("report_type", "kind", "role"),
    [
        ("Shadowserver Botnet Drone", "infected-host", "actor"),
        ("ShadowServer Open Memcached Server Report", "open-service", "exposed"),  # case as AbuseHub spells it
        ("Shadowserver Open DNS Resolvers", "open-resolver", "exposed"),
        ("Shadowserver Command and Control", "botnet", "actor"),
        ("Shadowserver Compromised Website", "compromised-host", "actor"),
        ("Shadowserver SSLv3/Poodle Vulnerable Servers", "vulnerable-service", "exposed"),
        ("Hotmail FBL", "spam", "actor"),
        ("Shadowserver Botnet DDOS", "other", "unknown"),  # attacker or target? an analyst decides
    ],
)
def test_kind_by_report_type(report_type: str, kind: str, role: str) -> None:
    (event,), _ = run(parser, csv_bytes(row(report_type, "2026-01-15", "10:00:00", "192.0.2.1")))
    assert (event.kind, event.extra["role"]) == (kind, role)
    assert ("triage" in event.extra) is (kind == "other")


def test_unknown_report_type_goes_to_triage_with_one_issue() -> None:
    data = csv_bytes(*(row("Brand New Feed", "2026-01-15", f"10:00:0{i}", f"192.0.2.{i}") for i in range(1, 4)))
    events, issues = run(parser, data)
    assert [e.kind for e in events] == ["other"] * 3
    assert all(e.extra["triage"] is True for e in events)
    assert [i.reason for i in issues] == [
        "AbuseHub report type 'Brand New Feed' is unknown to abusedesk; its rows are parsed as kind 'other' for triage"
    ]


def test_fields_of_a_row() -> None:
    data = csv_bytes(row("Shadowserver Botnet Drone", "2026-01-15", "10:00:00", "192.0.2.7", port="2005", proto="UDP"))
    (event,), issues = run(parser, data)
    assert issues == []
    assert (event.source_ip, event.source_port, event.transport) == ("192.0.2.7", 2005, "udp")
    assert event.feed == "abusehub" and event.reporter == "abusehub.nl"  # a bare file: no sender
    assert event.extra["reliable_notifier"] == "Notifier" and event.extra["src_asn"] == "64496"
    assert "src_ip" not in event.extra  # typed fields are not repeated in extra


@pytest.mark.parametrize(
    ("date", "time", "utc", "offset"),
    [
        ("2026-01-15", "10:00:00", datetime(2026, 1, 15, 9, 0, tzinfo=UTC), "+01:00"),  # winter
        ("2026-07-15", "10:00:00", datetime(2026, 7, 15, 8, 0, tzinfo=UTC), "+02:00"),  # summer time
        ("2026-03-29", "01:30:00", datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "+01:00"),  # the night it changes
        ("2026-03-29", "03:30:00", datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "+02:00"),
    ],
)
def test_local_time_without_text_uses_amsterdam(date: str, time: str, utc: datetime, offset: str) -> None:
    (event,), _ = run(parser, mail(csv_bytes(row("Shadowserver Botnet Drone", date, time, "192.0.2.1"))))
    assert event.time == utc
    assert (event.extra["time_zone"], event.extra["utc_offset"]) == ("Europe/Amsterdam", offset)


def test_offset_from_the_mail_text_wins_when_it_names_the_same_local_time() -> None:
    text = "abuse from 192.0.2.1 (event time 2026-07-15 10:00:00 +01:00).\n"  # AbuseHub said +01:00, not +02:00
    (event,), _ = run(
        parser, mail(csv_bytes(row("Shadowserver Botnet Drone", "2026-07-15", "10:00:00", "192.0.2.1")), text=text)
    )
    assert event.time == datetime(2026, 7, 15, 9, 0, tzinfo=UTC)
    assert (event.extra["time_zone"], event.extra["utc_offset"]) == ("report text", "+01:00")
    other = "abuse from 192.0.2.1 (event time 2026-07-14 10:00:00 +01:00).\n"  # another time: not ours to use
    (event,), _ = run(
        parser, mail(csv_bytes(row("Shadowserver Botnet Drone", "2026-07-15", "10:00:00", "192.0.2.1")), text=other)
    )
    assert event.extra["time_zone"] == "Europe/Amsterdam"


def test_a_zone_in_the_csv_itself_is_kept() -> None:
    (event,), _ = run(parser, csv_bytes(row("Shadowserver Botnet Drone", "2026-07-15", "10:00:00-05:00", "192.0.2.1")))
    assert event.time == datetime(2026, 7, 15, 15, 0, tzinfo=UTC)
    assert event.extra["time_zone"] == "csv"


def test_params_timezone() -> None:
    utc_parser = AbusehubParser(AbusehubParser.Params(timezone="UTC"))
    (event,), _ = run(utc_parser, csv_bytes(row("Shadowserver Botnet Drone", "2026-07-15", "10:00:00", "192.0.2.1")))
    assert event.time == datetime(2026, 7, 15, 10, 0, tzinfo=UTC)
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        AbusehubParser.Params(timezone="Mars/Olympus_Mons")


def test_mail_carries_reporter_message_id_and_the_notifiers_record() -> None:
    notifier = (
        "00000000-0000-4000-8000-000000000001.csv",
        b'"timestamp","ip","cc"\n"2026-01-15 09:00:00","192.0.2.1","203.0.113.4"\n',
    )
    data = mail(csv_bytes(row("Shadowserver Botnet Drone", "2026-01-15", "10:00:00", "192.0.2.1")), notifier=notifier)
    (event,), _ = run(parser, data)
    assert event.reporter == "reports@reports.example.net"
    assert event.extra["message_id"] == "<hub-1@example.net>"
    assert event.extra["notifier_file"] == notifier[0]
    assert event.extra["notifier_record"] == {
        "timestamp": "2026-01-15 09:00:00",
        "ip": "192.0.2.1",
        "cc": "203.0.113.4",
    }


def test_recognised_by_header_when_the_file_has_another_name() -> None:
    data = mail(
        csv_bytes(row("Shadowserver Botnet Drone", "2026-01-15", "10:00:00", "192.0.2.1")), csv_name="event.csv"
    )
    assert parser.recognises(make_report(data))
    assert len(run(parser, data)[0]) == 1


def test_sniffing_picks_abusehub_even_beside_a_shadowserver_named_file() -> None:
    """AbuseHub passes the notifier's file along: a Shadowserver-named CSV must not win the sniffing."""
    notifier = (
        "2026-01-15-botnet_drone-example-asn.csv",
        b'"timestamp","ip","port"\n"2026-01-15 09:00:00","192.0.2.1",1\n',
    )
    data = mail(csv_bytes(row("Shadowserver Botnet Drone", "2026-01-15", "10:00:00", "192.0.2.1")), notifier=notifier)
    chosen = sniff(make_report(data), load_parsers())
    assert chosen is not None and chosen.name == "abusehub"
    bare = csv_bytes(row("Shadowserver Botnet Drone", "2026-01-15", "10:00:00", "192.0.2.1"))
    chosen = sniff(make_report(bare, "upload.csv"), load_parsers())
    assert chosen is not None and chosen.name == "abusehub"


@pytest.mark.parametrize(
    "data",
    [
        b"From: reports@reports.example.net\nSubject: [Abusehub] hello\n\nno attachment here 192.0.2.1\n",
        b'"timestamp","ip","port"\n"2026-01-15 09:00:00","192.0.2.1",1\n',
    ],
)
def test_other_inputs_are_not_recognised(data: bytes) -> None:
    assert not parser.recognises(make_report(data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (HEADER.encode() + b"\n", "the AbuseHub CSV has a header and no rows"),
        (HEADER.replace("event_time", "when").encode() + b"\n", "column 'event_time' missing in the AbuseHub CSV"),
        (csv_bytes(row("Shadowserver Botnet Drone", "yesterday", "10:00", "192.0.2.1")), "yielded no event from 1 row"),
        (b"From: a@example.net\nSubject: x\n\nhello\n", "no AbuseHub CSV"),
        (b"just text\n", "not an AbuseHub report"),
    ],
)
def test_unreadable_inputs_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        run(parser, data)


def test_bad_rows_are_issues_and_the_rest_parse() -> None:
    data = csv_bytes(
        row("Shadowserver Botnet Drone", "2026-01-15", "10:00:00", "192.0.2.1"),
        row("Shadowserver Botnet Drone", "2026-01-15", "10:00:00", ""),  # no subject at all
        row("Shadowserver Botnet Drone", "2026-01-15", "10:00:00", "192.0.2.999"),
        row("Shadowserver Botnet Drone", "2026-01-15", "10:00:00", "192.0.2.2") + ",too,many",
        row("Shadowserver Compromised Website", "2026-01-15", "10:00:00", "", url="www.example.net/x"),
    )
    events, issues = run(parser, data)
    assert [(e.source_ip, e.source_url) for e in events] == [("192.0.2.1", None), (None, "http://www.example.net/x")]
    assert [i.line for i in issues] == [3, 4, 5]
    assert "names no subject" in issues[0].reason and "source.ip" in issues[1].reason
    assert "fields" in issues[2].reason


def test_deterministic_ids_and_distinct_rows() -> None:
    data = csv_bytes(
        row("Shadowserver Botnet Drone", "2026-01-15", "10:00:00", "192.0.2.1"),
        row("Shadowserver Botnet Drone", "2026-01-15", "10:00:00", "192.0.2.2"),
    )
    first, _ = run(parser, data)
    again, _ = run(parser, data)
    assert [e.id for e in first] == [e.id for e in again]
    assert len({e.id for e in first}) == 2
