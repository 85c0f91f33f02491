"""ACNS 2 notices (Automated Copyright Notice System): copyright-infringement reports, mostly from P2P monitors.

The ACNS XML (``<Infringement xmlns="http://www.acns.net/ACNS">``) comes as an ``.xml`` attachment (IP-Echelon)
or inline in the text of the mail, often inside a PGP clear-signed body (Copyright Compliance / Irdeto). The same
notice may be in both places; it becomes one Event per ``Case/ID``.

XML is parsed only after refusing DTDs and entity declarations (billion-laughs and external-entity attacks).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from abusedesk.domain.errors import ParseError
from abusedesk.domain.numbers import ascii_uint
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.domain.timeutil import parse_time
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report

_MARKER = b"acns.net/ACNS"
_BLOCK = re.compile(r"(?:<\?xml[^>]*\?>\s*)?<(?:\w+:)?Infringement\b.*?(?:</(?:\w+:)?Infringement>|\Z)", re.DOTALL)
_P2P_TYPES = frozenset({"bittorrent", "edonkey", "emule", "gnutella", "ares", "dc++", "directconnect", "kad", "p2p"})
_MAX_XML = 1024 * 1024


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: ET.Element | None, *path: str) -> ET.Element | None:
    for name in path:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


def _text(node: ET.Element | None, *path: str) -> str | None:
    found = _child(node, *path)
    if found is None or found.text is None:
        return None
    value = " ".join(found.text.split())
    return value or None


def _attr(node: ET.Element | None, name: str) -> str | None:
    return node.get(name) if node is not None else None


def _parse_xml(block: str, where: str | None) -> ET.Element:
    head = block[:4096].upper()
    if "<!DOCTYPE" in head or "<!ENTITY" in block.upper():
        raise ParseError("ACNS XML declares a DTD or entities; refused (XML entity attack?)", source=where)
    if len(block) > _MAX_XML:
        raise ParseError(f"ACNS XML is larger than {_MAX_XML} bytes; refused", source=where)
    block = re.sub(r"^<\?xml[^>]*\?>", "", block.strip())  # the declaration may name an encoding str can't honour
    try:
        return ET.fromstring(block)  # noqa: S314 - DTDs and entities refused above
    except ET.ParseError as exc:
        raise ParseError(f"ACNS XML is malformed or truncated: {exc}", source=where) from None


def _undash(text: str) -> str:
    """Undo PGP clear-sign dash escaping ("- -" at line start) so the XML and the marker lines read plainly."""
    return re.sub(r"(?m)^- ", "", text)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value, assume_utc=True)
    except (ValueError, OverflowError):
        return None


def _decode(data: bytes, charset: str | None) -> str:
    """mime.decode_bytes, but a hostile charset name (e.g. with a NUL, which str.decode rejects) is ignored."""
    try:
        return mime.decode_bytes(data, charset)
    except ValueError:
        return mime.decode_bytes(data)


def _refuse_dtd(text: str, where: str) -> None:
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise ParseError("ACNS XML declares a DTD or entities; refused (XML entity attack?)", source=where)


def acns_blocks(report: Report) -> list[tuple[str, str]]:
    """(where, xml text) of every ACNS block: attachments first (they are unescaped), then the mail text."""
    blocks: list[tuple[str, str]] = []
    msg = report.message
    if msg is None:
        text = _undash(report.text)
        _refuse_dtd(text, "input")
        return [("input", m.group(0)) for m in _BLOCK.finditer(text)]
    for part in mime.walk(msg, budget=report.budget):
        data = mime.part_bytes(part)
        if _MARKER not in data and b"<Infringement" not in data:
            continue
        text = _undash(_decode(data, part.get_content_charset()))
        where = part.get_filename() or part.get_content_type()
        _refuse_dtd(text, where)
        blocks.extend((where, m.group(0)) for m in _BLOCK.finditer(text))
    blocks.sort(key=lambda b: 0 if b[0].lower().endswith(".xml") else 1)
    return blocks


class AcnsParser(Parser):
    """ACNS 2 copyright notices (P2P and web), from the XML attached to or inline in the notice mail.

    Flags the infringing address (and port) at the time of the infringement as ``copyright-p2p`` (or
    ``copyright`` when the source is a web URL). For: rights holders' agents (IP-Echelon, Irdeto/Copyright
    Compliance, MarkMonitor ...). False positives: P2P monitors see NATed or VPN users; the notice names an
    address and port, so CGNAT attribution needs the port.
    """

    name = "acns"
    priority = 20

    def recognises(self, report: Report) -> bool:
        if _MARKER in report.data:
            return True
        if not report.is_mail:
            return False  # neither a bare notice nor mail: no copy of the whole input made (issue 9 item 3)
        msg = report.message
        if msg is None:
            return False
        for part in mime.walk(msg, budget=report.budget):
            name = (part.get_filename() or "").lower()
            is_xml = name.endswith(".xml") or part.get_content_type() in ("application/xml", "text/xml")
            if is_xml and _MARKER in mime.part_bytes(part)[:8192]:
                return True
        return False

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        blocks = acns_blocks(report)
        if not blocks:
            raise ParseError("no ACNS <Infringement> XML found in the input", source=report.filename, parser=self.name)
        seen: set[str] = set()
        errors: list[ParseError] = []
        produced = 0
        for where, block in blocks:
            try:
                root = _parse_xml(block, where)
            except ParseError as exc:
                errors.append(exc)
                continue
            if _local(root.tag) != "Infringement":
                errors.append(ParseError(f"root element is <{_local(root.tag)}>, not <Infringement>", source=where))
                continue
            case_id = _text(root, "Case", "ID")
            key = case_id or block
            if key in seen:
                continue
            seen.add(key)
            item = self._event(root, case_id, where, report)
            if isinstance(item, ParseIssue):
                yield item
                continue
            produced += 1
            yield item
        if not produced and errors:
            errors[0].parser = self.name
            raise errors[0]
        for err in errors if produced else []:
            yield ParseIssue(f"a second copy of the notice could not be read: {err.message}")

    def _event(self, root: ET.Element, case_id: str | None, where: str, report: Report) -> Event | ParseIssue:
        source = _child(root, "Source")
        items = [c for c in (_child(root, "Content") or []) if _local(c.tag) == "Item"]
        when = _time(_text(source, "TimeStamp")) or next(
            (t for t in (_time(_text(i, "TimeStamp")) for i in items) if t), None
        )
        if when is None:
            return ParseIssue(f"ACNS notice {case_id or '(no case id)'} in {where} has no readable Source/TimeStamp")
        ip = _text(source, "IP_Address")
        urls = [u for u in (_text(i, "URL") for i in items) if u and "://" in u]
        source_url = _text(source, "URL") or (urls[0] if urls else None)
        if not ip and not source_url:
            return ParseIssue(f"ACNS notice {case_id or '(no case id)'} names neither an IP address nor a URL")
        stype = _text(source, "Type")
        sub = _child(source, "SubType")
        base_type = sub.get("BaseType") if sub is not None else None
        protocol = sub.get("Protocol") if sub is not None else None
        p2p = (base_type or "").upper() == "P2P" or (stype or "").lower() in _P2P_TYPES
        kind = "copyright-p2p" if p2p or (ip and not source_url) else "copyright"
        complainant = _child(root, "Complainant")
        extra: dict[str, Any] = {
            "acns_case_id": case_id,
            "case_status": _text(root, "Case", "Status"),
            "rights_holder": _text(complainant, "Entity"),
            "complainant": {
                k: v
                for k, v in (
                    (k, _text(complainant, k.capitalize() if k != "address" else "Address"))
                    for k in ("contact", "email", "phone", "address")
                )
                if v
            },
            "works": [
                {
                    k: v
                    for k, v in (
                        ("title", _text(i, "Title")),
                        ("file_name", _text(i, "FileName")),
                        ("file_size", _text(i, "FileSize")),
                        ("hash", _text(i, "Hash")),
                        ("hash_type", _attr(_child(i, "Hash"), "Type")),
                        ("url", _text(i, "URL")),
                    )
                    if v
                }
                for i in items
            ],
            "source_type": stype,
            "username": _text(source, "UserName"),
            "acns_found_in": where,
        }
        extra = {k: v for k, v in extra.items() if v not in (None, "", [], {})}
        port = _text(source, "Port")
        try:
            return Event.create(
                kind=kind,
                time=when,
                feed="acns",
                reporter=_text(complainant, "Email") or _text(complainant, "Entity") or _sender(report),
                report_id=case_id,
                source_ip=ip,
                source_port=ascii_uint(port),
                source_url=source_url,
                transport="tcp" if p2p else None,
                application=(protocol or stype or "").lower() or None,
                description=f"Copyright notice {case_id or ''} for "
                + ", ".join(w.get("title", w.get("file_name", "?")) for w in extra.get("works", []))[:300],
                extra=extra,
            )
        except ValueError as exc:
            return ParseIssue(f"ACNS notice {case_id or '(no case id)'}: {exc}")


def _sender(report: Report) -> str | None:
    msg = report.message
    return mime.header(msg, "From") if msg is not None else None
