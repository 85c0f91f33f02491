"""DMCA takedown notices and counter-notices in mail, with the statutory elements checked.

A notice under 17 U.S.C. 512(c)(3)(A) must contain: (i) a physical or electronic signature, (ii) identification
of the copyrighted work, (iii) identification of the infringing material and where it is, (iv) the complainant's
contact information, (v) a good-faith statement, (vi) a statement that the notice is accurate and, under penalty
of perjury, that the complainant is authorised to act. A notice missing any of these is *not* acted on: its events
carry ``extra["dmca_complete"] = False``, the missing elements in ``extra["dmca_missing"]``, a lowered confidence
and ``extra["triage"] = True`` so an analyst looks first.

A counter-notice under 512(g)(3) becomes a ``copyright`` event with ``extra["counter_notice"] = True``; its own
elements (signature, identification of the removed material, the mistake statement under penalty of perjury,
name/address/phone and consent to jurisdiction) are checked the same way.

Attachments (power of attorney PDFs, .docx letters) are listed with their SHA-256 as evidence; they are never
parsed. The element checks are text heuristics: they find the statements, they do not judge them.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from abusedesk.domain.errors import ParseError
from abusedesk.domain.ipnet import is_ip
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report

_I = re.IGNORECASE | re.MULTILINE
_RECOGNISE = re.compile(
    r"\bDMCA\b|Digital Millennium Copyright Act|17 U\.?S\.?C\.?\s*(?:§\s*)?512|\b512\s*\(\s*[cg]\s*\)"
    r"|copyright infringement notice|notice of (?:claimed |alleged )?(?:copyright )?infringement"
    r"|counter[- ]?notic|infringing (?:material|content|links?|files?|copies)",
    re.IGNORECASE,
)
_COUNTER = re.compile(
    r"counter[- ]?notic|512\s*\(\s*g\s*\)|removed or disabled (?:as a result of|by) (?:a )?mistake", re.IGNORECASE
)

#: 512(c)(3)(A) elements: name -> patterns, any of which shows the element is present
NOTICE_ELEMENTS: dict[str, tuple[re.Pattern[str], ...]] = {
    "signature": (
        re.compile(r"^\s*(?:/s/|signed\s*[:,]|signature\s*:|electronic(?:ally)? sign)", _I),
        re.compile(r"^\s*(?:sincerely|regards|best regards|kind regards|respectfully|yours truly)\s*,?\s*\n\s*\S+", _I),
    ),
    "work": (
        re.compile(
            r"copyrighted works?|infringed works?\s*:|original works?|works? (?:being |that (?:is|are) )?infringed"
            r"|title of the work|work title|^\s*(?:title|work|infringed work|copyrighted material)\s*:",
            _I,
        ),
    ),
    "infringing_material": (re.compile(r"https?://\S+", _I), re.compile(r"\binfringing (?:url|material|file)", _I)),
    "contact": (
        re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
        re.compile(r"(?:phone|tel|telephone)\s*[:.]?\s*\+?[\d(][\d ()./-]{6,}", _I),
    ),
    "good_faith": (re.compile(r"good[-\s]+faith\s+belief", _I),),
    "accuracy_perjury": (re.compile(r"penalty\s+of\s+perjury", _I),),
}
#: 512(g)(3) elements of a counter-notice
COUNTER_ELEMENTS: dict[str, tuple[re.Pattern[str], ...]] = {
    "signature": NOTICE_ELEMENTS["signature"],
    "material": (
        re.compile(r"https?://\S+", _I),
        re.compile(r"material (?:that )?(?:was|has been) (?:removed|disab)", _I),
    ),
    "mistake_statement": (re.compile(r"mistake\s+or\s+misidentification", _I),),
    "penalty_of_perjury": (re.compile(r"penalty\s+of\s+perjury", _I),),
    "contact": NOTICE_ELEMENTS["contact"],
    "consent_jurisdiction": (
        re.compile(r"consent\s+to\s+the\s+jurisdiction|jurisdiction\s+of\s+(?:the\s+)?federal\s+district", _I),
    ),
}
#: what each element is, as a reply to an incomplete notice names it (17 U.S.C. 512(c)(3)(A) and 512(g)(3))
ELEMENT_TEXT: dict[str, str] = {
    "signature": "a physical or electronic signature of a person authorised to act for the owner of the right "
    "(512(c)(3)(A)(i))",
    "work": "identification of the copyrighted work claimed to be infringed (512(c)(3)(A)(ii))",
    "infringing_material": "identification of the infringing material and information reasonably sufficient to "
    "locate it, such as its URL (512(c)(3)(A)(iii))",
    "contact": "information reasonably sufficient to contact you: address, telephone number or e-mail address "
    "(512(c)(3)(A)(iv))",
    "good_faith": "a statement that you have a good faith belief that the use is not authorised by the copyright "
    "owner, its agent or the law (512(c)(3)(A)(v))",
    "accuracy_perjury": "a statement that the information in the notice is accurate and, under penalty of perjury, "
    "that you are authorised to act on behalf of the owner (512(c)(3)(A)(vi))",
    "material": "identification of the material that was removed and where it appeared before (512(g)(3)(B))",
    "mistake_statement": "a statement under penalty of perjury that you have a good faith belief that the material "
    "was removed as a result of mistake or misidentification (512(g)(3)(C))",
    "penalty_of_perjury": "the statement above made under penalty of perjury (512(g)(3)(C))",
    "consent_jurisdiction": "your name, address and telephone number and a statement that you consent to the "
    "jurisdiction of the Federal District Court (512(g)(3)(D))",
}
_ACCURACY = re.compile(r"\baccurate\b", _I)
_AUTHORISED = re.compile(r"authori[sz]ed\s+to\s+act", _I)

# an IPv6 literal host keeps its brackets ("http://[2001:db8::7]/f.mkv"); elsewhere ']' and ')' end a URL
_URL = re.compile(r"https?://(?:\[[0-9A-Fa-f:.]+\])?[^\s<>\"'\])\[]+", re.IGNORECASE)
_LABELLED_URL = re.compile(
    r"^\s*(?:link|url|infringing (?:url|link|material|content|location)|location|infringing page|"
    r"material(?: location)?)\s*[:=]\s*(https?://\S+)",
    _I,
)
_LABELLED_IP = re.compile(r"^\s*(?:infringer'?s? )?ip(?:[- ]address)?\s*[:=]\s*([0-9A-Fa-f:.]+)", _I)
_REF = re.compile(r"(?:ref(?:erence)?\s*id|notice\s*id|case\s*id|ticket)\s*[:#]?\s*\[?([\w.:-]{4,})", re.IGNORECASE)
_CONTACT_LINE = re.compile(r"website|contact|our site|docs|visit|pgp|key server|web interface|webreply", re.IGNORECASE)
_MAX_EVENTS = 1000


def _present(text: str, patterns: tuple[re.Pattern[str], ...]) -> bool:
    return any(p.search(text) for p in patterns)


def check_notice(text: str) -> list[str]:
    """The 512(c)(3) elements the notice text lacks, in statutory order (empty = complete)."""
    missing = [name for name, pats in NOTICE_ELEMENTS.items() if not _present(text, pats)]
    if "accuracy_perjury" not in missing and not (_ACCURACY.search(text) and _AUTHORISED.search(text)):
        missing.append("accuracy_perjury")
    return missing


def check_counter_notice(text: str) -> list[str]:
    """The 512(g)(3) elements a counter-notice lacks (empty = complete)."""
    return [name for name, pats in COUNTER_ELEMENTS.items() if not _present(text, pats)]


def _body_text(msg: Message) -> str:
    """mime.body_text, falling back to charset-less decoding when a part's charset name is hostile (NUL ...)."""
    try:
        return mime.body_text(msg)
    except ValueError:
        parts = [p for p in mime.walk(msg) if p.get_content_maintype() == "text"]
        return "\n".join(
            mime.decode_bytes(mime.part_bytes(p)) for p in parts if p.get_content_disposition() != "attachment"
        )


def _notice_time(report: Report) -> datetime:
    msg = report.message
    value = mime.header(msg, "Date") if msg is not None else None
    if value:
        try:
            t = email.utils.parsedate_to_datetime(value)
            return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass  # an unreadable or absurd Date: fall back to the time we received the notice
    return report.raw.received_at


def _subjects(text: str, sender_domain: str | None) -> tuple[list[str], list[str]]:
    """(urls, ips) the notice complains about: labelled lines first, else every URL not in a contact line."""
    urls = list(dict.fromkeys(m.group(1).rstrip(".,;") for m in _LABELLED_URL.finditer(text)))
    ips = [m.group(1) for m in _LABELLED_IP.finditer(text) if is_ip(m.group(1))]
    if urls or ips:
        return urls, list(dict.fromkeys(ips))
    found: list[str] = []
    for line in text.splitlines():
        if _CONTACT_LINE.search(line):
            continue
        for m in _URL.finditer(line):
            url = m.group(0).rstrip(".,;")
            host = re.sub(r"^https?://", "", url, flags=re.IGNORECASE).split("/", 1)[0].lower()
            if sender_domain and (host == sender_domain or host.endswith("." + sender_domain)):
                continue
            found.append(url)
    return list(dict.fromkeys(found)), []


class DmcaParser(Parser):
    """DMCA notices and counter-notices sent by mail, with the 512(c)(3) / 512(g)(3) elements checked.

    Flags each infringing URL (or IP address) the notice names as ``copyright``. For: rights holders and their
    agents. False positives: an incomplete notice is never acted on automatically (``dmca_complete`` False,
    ``triage``); the element checks look for the statutory statements, so a notice that paraphrases them
    unusually may be marked incomplete and needs a person.
    """

    name = "dmca"
    priority = 60

    def recognises(self, report: Report) -> bool:
        msg = report.message
        if msg is not None:
            subject = mime.header(msg, "Subject") or ""
            if _RECOGNISE.search(subject):
                return True
            return bool(_RECOGNISE.search(_body_text(msg)[:20000]))
        return bool(_RECOGNISE.search(report.text[:20000]))

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        msg = report.message
        text = _body_text(msg) if msg is not None else report.text
        text = text.replace("\r\n", "\n")
        subject = (mime.header(msg, "Subject") if msg is not None else None) or ""
        if not text.strip():
            raise ParseError("the notice has no readable text", source=report.filename, parser=self.name)
        if not _RECOGNISE.search(subject + "\n" + text):
            raise ParseError(
                "no DMCA or copyright-notice wording found; not a takedown notice",
                source=report.filename,
                parser=self.name,
            )
        counter = bool(_COUNTER.search(subject + "\n" + text))
        missing = check_counter_notice(text) if counter else check_notice(text)
        complete = not missing
        sender = mime.header(msg, "From") if msg is not None else None
        addr = email.utils.parseaddr(sender or "")[1].lower() or None
        sender_domain = addr.split("@", 1)[1] if addr and "@" in addr else None
        ref = mime.header(msg, "Message-ID") if msg is not None else None
        m = _REF.search(subject)
        report_id = m.group(1) if m else (ref.strip("<>") if ref else None)
        when = _notice_time(report)
        urls, ips = _subjects(text, sender_domain)
        evidence = self._attachments(report)
        extra: dict[str, Any] = {
            "dmca_complete": complete,
            "dmca_missing": missing,
            "counter_notice": counter,
            "subject": subject[:300] or None,
        }
        if evidence:
            extra["attachments"] = evidence
        if not complete or counter:
            extra["triage"] = True
        extra = {k: v for k, v in extra.items() if v is not None}
        confidence = 0.9 if complete else 0.4
        if counter:
            confidence = min(confidence, 0.5)
        if not complete:
            yield ParseIssue(
                f"{'counter-notice' if counter else 'DMCA notice'} is incomplete, missing: {', '.join(missing)}; "
                "flagged for triage, not acted on"
            )
        targets: list[dict[str, Any]] = [{"source_url": u} for u in urls] + [{"source_ip": i} for i in ips]
        if len(targets) > _MAX_EVENTS:
            yield ParseIssue(f"notice names {len(targets)} locations; only the first {_MAX_EVENTS} become events")
            targets = targets[:_MAX_EVENTS]
        if not targets:
            yield ParseIssue("the notice names no URL or IP address; one event without a subject is kept for triage")
            targets = [{}]
            extra["triage"] = True
        for target in targets:
            try:
                yield Event.create(
                    kind="copyright",
                    time=when,
                    feed="dmca",
                    reporter=addr,
                    report_id=report_id,
                    confidence=confidence,
                    description=(subject or "DMCA notice")[:300],
                    extra=dict(extra),
                    **target,
                )
            except ValueError as exc:
                yield ParseIssue(f"location {target} cannot be used: {exc}")

    def _attachments(self, report: Report) -> list[dict[str, Any]]:
        """Non-text attachments, listed by hash for the evidence store; never opened or parsed."""
        msg = report.message
        if msg is None:
            return []
        out = []
        for part in mime.walk(msg, budget=report.budget):
            filename = part.get_filename()
            if filename is None and part.get_content_disposition() != "attachment":
                continue
            data = mime.part_bytes(part)
            out.append(
                {
                    "filename": filename,
                    "content_type": part.get_content_type(),
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
        return out
