"""Simple list feeds: blocklists, bot lists and URL lists that CERTs and vendors publish as text.

Recognised by their content (sniffing):

- ``spamhaus_drop``   Spamhaus DROP/EDROP: ``; Spamhaus DROP List`` then ``<prefix> ; SBL<n>`` lines
- ``spamhaus_cert``   Spamhaus CERT portal: ``; ip, asn, country, lastseen, botname, ...`` then CSV rows
- ``cymru_infected``  Team Cymru CAP: ``# Format: report|ip|asn|timestamp|comments|asn_name``
- ``dataplane``       DataPlane.org: ``# DataPlane.org`` header, ``asn | asname | ip | lastseen | category`` rows
- ``zoneh``           Zone-H defacement CSV (header with ``defacement_id`` and ``hackmode``)
- ``microsoft_ctip``  Microsoft CTIP Interflow (JSON list) and CTIP Azure (JSON lines with ``DataFeed``)
- ``feodotracker``    abuse.ch Feodo Tracker's "Browse Botnet C&Cs" HTML page: the table with ``Firstseen`` and
  ``Host`` columns, read with the stdlib ``html.parser`` (one C&C server per row)

Not recognisable from content (a bare list of addresses or URLs looks the same whoever publishes it); these need
``meta["feed"]`` set by the drop-folder or channel configuration:

- ``blocklist.de``  one address per line; the list name (``meta["list"]`` or the file name: ssh, imap, mail ...)
  gives the kind
- ``openphish``     one URL per line, kind ``phishing``
- ``ip_list`` / ``url_list``  one address / URL per line, kind from ``meta["kind"]`` (default ``blocklisted``)
- ``generic_csv``   a delimited file described by ``meta["columns"]`` (catalogue names such as ``time.source``,
  ``source.ip``, ``source.url``, ``source.fqdn``; empty or ``__IGNORE__`` to skip a column), ``meta["delimiter"]``
  (default ``,``), ``meta["kind"]``, ``meta["skip_header"]``

Times without a zone are UTC. A list without times uses the time the input was received.
"""

from __future__ import annotations

import contextlib
import csv
import email.utils
import ipaddress
import itertools
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from abusedesk.domain.errors import ParseError
from abusedesk.domain.ipnet import is_ip
from abusedesk.domain.kinds import KINDS
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers import textstream
from abusedesk.parsers.base import Parser, Report, clean_field, port_field

Item = Event | ParseIssue
_EMPTY = frozenset({"", "-", "?", "na", "n/a", "none", "null"})

# --- kind tables (ours) -------------------------------------------------------------------------------------------

SPAMHAUS_CERT_KINDS: dict[str, str] = {
    "openrelay": "open-relay",
    "proxyget": "open-proxy",
    "sshauth": "brute-force",
    "telnetauth": "brute-force",
    "smtpauth": "brute-force",
    "imap": "brute-force",
    "w_wplogin": "brute-force",
    "wpscanner": "vulnerability-scan",
    "iotscan": "scan",
    "iotrdp": "scan",
    "l_spamlink": "spam",
    "extortion": "spam",
    "authspoofbadehlo": "header-forgery",
    "misc": "other",
}
CYMRU_KINDS: dict[str, str] = {
    "bruteforce": "brute-force",
    "openresolvers": "open-resolver",
    "phishing": "phishing",
    "proxy": "open-proxy",
    "spam": "spam",
    "bots": "infected-host",
    "malwareurl": "malware",
    "scanners": "scan",
    "darknet": "scan",
    "ddos": "dos",
}
DATAPLANE_KINDS: dict[str, str] = {
    "sshpwauth": "brute-force",
    "telnetlogin": "brute-force",
    "sipregistration": "brute-force",
    "sipinvitation": "scan",
    "sipquery": "scan",
    "sshclient": "scan",
    "vncrfb": "scan",
    "dnsrd": "scan",
    "dnsrdany": "scan",
    "dnsversion": "scan",
    "smtpdata": "spam",
    "smtpgreet": "scan",
    "proto41": "other",
}
BLOCKLISTDE_KINDS: dict[str, str] = {
    "ssh": "brute-force",
    "ftp": "brute-force",
    "imap": "brute-force",
    "pop3": "brute-force",
    "sip": "brute-force",
    "bruteforcelogin": "brute-force",
    "strongips": "brute-force",
    "mail": "spam",
    "apache": "sql-injection",
    "bots": "spam",
    "ircbot": "botnet",
    "all": "blocklisted",
}


@dataclass(frozen=True, slots=True)
class FeedFormat:
    name: str
    sniff: Callable[[Report], bool] | None
    parse: Callable[[Report, str], Iterator[Item]]


def _clean(value: str | None) -> str | None:
    return clean_field(value, _EMPTY)


def _port(value: str | None) -> int | None:
    return port_field(value, _EMPTY)


def _utc(text: str) -> datetime:
    """``2017-10-31 10:00:00`` (UTC) or ISO 8601 with a zone; raises ValueError."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    t = datetime.fromisoformat(s)
    try:
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"time {text!r} is out of range") from None


def _address(text: str) -> tuple[str | None, str | None]:
    """(address, prefix) for an address or CIDR; (None, None) when neither."""
    t = text.strip()
    if "/" in t:
        try:
            net = ipaddress.ip_network(t, strict=False)
        except ValueError:
            return None, None
        return str(net.network_address), str(net)
    return (t, None) if is_ip(t) else (None, None)


def _lines(report: Report) -> Iterator[tuple[int, str]]:
    """``report.text.lstrip("\ufeff").splitlines()`` numbered from 1, read as a stream; each line ticks the
    input's deadline (issue 9 item 3)."""
    tick = report.budget.tick
    for n, line in enumerate(textstream.strip_bom(report.lines()), start=1):
        tick(report.filename)
        yield n, line


def _csv_lines(report: Report) -> Iterator[str]:
    """The input's lines with their line ends, as ``io.StringIO(report.text.lstrip("\ufeff"), newline="")`` gives
    them to csv, read as a stream; each ticks the deadline."""
    tick = report.budget.tick
    with report.text_stream() as text:
        for line in textstream.strip_bom(text, keep_empty=False):
            tick(report.filename)
            yield line


def _event(feed: str, line: int | None, **fields: Any) -> Item:
    try:
        return Event.create(feed=feed, **fields)
    except ValueError as exc:
        return ParseIssue(f"entry cannot be used: {exc}", line=line)


# --- Spamhaus DROP / EDROP ----------------------------------------------------------------------------------------

_DROP_LINE = re.compile(r"^\s*([0-9A-Fa-f:.]+/\d{1,3})\s*;\s*(SBL\d+)\s*$")


def _sniff_drop(report: Report) -> bool:
    head = report.head.decode("latin-1")
    if re.match(r"^\s*;\s*Spamhaus (?:E?DROP|IPv6 DROP)", head, re.IGNORECASE):
        return True
    lines = [ln for ln in head.splitlines()[:20] if ln.strip() and not ln.lstrip().startswith(";")]
    return bool(lines) and all(_DROP_LINE.match(ln) for ln in lines[:-1] or lines)


def _parse_drop(report: Report, feed: str) -> Iterator[Item]:
    when = report.raw.received_at
    with report.text_stream() as text:
        head = text.read(4096)
    m = re.search(r"^;\s*Last-Modified:\s*(.+)$", head, re.MULTILINE)
    if m:
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            when = email.utils.parsedate_to_datetime(m.group(1).strip()).astimezone(UTC)
    for n, line in _lines(report):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        m2 = _DROP_LINE.match(line)
        if not m2:
            yield ParseIssue("not a '<prefix> ; SBL<n>' line", line=n)
            continue
        ip, prefix = _address(m2.group(1))
        if ip is None:
            yield ParseIssue(f"{m2.group(1)!r} is not an IP prefix", line=n)
            continue
        yield _event(
            feed,
            n,
            kind="blocklisted",
            time=when,
            reporter="spamhaus.org",
            source_ip=ip,
            confidence=0.9,
            extra={"source_network": prefix, "sbl": m2.group(2), "list": "drop"},
        )


# --- Spamhaus CERT ------------------------------------------------------------------------------------------------

_CERT_HEADER = re.compile(r"^\s*;\s*ip,\s*asn,\s*country,\s*lastseen,\s*botname", re.IGNORECASE)
_CERT_COLS = (
    "ip",
    "asn",
    "country",
    "lastseen",
    "botname",
    "domain",
    "remote_ip",
    "remote_port",
    "local_port",
    "protocol",
)


def _sniff_cert(report: Report) -> bool:
    return bool(_CERT_HEADER.match(report.head.decode("latin-1")))


def _parse_cert(report: Report, feed: str) -> Iterator[Item]:
    for n, line in _lines(report):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        row = [c.strip() for c in line.split(",")]
        if len(row) < 5:
            yield ParseIssue(f"row has {len(row)} fields, at least 5 expected (ip .. botname)", line=n)
            continue
        row += [""] * (len(_CERT_COLS) - len(row))
        rec = dict(zip(_CERT_COLS, row[: len(_CERT_COLS)], strict=True))
        try:
            when = datetime.fromtimestamp(int(rec["lastseen"]), tz=UTC)
        except (ValueError, OverflowError, OSError):
            yield ParseIssue(f"lastseen {rec['lastseen']!r} is not a Unix time", line=n)
            continue
        bot = rec["botname"].lower()
        kind = SPAMHAUS_CERT_KINDS.get(bot, "infected-host")
        remote = _clean(rec["remote_ip"])
        domain = _clean(rec["domain"])
        extra: dict[str, Any] = {
            k: v
            for k, v in (
                ("asn", rec["asn"]),
                ("country", rec["country"]),
                ("botname", rec["botname"]),
                ("domain", domain),
                ("remote", remote),
            )
            if v
        }
        if kind == "other":
            extra["triage"] = True
        yield _event(
            feed,
            n,
            kind=kind,
            time=when,
            reporter="spamhaus.org",
            source_ip=rec["ip"],
            source_port=_port(rec["local_port"]),
            destination_ip=remote if remote and is_ip(remote) else None,
            destination_port=_port(rec["remote_port"]),
            transport=_clean(rec["protocol"]),
            source_url=domain if domain and domain.startswith(("http://", "https://")) else None,
            confidence=0.8,
            extra=extra,
        )


# --- Team Cymru ---------------------------------------------------------------------------------------------------


def _sniff_cymru(report: Report) -> bool:
    return "# Format: report|ip|asn|timestamp|comments|asn_name" in report.head.decode("latin-1")


def _parse_cymru(report: Report, feed: str) -> Iterator[Item]:
    for n, line in _lines(report):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("|", 5)
        if len(parts) < 4:
            yield ParseIssue("not a 'report|ip|asn|timestamp|comments|asn_name' line", line=n)
            continue
        parts += [""] * (6 - len(parts))
        category, ip, asn, stamp, comment, asname = (p.strip() for p in parts)
        try:
            when = _utc(stamp)
        except ValueError:
            yield ParseIssue(f"timestamp {stamp!r} is not a date and time", line=n)
            continue
        kind = CYMRU_KINDS.get(category.lower(), "other")
        extra: dict[str, Any] = {"report": category, "asn": asn, "as_name": asname}
        fields: dict[str, Any] = {}
        if comment:
            extra["comment"] = comment
            if category == "phishing" and comment.startswith(("http://", "https://")):
                fields["source_url"] = comment
            for key, attr in (("srcport", "source_port"), ("destaddr", "destination_ip")):
                m = re.search(rf"\b{key} (\S+)", comment)
                if m:
                    fields[attr] = m.group(1)
            m = re.search(r"\bmwtype (\S+)", comment)
            if m:
                extra["malware"] = m.group(1)
        if kind == "other":
            extra["triage"] = True
        yield _event(
            feed,
            n,
            kind=kind,
            time=when,
            reporter="team-cymru.com",
            source_ip=ip,
            confidence=0.8,
            extra=extra,
            **fields,
        )


# --- DataPlane.org ------------------------------------------------------------------------------------------------


def _sniff_dataplane(report: Report) -> bool:
    return bool(re.match(r"^#\s*DataPlane\.org", report.head.decode("latin-1")))


def _parse_dataplane(report: Report, feed: str) -> Iterator[Item]:
    for n, line in _lines(report):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 5:
            yield ParseIssue("not an 'asn | asname | ip | lastseen | category' line", line=n)
            continue
        # the AS name may itself contain '|': count the fixed fields from both ends
        asn, category, stamp, ip = parts[0], parts[-1], parts[-2], parts[-3]
        asname = " | ".join(parts[1:-3])
        try:
            when = _utc(stamp)
        except ValueError:
            yield ParseIssue(f"lastseen {stamp!r} is not a date and time", line=n)
            continue
        kind = DATAPLANE_KINDS.get(category.lower(), "scan")
        yield _event(
            feed,
            n,
            kind=kind,
            time=when,
            reporter="dataplane.org",
            source_ip=ip,
            confidence=0.7,
            extra={"category": category, "asn": asn, "as_name": asname},
        )


# --- Zone-H -------------------------------------------------------------------------------------------------------


def _sniff_zoneh(report: Report) -> bool:
    first = report.head.split(b"\n", 1)[0].lower()
    return b"defacement_id" in first and b"hackmode" in first and b"ip_address" in first


def _parse_zoneh(report: Report, feed: str) -> Iterator[Item]:
    reader = csv.DictReader(_csv_lines(report))
    try:
        for rec in reader:
            n = reader.line_num
            try:
                when = _utc(rec.get("add_date") or "")
            except ValueError:
                yield ParseIssue(f"add_date {rec.get('add_date')!r} is not a date and time", line=n)
                continue
            url = _clean(rec.get("domain"))
            if url and "://" not in url:
                url = "http://" + url
            extra = {
                k: v
                for k in ("attacker", "hackmode", "reason", "defacement_id", "system", "web_server")
                if (v := _clean(rec.get(k)))
            }
            yield _event(
                feed,
                n,
                kind="compromised-host",
                time=when,
                reporter="zone-h.org",
                source_ip=_clean(rec.get("ip_address")),
                source_url=url,
                confidence=0.7,
                extra=extra | {"defacement": True},
            )
    except csv.Error as exc:
        raise ParseError(f"the Zone-H CSV cannot be read: {exc}", line=reader.line_num) from None


# --- Microsoft CTIP -----------------------------------------------------------------------------------------------

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def _sniff_ctip(report: Report) -> bool:
    head = report.head.lstrip()
    return (head.startswith(b"[") and b'"indicatorthreattype"' in head) or (
        head.startswith(b"{") and b'"DataFeed"' in head and b"CTIP" in head
    )


def _parse_ctip(report: Report, feed: str) -> Iterator[Item]:
    lines = textstream.stripped_lines(report.lines())  # report.text.strip().splitlines(), streamed
    first = next(lines, "")
    records: Iterator[tuple[int | None, Any]]
    if first.startswith("["):
        # a JSON list is read whole (bounded by intake.max_input_bytes); JSON lines are streamed
        try:
            data = json.loads(report.text.strip())
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"the CTIP JSON list cannot be read (truncated or malformed): {exc}") from None
        if not isinstance(data, list):
            raise ParseError("the CTIP input is not a JSON list")
        records = ((None, r) for r in data)
    else:
        records = _json_lines(itertools.chain([first], lines), report)
    for i, (n, rec) in enumerate(records, start=1):
        if isinstance(rec, ParseIssue):
            yield rec
            continue
        if not isinstance(rec, dict):
            yield ParseIssue(f"record {i} is not a JSON object", line=n)
            continue
        if "networksourceipv4" in rec or "indicatorthreattype" in rec:
            yield from _ctip_interflow(rec, i, feed)
        else:
            yield from _ctip_azure(rec, i, n, feed)


def _json_lines(lines: Iterator[str], report: Report) -> Iterator[tuple[int | None, Any]]:
    for ln, line in enumerate(lines, start=1):
        report.budget.tick(report.filename)
        if line.strip():
            try:
                yield ln, json.loads(line)
            except (ValueError, RecursionError) as exc:
                yield ln, ParseIssue(f"line is not JSON: {exc}", line=ln)


def _ctip_interflow(rec: dict[str, Any], i: int, feed: str) -> Iterator[Item]:
    try:
        when = _utc(str(rec.get("firstreporteddatetime") or ""))
    except ValueError:
        yield ParseIssue(f"record {i}: firstreporteddatetime {rec.get('firstreporteddatetime')!r} is not a time")
        return
    kind = "infected-host" if str(rec.get("indicatorthreattype", "")).lower() == "botnet" else "threat-intel"
    dst = str(rec.get("networkdestinationipv4") or "").split(",")[0].strip() or None
    conf = rec.get("confidence")
    extra = {k: rec[k] for k in ("externalid", "description", "tlplevel", "networksourceasn") if rec.get(k)}
    yield _event(
        feed,
        None,
        kind=kind,
        time=when,
        reporter="microsoft.com",
        source_ip=rec.get("networksourceipv4"),
        source_port=rec.get("networksourceport"),
        destination_ip=dst if dst and is_ip(dst) else None,
        destination_port=rec.get("networkdestinationport"),
        confidence=min(1.0, max(0.0, float(conf) / 100)) if isinstance(conf, int | float) else 0.7,
        extra=extra | {"identity": i},
    )


def _ctip_azure(rec: dict[str, Any], i: int, n: int | None, feed: str) -> Iterator[Item]:
    ticks = rec.get("DateTimeReceivedUtc")
    if not isinstance(ticks, int):
        yield ParseIssue(f"record {i}: DateTimeReceivedUtc is missing or not a number", line=n)
        return
    try:
        when = _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError:
        yield ParseIssue(f"record {i}: DateTimeReceivedUtc {ticks} is out of range", line=n)
        return
    level = str(rec.get("ThreatConfidence", "")).lower()
    extra = {k: rec[k] for k in ("DataFeed", "Malware", "ThreatCode", "TLP", "TotalEncounters") if rec.get(k)}
    yield _event(
        feed,
        n,
        kind="infected-host",
        time=when,
        reporter="microsoft.com",
        source_ip=rec.get("SourceIp"),
        source_port=rec.get("SourcePort"),
        destination_ip=rec.get("DestinationIp") or None,
        destination_port=rec.get("DestinationPort"),
        confidence={"high": 0.9, "medium": 0.7, "low": 0.5}.get(level, 0.6),
        extra=extra,
    )


# --- Feodo Tracker (abuse.ch) HTML table --------------------------------------------------------------------------

_FEODO_NAME = re.compile(rb"feodo\s*tracker")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)
_ASN = re.compile(r"^AS(\d+)\b\s*(.*)$", re.IGNORECASE)


@dataclass(slots=True)
class _Table:
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    row: list[str] | None = None
    row_line: int = 0
    cell: list[str] | None = None


class _HtmlTables(HTMLParser):
    """Every ``<table>`` of a page as rows of cell texts (whitespace collapsed, entities decoded), each with the line
    its ``<tr>`` starts on. A table inside a cell is a table of its own; the outer cell keeps only its own text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[_Table] = []
        self._open: list[_Table] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            table = _Table()
            self.tables.append(table)
            self._open.append(table)
        elif not self._open:
            return
        elif tag == "tr":
            self._end_row(self._open[-1])
            self._open[-1].row, self._open[-1].row_line = [], self.getpos()[0]
        elif tag in ("td", "th"):
            table = self._open[-1]
            self._end_cell(table)
            if table.row is None:  # a cell outside <tr>: browsers open the row, so do we
                table.row, table.row_line = [], self.getpos()[0]
            table.cell = []
        elif tag == "br" and self._open[-1].cell is not None:
            self._open[-1].cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if not self._open:
            return
        table = self._open[-1]
        if tag in ("td", "th"):
            self._end_cell(table)
        elif tag == "tr":
            self._end_row(table)
        elif tag == "table":
            self._end_row(table)
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1].cell is not None:
            self._open[-1].cell.append(data)

    def close(self) -> None:
        super().close()
        while self._open:  # a truncated page: keep what was read
            self._end_row(self._open.pop())

    @staticmethod
    def _end_cell(table: _Table) -> None:
        if table.cell is not None and table.row is not None:
            table.row.append(" ".join("".join(table.cell).split()))
        table.cell = None

    def _end_row(self, table: _Table) -> None:
        self._end_cell(table)
        if table.row:
            table.rows.append((table.row_line, table.row))
        table.row = None


def _sniff_feodo(report: Report) -> bool:
    head = report.head.lower()
    return b"<html" in head and bool(_FEODO_NAME.search(head))


def _column(header: list[str], *prefixes: str) -> int | None:
    for i, name in enumerate(header):
        if name.lower().replace(" ", "").startswith(prefixes):
            return i
    return None


def _parse_feodo(report: Report, feed: str) -> Iterator[Item]:
    reader = _HtmlTables()
    try:
        reader.feed(report.text)
        reader.close()
    except AssertionError as exc:  # html.parser's way of refusing a malformed declaration
        raise ParseError(f"the Feodo Tracker page is not readable HTML: {exc}") from None
    for table in reader.tables:
        for pos, (_line, header) in enumerate(table.rows[:3]):
            host_i = _column(header, "host", "ipaddress", "dst_ip")
            time_i = _column(header, "firstseen")
            if host_i is not None and time_i is not None:
                yield from _feodo_rows(table.rows[pos + 1 :], header, host_i, time_i, feed)
                return
    raise ParseError(
        "the Feodo Tracker page has no table with 'Firstseen' and 'Host' columns; the format may have changed"
    )


def _feodo_rows(
    rows: list[tuple[int, list[str]]], header: list[str], host_i: int, time_i: int, feed: str
) -> Iterator[Item]:
    malware_i = _column(header, "malware")
    status_i = _column(header, "status")
    network_i = _column(header, "network", "asn")
    country_i = _column(header, "country")
    port_i = _column(header, "port", "dst_port")
    lastseen_i = _column(header, "lastonline", "lastseen")
    for n, row in rows:
        if len(row) <= max(host_i, time_i):
            yield ParseIssue(f"row has {len(row)} cells, the header has {len(header)}", line=n)
            continue
        cell = {i: _clean(v) for i, v in enumerate(row)}
        host = cell[host_i] or ""
        ip, fqdn = (host, None) if is_ip(host) else (None, host.lower() if _HOSTNAME.match(host) else None)
        if ip is None and fqdn is None:
            yield ParseIssue(f"host {host[:80]!r} is neither an address nor a host name", line=n)
            continue
        try:
            when = _utc(cell[time_i] or "")
        except ValueError:
            yield ParseIssue(f"firstseen {row[time_i][:40]!r} is not a date and time", line=n)
            continue
        extra: dict[str, Any] = {}
        for key, i in (
            ("malware", malware_i),
            ("status", status_i),
            ("country", country_i),
            ("last_online", lastseen_i),
        ):
            if i is not None and i < len(row) and cell[i]:
                extra[key] = cell[i]
        if network_i is not None and network_i < len(row) and cell[network_i]:
            m = _ASN.match(cell[network_i] or "")
            extra.update({"asn": m.group(1), "as_name": m.group(2)} if m else {"network": cell[network_i]})
        status = str(extra.get("status", "")).lower()
        yield _event(
            feed,
            n,
            kind="botnet",
            time=when,
            reporter="abuse.ch",
            source_ip=ip,
            source_fqdn=fqdn,
            source_port=_port(row[port_i]) if port_i is not None and port_i < len(row) else None,
            confidence=0.8 if status == "online" else 0.6,
            description=f"Feodo Tracker: {extra.get('malware', 'botnet')} C&C server ({status or 'status unknown'})",
            extra=extra,
        )


# --- configured lists (not sniffable) -----------------------------------------------------------------------------


def _list_name(report: Report) -> str:
    name = str(report.raw.meta.get("list") or "")
    if not name and report.filename:
        base = report.filename.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        name = base.split("__")[-1]
    return name.lower()


def _parse_ip_list(report: Report, feed: str, kind: str, reporter: str | None, extra: dict[str, Any]) -> Iterator[Item]:
    when = report.raw.received_at
    for n, line in _lines(report):
        entry = line.split("#", 1)[0].split(";", 1)[0].strip()
        if not entry:
            continue
        ip, prefix = _address(entry.split()[0])
        if ip is None:
            yield ParseIssue(f"{entry[:80]!r} is not an IP address or prefix", line=n)
            continue
        ex = dict(extra)
        if prefix:
            ex["source_network"] = prefix
        yield _event(feed, n, kind=kind, time=when, reporter=reporter, source_ip=ip, confidence=0.7, extra=ex)


def _parse_url_list(report: Report, feed: str, kind: str, reporter: str | None) -> Iterator[Item]:
    when = report.raw.received_at
    for n, line in _lines(report):
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        if not re.match(r"^[a-z][a-z0-9+.-]*://\S+$", url, re.IGNORECASE):
            yield ParseIssue(f"{url[:80]!r} is not a URL", line=n)
            continue
        yield _event(feed, n, kind=kind, time=when, reporter=reporter, source_url=url, confidence=0.7)


def _kind_from_meta(report: Report, default: str) -> str:
    kind = str(report.raw.meta.get("kind") or default)
    if kind not in KINDS:
        raise ParseError(f"meta 'kind' {kind!r} is not a known event kind; check the channel configuration")
    return kind


def _parse_blocklistde(report: Report, feed: str) -> Iterator[Item]:
    name = _list_name(report)
    kind = BLOCKLISTDE_KINDS.get(name, "blocklisted")
    yield from _parse_ip_list(report, feed, kind, "blocklist.de", {"list": name} if name else {})


def _parse_openphish(report: Report, feed: str) -> Iterator[Item]:
    yield from _parse_url_list(report, feed, "phishing", "openphish.com")


def _parse_configured_ip_list(report: Report, feed: str) -> Iterator[Item]:
    yield from _parse_ip_list(report, feed, _kind_from_meta(report, "blocklisted"), report.raw.meta.get("reporter"), {})


def _parse_configured_url_list(report: Report, feed: str) -> Iterator[Item]:
    yield from _parse_url_list(report, feed, _kind_from_meta(report, "blocklisted"), report.raw.meta.get("reporter"))


_GENERIC_FIELDS = {
    "source.ip": "source_ip",
    "source.port": "source_port",
    "source.url": "source_url",
    "source.fqdn": "source_fqdn",
    "destination.ip": "destination_ip",
    "destination.port": "destination_port",
    "protocol.transport": "transport",
    "protocol.application": "application",
    "event.description": "description",
}


def _parse_generic_csv(report: Report, feed: str) -> Iterator[Item]:
    meta = report.raw.meta
    columns = meta.get("columns")
    if not isinstance(columns, list) or not columns:
        raise ParseError("feed generic_csv needs meta 'columns' (a list of field names) in the channel configuration")
    unknown = [
        c
        for c in columns
        if c
        and c != "__IGNORE__"
        and c != "time.source"
        and c not in _GENERIC_FIELDS
        and not str(c).startswith("extra.")
    ]
    if unknown:
        raise ParseError(f"generic_csv columns {unknown} are not catalogue fields; check the channel configuration")
    kind = _kind_from_meta(report, "other")
    delimiter = str(meta.get("delimiter") or ",")
    numbers: deque[int] = deque()  # the line number of each line handed to csv, taken as its row comes out

    def content_lines() -> Iterator[str]:
        skip = bool(meta.get("skip_header"))
        for n, ln in _lines(report):
            if not ln.strip() or ln.strip().startswith("#"):
                continue
            if skip:
                skip = False
                continue
            numbers.append(n)
            yield ln

    reader = csv.reader(content_lines(), delimiter=delimiter)
    taken = 0
    try:
        for row in reader:
            n = numbers.popleft()  # the row's first line; a quoted field may have taken more lines
            for _ in range(reader.line_num - taken - 1):
                numbers.popleft()
            taken = reader.line_num
            rec = {c: v.strip() for c, v in zip(columns, row, strict=False) if c and c != "__IGNORE__"}
            when = report.raw.received_at
            if rec.get("time.source"):
                try:
                    when = _utc(rec["time.source"])
                except ValueError:
                    yield ParseIssue(f"time.source {rec['time.source']!r} is not a date and time", line=n)
                    continue
            fields = {attr: rec[name] for name, attr in _GENERIC_FIELDS.items() if _clean(rec.get(name))}
            url = fields.get("source_url")
            if url and "://" not in url:
                fields["source_url"] = "http://" + url
            extra = {k[6:]: v for k, v in rec.items() if k.startswith("extra.") and v}
            yield _event(
                feed, n, kind=kind, time=when, reporter=meta.get("reporter"), confidence=0.6, extra=extra, **fields
            )
    except csv.Error as exc:
        raise ParseError(f"the CSV cannot be read: {exc}") from None


#: sniffable formats first, in the order they are tried; then the ones only meta["feed"] selects
FORMATS: tuple[FeedFormat, ...] = (
    FeedFormat("spamhaus_drop", _sniff_drop, _parse_drop),
    FeedFormat("spamhaus_cert", _sniff_cert, _parse_cert),
    FeedFormat("cymru_infected", _sniff_cymru, _parse_cymru),
    FeedFormat("dataplane", _sniff_dataplane, _parse_dataplane),
    FeedFormat("zoneh", _sniff_zoneh, _parse_zoneh),
    FeedFormat("microsoft_ctip", _sniff_ctip, _parse_ctip),
    FeedFormat("feodotracker", _sniff_feodo, _parse_feodo),
    FeedFormat("blocklist.de", None, _parse_blocklistde),
    FeedFormat("openphish", None, _parse_openphish),
    FeedFormat("ip_list", None, _parse_configured_ip_list),
    FeedFormat("url_list", None, _parse_configured_url_list),
    FeedFormat("generic_csv", None, _parse_generic_csv),
)
_BY_NAME = {f.name: f for f in FORMATS}
_BY_NAME["blocklistde"] = _BY_NAME["blocklist.de"]


def _feed_from_filename(filename: str | None) -> str | None:
    """``openphish__2026-02-28.txt`` names its feed before ``__``: the drop-folder way to say ``meta.feed``."""
    if not filename or "__" not in filename:
        return None
    return filename.rsplit("/", 1)[-1].split("__", 1)[0].lower() or None


class ListFeedParser(Parser):
    """Blocklists, bot lists and URL lists (Spamhaus DROP and CERT, Team Cymru, DataPlane, Zone-H, Microsoft CTIP,
    Feodo Tracker's C&C table, and, when the channel names the feed, blocklist.de, OpenPhish and generic IP/URL
    lists or CSV).

    Flags each listed address or URL with the feed's kind (blocklisted, infected host, brute force, phishing ...).
    For: anyone subscribed to these feeds about their own networks. False positives: lists are third-party
    opinions; confidence is below that of a direct report, and a listed prefix is attributed by its first address
    (``extra.source_network`` keeps the prefix).
    """

    name = "listfeeds"
    priority = 70

    def _format(self, report: Report) -> FeedFormat | None:
        configured = report.raw.meta.get("feed") or _feed_from_filename(report.filename)
        if configured and str(configured).lower() in _BY_NAME:
            return _BY_NAME[str(configured).lower()]
        if report.message is not None and not report.head.lstrip().startswith((b";", b"#", b"[", b"{")):
            return None
        for fmt in FORMATS:
            if fmt.sniff is not None and fmt.sniff(report):
                return fmt
        return None

    def recognises(self, report: Report) -> bool:
        return self._format(report) is not None

    def parse(self, report: Report) -> Iterator[Item]:
        fmt = self._format(report)
        if fmt is None:
            raise ParseError(
                "not a list feed this parser knows (no Spamhaus/Cymru/DataPlane/Zone-H/CTIP header nor Feodo Tracker "
                "page, and no "
                "meta 'feed' naming blocklist.de, openphish, ip_list, url_list or generic_csv)",
                source=report.filename,
                parser=self.name,
            )
        events = 0
        issues = 0
        try:
            for item in fmt.parse(report, fmt.name):
                if isinstance(item, Event):
                    events += 1
                else:
                    issues += 1
                yield item
        except ParseError as exc:
            exc.parser = self.name
            if exc.source is None:
                exc.source = report.filename
            raise
        if not events and issues and fmt.sniff is not None:
            raise ParseError(
                f"feed {fmt.name}: none of the entries could be read; the format may have changed",
                source=report.filename,
                parser=self.name,
            )
