"""AbuseHub reports (the Dutch Abuse Information Exchange, ``reports.abusehub.nl``): one CSV row per event.

AbuseHub collects reports from "reliable notifiers" (Shadowserver, Spamhaus, the NCSC, mailbox providers'
feedback loops ...) and sends each event to the network's owner as a signed mail (``multipart/signed``, PGP)
with two CSV attachments: ``abusehubcsv-1.0.0_<version>_<created>.csv`` in AbuseHub's own columns, and the
notifier's original record (a file named by a UUID). The AbuseHub CSV is what this parser reads; it is
recognised by that file name, or by its header (``reliable_notifier,report_type,...``) in a mail or as a bare
file, never by the sender or the channel.

Columns used (abusehubcsv 1.0.0): ``report_type`` gives the kind (``REPORT_TYPES``, our table),
``src_ip``/``src_port`` the reported address, ``protocol`` the transport, ``dst_ip``/``dst_port`` the peer,
``src_url`` and ``src_hostname`` the URL and host name; ``reliable_notifier``, ``infection_type``, the ASNs,
the correlation scores, ``priority`` and every other non-empty column are kept in ``extra``.

Time: ``event_date`` and ``event_time`` carry no zone; they are AbuseHub's local time (the samples' "event time
2015-03-02 01:45:59 +01:00" is Shadowserver's 00:45:59 UTC). The offset comes from the mail text's
"(event time YYYY-MM-DD HH:MM:SS +HH:MM)" when it names the same local time, else from ``Params.timezone``
(default ``Europe/Amsterdam``, which also gets summer time right); ``extra.time_zone`` says which.

False positives: AbuseHub forwards what its notifiers saw; sinkhole and drone reports are strong evidence of an
infected host, the "open service" reports only say a service answers, and feedback-loop reports are one
recipient's complaint. A report type we do not know becomes kind ``other`` for triage, with a ParseIssue.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from email.message import Message
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator

from abusedesk.domain.errors import ParseError
from abusedesk.domain.ipnet import is_ip
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report, clean_field, port_field

Item = Event | ParseIssue

REPORTER = "abusehub.nl"
#: abusehubcsv-1.0.0_1.0.0_2015-03-03T16:56:01+01:00.csv
_CSV_NAME = re.compile(r"^(?:.*[/\\])?abusehubcsv-[^/\\]*\.csv$", re.IGNORECASE)
_HEADER = re.compile(rb'^(?:\xef\xbb\xbf)?\s*"?reliable_notifier"?\s*,\s*"?report_type"?\s*,', re.IGNORECASE)
_TEXT_EVENT_TIME = re.compile(
    r"event time (\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2})?) ?([+-])(\d{2}):?(\d{2})", re.IGNORECASE
)
_REQUIRED = ("report_type", "src_ip", "event_date", "event_time")
_EMPTY = frozenset({"", "-", "n/a", "none", "null"})
# columns that become typed Event fields; the rest go to extra under their own names
_TYPED = frozenset({"src_ip", "src_port", "dst_ip", "dst_port", "protocol", "src_url", "src_hostname"})
_NOTIFIER_FIELDS_MAX = 40
_NOTIFIER_VALUE_MAX = 300


@dataclass(frozen=True, slots=True)
class ReportType:
    kind: str
    role: str  # actor: the address did it; exposed: it runs an abusable service; unknown: for triage
    confidence: float


def _t(kind: str, role: str = "actor", confidence: float = 0.8) -> ReportType:
    return ReportType(kind, role, confidence)


_OPEN = _t("open-service", "exposed", 0.8)
_FBL = _t("spam", "actor", 0.8)
_TRIAGE = _t("other", "unknown", 0.4)

#: AbuseHub ``report_type`` (lower case) → what it means for us. Ours, written from the report names AbuseHub
#: uses; types whose subject we cannot tell from the name (is the address the attacker or the target?) go to
#: triage rather than being guessed.
REPORT_TYPES: dict[str, ReportType] = {
    # infected machines: sinkholes and drone reports
    "shadowserver botnet drone": _t("infected-host", confidence=0.9),
    "shadowserver sinkhole http drone": _t("infected-host", confidence=0.9),
    "shadowserver microsoft sinkhole http drone": _t("infected-host", confidence=0.9),
    "kpn shadowserver drone report": _t("infected-host", confidence=0.9),
    "spamhaus bot report": _t("infected-host", confidence=0.8),
    "ncsc rat report": _t("infected-host", confidence=0.8),
    "ncsc cryptoware infections": _t("infected-host", confidence=0.8),
    # servers taken over
    "shadowserver command and control": _t("botnet", confidence=0.9),
    "shadowserver compromised website": _t("compromised-host", confidence=0.8),
    "ncsc ebury infections": _t("compromised-host", confidence=0.8),
    "ncsc mumblehard infections": _t("compromised-host", confidence=0.8),
    "ncsc mumblehartt": _t("compromised-host", confidence=0.8),
    "ncsc brobot url": _t("compromised-host", confidence=0.7),
    # services open to abuse, or vulnerable
    "shadowserver open proxy": _t("open-proxy", "exposed", 0.9),
    "shadowserver open dns resolvers": _t("open-resolver", "exposed", 0.9),
    "shadowserver open snmp": _OPEN,
    "shadowserver open netbios": _OPEN,
    "shadowserver open ssdp": _OPEN,
    "shadowserver open chargen": _OPEN,
    "shadowserver open qotd": _OPEN,
    "shadowserver ntp version": _OPEN,
    "shadowserver ntp monitor": _OPEN,
    "shadowserver ipmi": _OPEN,
    "shadowserver vulnerable nat-pmp systems report": _OPEN,
    "shadowserver open memcached server report": _OPEN,
    "shadowserver open redis servers report": _OPEN,
    "shadowserver open ms-sql server resolution service report": _OPEN,
    "shadowserver open mongodb service report": _OPEN,
    "shadowserver open elasticsearch server report": _OPEN,
    "ncsc mongodb report": _OPEN,
    "shadowserver sslv3/poodle vulnerable servers": _t("vulnerable-service", "exposed", 0.7),
    "shadowserver ssl/freak vulnerable servers report": _t("vulnerable-service", "exposed", 0.7),
    # content and mail
    "shadowserver sandbox url": _t("malware", confidence=0.7),
    "shadowserver spam url": _t("spam", confidence=0.7),
    "google safe browsing": _t("malware", confidence=0.7),
    "acm": _t("spam", confidence=0.7),  # the Dutch consumer authority's spam complaints
    "aol fbl": _FBL,
    "cox fbl": _FBL,
    "hotmail fbl": _FBL,
    "lotus fbl": _FBL,
    "rackspace fbl": _FBL,
    "terra fbl": _FBL,
    # the name does not say what the address did: an analyst decides
    "shadowserver botnet ddos": _TRIAGE,
    "acm possible malware": _TRIAGE,
    "cleanmx": _TRIAGE,
    "team cymru malevolence monitoring": _TRIAGE,
    "trendmicro": _TRIAGE,
}


@dataclass(frozen=True, slots=True)
class _CsvFile:
    filename: str | None
    data: bytes


def is_abusehub_csv(filename: str | None, data: bytes) -> bool:
    """An AbuseHub CSV by its file name, or by its header line."""
    return bool(filename and _CSV_NAME.match(filename)) or bool(_HEADER.match(data[:512]))


def _clean(value: str | None) -> str | None:
    return clean_field(value, _EMPTY)


def _port(value: str | None) -> int | None:
    return port_field(value, _EMPTY)


def _text_offsets(text: str) -> dict[datetime, timezone]:
    """Local event times the mail text names with their offset: "(event time 2015-03-02 01:45:59 +01:00)"."""
    out: dict[datetime, timezone] = {}
    for m in _TEXT_EVENT_TIME.finditer(text):
        try:
            local = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}")
            minutes = int(m.group(4)) * 60 + int(m.group(5))
            out[local] = timezone(timedelta(minutes=-minutes if m.group(3) == "-" else minutes))
        except ValueError:
            continue  # an offset of 24 hours or more, a 25th hour: not a time we can use
    return out


class AbusehubParser(Parser):
    """AbuseHub (AbuseIX) event mails: one Event per row of the attached ``abusehubcsv`` file.

    Flags the reported address with the kind of its AbuseHub report type (infected host from sinkholes and drone
    reports, open service, compromised website, botnet C&C, spam from feedback loops ...). For: Dutch networks
    that receive AbuseHub reports. False positives: see the module docstring; unknown report types go to triage.
    """

    name: ClassVar[str] = "abusehub"
    priority: ClassVar[int] = 25  # before Shadowserver: AbuseHub mails carry a notifier's CSV beside their own

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        #: AbuseHub's local time zone, for event times the mail text does not give an offset for
        timezone: str = "Europe/Amsterdam"

        @field_validator("timezone")
        @classmethod
        def _known_zone(cls, value: str) -> str:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"{value!r} is not an IANA time zone name: {exc}") from None
            return value

    def recognises(self, report: Report) -> bool:
        msg = report.message
        if msg is None:
            return bool(_HEADER.match(report.head))
        for part in mime.walk(msg, budget=report.budget):
            filename = part.get_filename()
            if filename and _CSV_NAME.match(filename):
                return True
            if part.get_content_type() == "text/csv" and _HEADER.match(mime.part_bytes(part)[:512]):
                return True
        return False

    def parse(self, report: Report) -> Iterator[Item]:
        msg = report.message
        reporter = REPORTER
        offsets: dict[datetime, timezone] = {}
        notifier: dict[str, Any] = {}
        if msg is None:
            if not _HEADER.match(report.head):
                raise ParseError(
                    "not an AbuseHub report: no mail with an abusehubcsv-*.csv attachment, and no CSV whose header "
                    "starts with reliable_notifier,report_type",
                    source=report.filename,
                    parser=self.name,
                )
            files = [_CsvFile(report.filename, report.data)]
        else:
            reporter = mime.sender_address(msg) or REPORTER
            attached = self._attachments(msg, report)
            files = [_CsvFile(a.filename, a.data) for a in attached if is_abusehub_csv(a.filename, a.data)]
            if not files:
                raise ParseError(
                    "no AbuseHub CSV (abusehubcsv-*.csv, or a CSV with the reliable_notifier,report_type header) is "
                    "attached; the attachment may be missing or in another format",
                    source=report.filename,
                    parser=self.name,
                )
            offsets = _text_offsets(mime.body_text(mime.signed_content(msg)))
            notifier = _notifier_evidence([a for a in attached if not is_abusehub_csv(a.filename, a.data)])
            if message_id := mime.header(msg, "Message-ID"):
                notifier["message_id"] = message_id[:300]
        for f in files:
            yield from self._parse_csv(f, reporter, offsets, notifier, report.budget)

    def _attachments(self, msg: Message, report: Report) -> list[mime.Attachment]:
        return mime.attachments(msg, budget=report.budget)  # a corrupt archive is mime's ParseError

    def _zone(self) -> tzinfo:
        assert isinstance(self.params, AbusehubParser.Params)
        return ZoneInfo(self.params.timezone)

    def _parse_csv(
        self,
        f: _CsvFile,
        reporter: str,
        offsets: dict[datetime, timezone],
        evidence: dict[str, Any],
        budget: mime.Budget,
    ) -> Iterator[Item]:
        where = f.filename or "abusehub csv"
        reader = csv.reader(io.StringIO(mime.decode_bytes(f.data).lstrip("\ufeff"), newline=""))
        try:
            columns = [c.strip().lower() for c in next(reader)]
        except StopIteration:
            raise ParseError("the AbuseHub CSV is empty (no header line)", source=where, parser=self.name) from None
        except csv.Error as exc:
            raise ParseError(f"the CSV header cannot be read: {exc}", source=where, line=1, parser=self.name) from None
        index = {c: i for i, c in reversed(list(enumerate(columns)))}  # the first of two same-named columns
        order = sorted(index.items(), key=lambda item: item[1])
        missing = [c for c in _REQUIRED if c not in index]
        if missing:
            raise ParseError(
                f"column {missing[0]!r} missing in the AbuseHub CSV; the format may have changed",
                source=where,
                line=1,
                parser=self.name,
            )
        zone = self._zone()
        unknown_types: set[str] = set()
        rows = events = 0
        first_problem: str | None = None
        line = 1
        try:
            for row in reader:
                line = reader.line_num
                budget.tick(where)
                if not row or all(not c.strip() for c in row):
                    continue
                rows += 1
                if len(row) > len(columns):
                    item: Item = ParseIssue(f"row has {len(row)} fields, the header has {len(columns)}", line=line)
                else:
                    row += [""] * (len(columns) - len(row))  # empty trailing fields may be left out
                    rec = {c: row[i] for c, i in order}
                    rtype_name = rec["report_type"].strip()
                    rtype = REPORT_TYPES.get(rtype_name.lower())
                    if rtype is None and rtype_name.lower() not in unknown_types:
                        unknown_types.add(rtype_name.lower())
                        yield ParseIssue(
                            f"AbuseHub report type {rtype_name!r} is unknown to abusedesk; its rows are parsed as "
                            "kind 'other' for triage",
                            line=line,
                        )
                    item = self._event(rec, rtype, reporter, offsets, zone, evidence, line)
                if isinstance(item, Event):
                    events += 1
                else:
                    first_problem = first_problem or item.reason
                yield item
        except csv.Error as exc:
            raise ParseError(f"the CSV cannot be read: {exc}", source=where, line=line, parser=self.name) from None
        if not rows:
            raise ParseError("the AbuseHub CSV has a header and no rows", source=where, parser=self.name)
        if not events:
            raise ParseError(
                f"the AbuseHub CSV yielded no event from {rows} row(s) (first problem: {first_problem}); the format "
                "may have changed",
                source=where,
                parser=self.name,
            )

    def _event(
        self,
        rec: dict[str, str],
        rtype: ReportType | None,
        reporter: str,
        offsets: dict[datetime, timezone],
        zone: tzinfo,
        evidence: dict[str, Any],
        line: int,
    ) -> Item:
        stamp = f"{rec['event_date'].strip()} {rec['event_time'].strip()}"
        try:
            when = datetime.fromisoformat(f"{rec['event_date'].strip()}T{rec['event_time'].strip()}")
        except ValueError:
            return ParseIssue(f"event_date/event_time {stamp!r} is not a date and time", line=line)
        if when.tzinfo is not None:
            zone_source = "csv"
        elif when in offsets:
            when, zone_source = when.replace(tzinfo=offsets[when]), "report text"
        else:
            when, zone_source = when.replace(tzinfo=zone), str(zone)
        ip = _clean(rec["src_ip"])
        url = _clean(rec.get("src_url"))
        if ip is None and url is None:
            return ParseIssue("src_ip is empty and there is no src_url: the row names no subject", line=line)
        if url and "://" not in url:
            url = "http://" + url
        dst = _clean(rec.get("dst_ip"))
        extra: dict[str, Any] = {c: v.strip() for c, v in rec.items() if c not in _TYPED and _clean(v)}
        extra["role"] = rtype.role if rtype else "unknown"
        try:
            offset = when.utcoffset()
        except (OverflowError, ValueError):
            offset = None
        extra["time_zone"] = zone_source
        if offset is not None:
            extra["utc_offset"] = _format_offset(offset)
        extra["identity"] = hashlib.blake2b("\x1f".join(rec.values()).encode(), digest_size=10).hexdigest()
        if dst is not None and not is_ip(dst):
            dst = None  # kept in extra as dst_ip; a bad peer address does not void the row
        if dst is not None:
            extra.pop("dst_ip", None)
        if rtype is None or rtype.kind == "other":
            extra["triage"] = True
        extra.update(evidence)
        kind = rtype.kind if rtype else "other"
        notifier = extra.get("reliable_notifier", "an AbuseHub notifier")
        try:
            return Event.create(
                kind=kind,
                time=when,
                feed=self.name,
                reporter=reporter,
                source_ip=ip,
                source_port=_port(rec.get("src_port")),
                source_url=url,
                source_fqdn=_clean(rec.get("src_hostname")),
                destination_ip=dst,
                destination_port=_port(rec.get("dst_port")),
                transport=(_clean(rec.get("protocol")) or "").lower() or None,
                confidence=rtype.confidence if rtype else _TRIAGE.confidence,
                description=f"AbuseHub: {rec['report_type'].strip() or 'report'} from {notifier}"[:300],
                extra=extra,
            )
        except (ValueError, OverflowError) as exc:
            return ParseIssue(f"row cannot be used: {exc}", line=line)


def _format_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _notifier_evidence(attached: list[mime.Attachment]) -> dict[str, Any]:
    """The notifier's original file beside the AbuseHub CSV: its name, and its record when it holds one row."""
    out: dict[str, Any] = {}
    for att in attached:
        name = att.filename or ""
        if not name.lower().endswith(".csv"):
            continue
        out["notifier_file"] = name[:200]
        try:
            rows = list(csv.reader(io.StringIO(mime.decode_bytes(att.data).lstrip("\ufeff"), newline="")))
        except csv.Error:
            break
        rows = [r for r in rows if any(c.strip() for c in r)]
        if len(rows) == 2:
            record = {
                k.strip()[:60]: v.strip()[:_NOTIFIER_VALUE_MAX]
                for k, v in zip(rows[0], rows[1], strict=False)
                if k.strip() and v.strip()
            }
            out["notifier_record"] = dict(list(record.items())[:_NOTIFIER_FIELDS_MAX])
        break
    return out
