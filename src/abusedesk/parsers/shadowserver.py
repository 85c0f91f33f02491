"""Shadowserver reports: CSV files, bare or zipped/gzipped in mail, one Event per row.

The report type comes from the file name (``YYYY-MM-DD-<type>-<org>-<geo>.csv``, or ``<type>.csv``) and, when the
name says nothing, from the header columns (see ``shadowserver_types``). Timestamps are UTC without a zone.

Schema drift is never silent: when a *known* report type lacks a column it needs, or none of its rows yields an
event, the whole input raises ParseError ("schema drift: ...") and lands in quarantine, and a WARNING is logged.
A bad row is a ParseIssue. A report type we do not know is parsed generically (kind ``other``, for triage) and
says so in a ParseIssue.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import ipaddress
import logging
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from abusedesk.domain.errors import ParseError
from abusedesk.domain.ipnet import is_ip
from abusedesk.domain.numbers import port_number
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers import mime, textstream
from abusedesk.parsers.base import Parser, Report
from abusedesk.parsers.shadowserver_types import (
    GENERIC_IP_COLUMNS,
    GENERIC_PORT_COLUMNS,
    REPORT_TYPES,
    RETIRED_TYPES,
    ReportType,
    report_type_from_columns,
)

log = logging.getLogger(__name__)

REPORTER = "shadowserver.org"
#: 2019-10-15-scan_dns-example-asn.csv (also .csv.zip / .csv.gz once unpacked)
_DATED_NAME = re.compile(r"^(?:.*/)?\d{4}-\d{2}-\d{2}-(?P<type>[a-z0-9_]+)-[^/]*\.csv(?:\.zip|\.gz)?$", re.IGNORECASE)
_BARE_NAME = re.compile(r"^(?:.*/)?(?P<type>[a-z0-9_]+)\.csv(?:\.zip|\.gz)?$", re.IGNORECASE)
_HEADER = re.compile(rb'^(?:\xef\xbb\xbf)?"?timestamp"?,', re.IGNORECASE)
# columns whose values are not worth copying into extra (they are in typed fields or are geo noise)
_SKIP_EXTRA = frozenset({"timestamp"})
_EMPTY = frozenset({"", "-", "?", "n/a"})
#: ``GET /search?q=0 HTTP/1.0``: what the sinkhole HTTP reports put in ``url`` / ``http_url``
_REQUEST_LINE = re.compile(r"^(?P<method>[A-Z][A-Z_-]{1,19})\s+(?P<target>\S+)(?:\s+(?P<version>HTTP/\d(?:\.\d)?))?$")
#: a host as a URL may carry it: a name, an IPv4 address, a bracketed IPv6 address; an optional port
_URL_HOST = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def type_from_filename(filename: str | None) -> str | None:
    """The report type a Shadowserver file name carries, lower case, or None."""
    if not filename:
        return None
    m = _DATED_NAME.match(filename)
    if m:
        return m.group("type").lower()
    m = _BARE_NAME.match(filename)
    if m and (m.group("type").lower() in REPORT_TYPES or m.group("type").lower() in RETIRED_TYPES):
        return m.group("type").lower()
    return None


def parse_timestamp(value: str) -> datetime:
    """``2019-10-15 04:47:54`` (UTC, no zone) and ISO 8601 variants; raises ValueError."""
    s = value.strip()
    if len(s) == 19 and s[4] == "-" and s[10] in " T":
        return datetime(int(s[0:4]), int(s[5:7]), int(s[8:10]), int(s[11:13]), int(s[14:16]), int(s[17:19]), tzinfo=UTC)
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    t = datetime.fromisoformat(s)
    try:
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp {value!r} is out of range") from None


def _is_csv_header(data: bytes) -> bool:
    first = data[:2048].split(b"\n", 1)[0].lower()
    if not _HEADER.match(first):
        return False
    return any(col in first for col in (b'"ip"', b'"src_ip"', b",ip,", b",src_ip,", b'"asn"', b'"src_asn"'))


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip()
    return None if v.lower() in _EMPTY else v


class ShadowserverParser(Parser):
    """Shadowserver Foundation reports (CSV, bare or zipped in mail), one Event per row.

    Flags the reported address with the kind of its report type (open resolver, open service, infected host,
    brute force ...); see docs/reference/formats-feeds.md for the table. For: any network Shadowserver reports on.
    False positives: the "accessible service" reports (SSH, HTTP, TLS, FTP) are informational and carry low
    confidence; honeypot DDoS "target" and "amplification" reports name the *victim*, marked ``role: victim``.
    """

    name = "shadowserver"
    priority = 30

    def recognises(self, report: Report) -> bool:
        msg = report.message
        if msg is None:
            named = type_from_filename(report.filename)
            if named in REPORT_TYPES or named in RETIRED_TYPES:
                return True
            head = report.head
            if head[:2] == b"\x1f\x8b" or head[:4] == b"PK\x03\x04":
                return bool(report.filename and _DATED_NAME.match(report.filename))
            return _is_csv_header(head)
        for part in mime.walk(msg, budget=report.budget):
            name = part.get_filename()
            if name and _DATED_NAME.match(name):
                return True
        return False

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        with contextlib.ExitStack() as stack:
            yield from self._parse_files(report, stack)

    def _parse_files(self, report: Report, stack: contextlib.ExitStack) -> Iterator[Event | ParseIssue]:
        """Every CSV the input carries (itself, a mail's attachments, an archive's members), each read as a stream
        a row at a time and unpacked as it is read, within the input's budget (issue 9 item 3)."""
        if report.message is not None:  # a corrupt archive is a ParseError from mime, naming what is wrong
            files = mime.packed_attachments(report.message, budget=report.budget, stack=stack)
        else:
            files = mime.open_archive(
                report.filename,
                "application/octet-stream",
                report.open,
                size=report.size,
                magic=report.peek(4),
                budget=report.budget,
                origin=report.raw,
                stack=stack,
            )
        found = False
        for file in files:
            named = type_from_filename(file.filename)
            if named is None and not _is_csv_header(file.head(2048)):
                continue
            found = True
            with textstream.open_text(file.open) as text:
                yield from self._parse_csv(file.filename or report.filename, text, named, report.budget)
        if not found:
            raise self._no_csv(report)

    def _no_csv(self, report: Report) -> ParseError:
        return ParseError(
            "no Shadowserver CSV found (no file named YYYY-MM-DD-<type>-....csv and no CSV with a "
            "'timestamp' header); the attachment may be missing or in another format",
            source=report.filename,
            parser=self.name,
        )

    def _parse_csv(
        self, filename: str | None, text: TextIO, named: str | None, budget: mime.Budget
    ) -> Iterator[Event | ParseIssue]:
        reader = csv.reader(textstream.strip_bom(text, keep_empty=False))
        where = filename or "shadowserver csv"
        try:
            columns = [c.strip().lower() for c in next(reader)]
        except StopIteration:
            raise ParseError("the CSV is empty (no header line)", source=where, parser=self.name) from None
        except csv.Error as exc:
            raise ParseError(f"the CSV header cannot be read: {exc}", source=where, line=1, parser=self.name) from None
        rtype: ReportType | None = REPORT_TYPES.get(named) if named else None
        type_name = named
        if rtype is None and named is None:
            rtype = report_type_from_columns(columns)
            type_name = rtype.name if rtype else None
        index = {c: i for i, c in enumerate(columns)}
        if "timestamp" not in index:
            raise ParseError(
                f"report {type_name or 'of unknown type'} has no column 'timestamp'; it is not a Shadowserver CSV "
                "or the format has changed",
                source=where,
                line=1,
                parser=self.name,
            )
        if rtype is not None:
            for col in rtype.required:
                if col not in index:
                    msg = f"schema drift: report type {rtype.name} has no column {col!r}; the format may have changed"
                    log.warning("%s (%s)", msg, where)
                    raise ParseError(msg, source=where, line=1, parser=self.name)
            kind, role, conf = rtype.kind, rtype.role, rtype.confidence
            ip_cols, port_cols = rtype.ip, rtype.port
            triage = False
        else:
            why = "retired by Shadowserver" if type_name in RETIRED_TYPES else "unknown to abusedesk"
            yield ParseIssue(
                f"report type {type_name or '(none in the file name, none matched by columns)'} is {why}; "
                "rows are parsed generically as kind 'other' for triage",
                line=1,
            )
            kind, role, conf, triage = "other", "unknown", 0.3, True
            ip_cols, port_cols = GENERIC_IP_COLUMNS, GENERIC_PORT_COLUMNS
        ts_i = index["timestamp"]
        ip_i = next((index[c] for c in ip_cols if c in index), None)
        port_i = next((index[c] for c in port_cols if c in index), None)
        ip_col = columns[ip_i] if ip_i is not None else ""
        proto_i = index.get("protocol")
        host_i = index.get("hostname", index.get("src_hostname"))
        dip_i = index.get("dst_ip")
        dport_i = index.get("dst_port")
        url_i = index.get("url", index.get("http_url"))
        http_host_i = index.get("http_host", index.get("host"))
        scheme_i = index.get("url_scheme")
        ssl_i = index.get("http_usessl")
        url_port_i = dport_i if dport_i is not None else index.get("port")
        tag_i = index.get("application", index.get("tag"))
        feed = f"shadowserver_{type_name or 'unknown'}"
        report_id = _report_id(filename)
        ncols = len(columns)
        rows = 0
        events = 0
        line = 1
        try:
            for row in reader:
                line = reader.line_num
                budget.tick(where)
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                rows += 1
                if len(row) != ncols:
                    if len(row) > ncols:
                        yield ParseIssue(f"row has {len(row)} fields, the header has {ncols}", line=line)
                        continue
                    row += [""] * (ncols - len(row))  # Shadowserver drops empty trailing fields
                try:
                    when = parse_timestamp(row[ts_i])
                except ValueError:
                    yield ParseIssue(f"timestamp {row[ts_i]!r} is not a date and time", line=line)
                    continue
                ip = _clean(row[ip_i]) if ip_i is not None else None
                if ip_i is not None and ip is None:
                    yield ParseIssue(f"column {columns[ip_i]!r} is empty", line=line)
                    continue
                network = None
                if ip is not None and "/" in ip:
                    network, ip = _network(ip)
                    if ip is None:
                        yield ParseIssue(f"column {ip_col!r}: {network!r} is not an address or prefix", line=line)
                        continue
                dst = _clean(row[dip_i]) if dip_i is not None else None
                extra: dict[str, Any] = {c: v for c, v in zip(columns, row, strict=True) if v and c not in _SKIP_EXTRA}
                url = _http_url(row, url_i, http_host_i, scheme_i, ssl_i, url_port_i, extra)
                extra["report_type"] = type_name or "unknown"
                extra["role"] = role
                extra["identity"] = hashlib.blake2b("\x1f".join(row).encode(), digest_size=10).hexdigest()
                if triage:
                    extra["triage"] = True
                if network:
                    extra["source_network"] = network
                if dst is not None and not is_ip(dst):
                    dst = None  # kept in extra under its column name; a bad peer address does not void the row
                try:
                    event = Event.create(
                        kind=kind,
                        time=when,
                        feed=feed,
                        reporter=REPORTER,
                        report_id=report_id,
                        source_ip=ip,
                        source_port=_port(row[port_i]) if port_i is not None else None,
                        source_fqdn=_clean(row[host_i]) if host_i is not None else None,
                        source_url=url,
                        destination_ip=dst,
                        destination_port=_port(row[dport_i]) if dport_i is not None else None,
                        transport=(_clean(row[proto_i]) or "").lower() or None if proto_i is not None else None,
                        application=_clean(row[tag_i]) if tag_i is not None else None,
                        confidence=conf,
                        extra=extra,
                    )
                except ValueError as exc:
                    yield ParseIssue(f"row cannot be used: {exc}", line=line)
                    continue
                events += 1
                yield event
        except csv.Error as exc:
            raise ParseError(f"the CSV cannot be read: {exc}", source=where, line=line, parser=self.name) from None
        if rows and not events and rtype is not None:
            msg = (
                f"schema drift: report type {rtype.name} yielded no events from {rows} rows; "
                "the format may have changed"
            )
            log.warning("%s (%s)", msg, where)
            raise ParseError(msg, source=where, parser=self.name)
        if not rows:
            yield ParseIssue("the report has a header and no rows", line=1)


def _http_url(
    row: Sequence[str],
    url_i: int | None,
    host_i: int | None,
    scheme_i: int | None,
    ssl_i: int | None,
    port_i: int | None,
    extra: dict[str, Any],
) -> str | None:
    """The URL a row reports, or None; never one made from a request line.

    ``url`` / ``http_url`` holds an absolute URL (malware and sandbox reports), a host and path without a scheme,
    a path (compromised websites), or, in the sinkhole HTTP reports, the whole request line
    (``GET /search?q=0 HTTP/1.0``). A request line is split: its method and protocol version go to
    ``extra.http_method`` / ``extra.http_version`` (unless the row has them), its target is the path. A path
    becomes a URL only with the host the client asked for (``http_host``, else ``host``); the scheme comes from
    ``url_scheme``, ``http_usessl`` or port 443, and a port that is not the scheme's default is kept.
    """
    raw = _clean(row[url_i]) if url_i is not None else None
    if raw is None:
        return None
    target = raw
    m = _REQUEST_LINE.match(raw)
    if m:
        target = m.group("target")
        extra.setdefault("http_method", m.group("method"))
        if m.group("version"):
            extra.setdefault("http_version", m.group("version"))
        extra.setdefault("http_path", target)
    if "://" in target:
        return _valid_url(target)
    if not target.startswith("/"):
        # "example.net/path" (a host without a scheme); anything with spaces or a request line's leftovers is not
        bare = target.split("/", 1)[0]
        return _valid_url("http://" + target) if not m and "." in bare and _URL_HOST.match(bare) else None
    host = _clean(row[host_i]) if host_i is not None else None
    if host is None:
        return None  # a path alone is kept in extra, not passed off as a URL
    if is_ip(host) and ":" in host:
        host = f"[{host}]"
    if not _URL_HOST.match(host):
        return None
    scheme = (_clean(row[scheme_i]) or "").lower() if scheme_i is not None else ""
    port = _port(row[port_i]) if port_i is not None else None
    if scheme not in _DEFAULT_PORTS:
        use_ssl = (_clean(row[ssl_i]) or "").lower() in ("1", "y", "yes", "true", "t") if ssl_i is not None else False
        scheme = "https" if use_ssl or port == 443 else "http"
    has_port = host.rsplit("]", 1)[-1].count(":") == 1
    if port is not None and not has_port and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return _valid_url(f"{scheme}://{host}{target}")


def _valid_url(url: str) -> str | None:
    """``url`` when it has a scheme, a host and no white space, else None."""
    if any(ch.isspace() for ch in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return url


def _port(value: str) -> int | None:
    v = value.strip()
    if not v or v in _EMPTY:
        return None
    if v.isascii() and v.isdigit():
        return port_number(v)
    try:
        n = int(float(v))
    except (ValueError, OverflowError):  # 'inf' is a float
        return None
    return n if 0 <= n <= 65535 else None


def _network(text: str) -> tuple[str, str | None]:
    """A CIDR in an address column: the prefix (normalised) and its first address, or (text, None)."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text, None
    return str(net), str(net.network_address)


def _report_id(filename: str | None) -> str | None:
    if not filename:
        return None
    base = filename.rsplit("/", 1)[-1]
    for suffix in (".zip", ".gz"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
    return base
