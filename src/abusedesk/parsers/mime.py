"""Safe handling of e-mail: parse, walk parts, decode text with any charset, open attachments within limits.

Complaint mail is hostile input: wrong or missing charsets, nested ``message/rfc822``, signed wrappers, huge
header lines and archives built to explode. Everything here returns something usable or raises ParseError
naming the limit that was hit; nothing here trusts a declared size or charset.
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

from abusedesk.domain.errors import ParseError

_HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]?", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on decompression: total bytes out, ratio out/in, and members per archive."""

    max_unpacked: int = 64 * 1024 * 1024
    max_ratio: int = 200
    max_members: int = 1000
    max_depth: int = 5


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str | None
    content_type: str
    data: bytes


def looks_like_mail(data: bytes) -> bool:
    """A message starts with header lines (``Name: value``), possibly after an mbox ``From `` line."""
    head = data[:8192].lstrip()
    if head.startswith(b"From "):
        head = head.split(b"\n", 1)[-1]
    first = head.split(b"\n", 1)[0]
    if not _HEADER_LINE.match(first):
        return False
    # at least two header-shaped lines before the first blank line
    block = head.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    return len(_HEADER_LINE.findall(block)) >= 2


def parse_message(data: bytes) -> EmailMessage:
    """Parse bytes into an EmailMessage (modern policy; defects are recorded on the message, not raised)."""
    if data.startswith(b"From "):
        data = data.split(b"\n", 1)[-1]
    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


_CHARSET_ALIASES = {"utf8": "utf-8", "unicode-1-1-utf-7": "utf-7", "x-unknown": "latin-1", "unknown-8bit": "latin-1"}


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode with the declared charset if it works, else UTF-8, else Windows-1252/Latin-1 (never fails)."""
    candidates = []
    if charset:
        cs = charset.strip().strip('"').lower()
        candidates.append(_CHARSET_ALIASES.get(cs, cs))
    candidates += ["utf-8", "cp1252"]
    for cs in candidates:
        try:
            return data.decode(cs)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def part_bytes(part: Message) -> bytes:
    """The decoded payload of a leaf part (base64/quoted-printable undone); empty for a broken payload."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "replace") if isinstance(raw, str) else b""


def part_text(part: Message) -> str:
    return decode_bytes(part_bytes(part), part.get_content_charset())


def header(msg: Message, name: str) -> str | None:
    """A header as text with folding undone; None when absent; malformed encodings do not raise."""
    try:
        value = msg.get(name)
    except Exception:
        raw = msg.get_all(name, failobj=[None])
        value = raw[0] if raw else None
    if value is None:
        return None
    return re.sub(r"\s*\r?\n\s+", " ", str(value)).strip()


def walk(msg: Message, *, depth: int = 0, limits: Limits | None = None) -> Iterator[Message]:
    """Every leaf part, descending into multiparts and attached messages (``message/rfc822``) up to max_depth."""
    lim = limits or Limits()
    if depth > lim.max_depth:
        return
    if msg.is_multipart():
        for sub in msg.get_payload() or []:
            if isinstance(sub, Message):
                yield from walk(sub, depth=depth + 1, limits=lim)
        return
    yield msg


def body_text(msg: Message) -> str:
    """All text/plain parts joined; text/html only when there is no plain text (tags stripped)."""
    plain: list[str] = []
    html: list[str] = []
    for part in walk(msg):
        ctype = part.get_content_type()
        if part.get_content_disposition() == "attachment":
            continue
        if ctype == "text/plain":
            plain.append(part_text(part))
        elif ctype == "text/html":
            html.append(re.sub(r"<[^>]+>", " ", part_text(part)))
    return "\n".join(plain) if plain else "\n".join(html)


def attachments(msg: Message, *, limits: Limits | None = None) -> list[Attachment]:
    """Parts that carry a file name or are not text, with zip and gzip archives opened within limits."""
    lim = limits or Limits()
    out: list[Attachment] = []
    for part in walk(msg, limits=lim):
        filename = part.get_filename()
        ctype = part.get_content_type()
        if filename is None and ctype.startswith("text/") and part.get_content_disposition() != "attachment":
            continue
        data = part_bytes(part)
        out.extend(expand_archive(filename, ctype, data, limits=lim))
    return out


def expand_archive(filename: str | None, ctype: str, data: bytes, *, limits: Limits | None = None) -> list[Attachment]:
    """Open zip and gzip payloads; raise ParseError naming the bomb limit that was hit."""
    lim = limits or Limits()
    name = (filename or "").lower()
    if data[:2] == b"\x1f\x8b" or name.endswith(".gz"):
        inner_name = filename[:-3] if filename and filename.lower().endswith(".gz") else filename
        return [Attachment(inner_name, "application/octet-stream", gunzip_limited(data, lim, filename))]
    if data[:4] == b"PK\x03\x04" or name.endswith(".zip"):
        return unzip_limited(data, lim, filename)
    return [Attachment(filename, ctype, data)]


def _check_ratio(out_size: int, in_size: int, lim: Limits, where: str | None) -> None:
    if out_size > lim.max_unpacked:
        raise ParseError(f"archive unpacks past the limit of {lim.max_unpacked} bytes (a zip bomb?)", source=where)
    if in_size and out_size > 1024 * 1024 and out_size / in_size > lim.max_ratio:
        raise ParseError(
            f"archive unpacks {out_size / in_size:.0f}x its size, past the ratio limit of {lim.max_ratio} "
            "(a zip bomb?)",
            source=where,
        )


def gunzip_limited(data: bytes, lim: Limits, where: str | None = None) -> bytes:
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            while chunk := gz.read(1024 * 1024):
                out.write(chunk)
                _check_ratio(out.tell(), len(data), lim, where)
    except (OSError, EOFError) as exc:
        raise ParseError(f"gzip data is corrupt: {exc}", source=where) from None
    return out.getvalue()


def unzip_limited(data: bytes, lim: Limits, where: str | None = None) -> list[Attachment]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ParseError(f"zip archive is corrupt: {exc}", source=where) from None
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > lim.max_members:
        raise ParseError(f"zip archive has {len(infos)} members, past the limit of {lim.max_members}", source=where)
    out: list[Attachment] = []
    total = 0
    for info in infos:
        buf = io.BytesIO()
        try:
            with zf.open(info) as member:
                while chunk := member.read(1024 * 1024):
                    buf.write(chunk)
                    total += len(chunk)
                    _check_ratio(total, len(data), lim, f"{where or 'zip'}:{info.filename}")
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
            raise ParseError(f"zip member {info.filename!r} cannot be read: {exc}", source=where) from None
        out.append(Attachment(info.filename, "application/octet-stream", buf.getvalue()))
    return out
