"""Safe handling of e-mail: parse, walk parts, decode text with any charset, open attachments within limits.

Complaint mail is hostile input: wrong or missing charsets, nested ``message/rfc822``, signed wrappers, huge
header lines and archives built to explode. Everything here returns something usable or raises ParseError
naming the limit that was hit; nothing here trusts a declared size or charset.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import gzip
import io
import ipaddress
import re
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from abusedesk.domain.errors import InputLimitExceeded, ParseError

if TYPE_CHECKING:
    from abusedesk.parsers.fastmime import HeaderBlock

    #: what the header readers below accept: a parsed message, or a header block read by parsers.fastmime
    Headers = Message | HeaderBlock

_HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]?", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one input (issue 9 item 3): bytes unpacked and decoded from all its archives and encoded parts
    together, the ratio out/in and members of each archive, MIME nesting, and seconds of parsing (0: no deadline).

    ``max_depth`` is how deep :func:`walk` looks for leaf parts (deeper ones are skipped); ``max_nesting`` is how
    deep a mail may nest at all before it is refused.
    """

    max_unpacked: int = 64 * 1024 * 1024
    max_ratio: int = 200
    max_members: int = 1000
    max_depth: int = 5
    max_nesting: int = 32
    max_seconds: float = 0.0


DEFAULT_LIMITS = Limits()


class Budget:
    """What one input may still spend: unpacked and decoded bytes, and time. One per input, carried by the Report.

    Every decompression (zip, gzip) and transfer decoding (base64, quoted-printable, uuencode) of the input
    charges the bytes it produces; passing ``Limits.max_unpacked`` in total raises InputLimitExceeded, so 45
    archives of 1 MiB each are bounded together, not one by one. The same part or archive member decoded again
    (two parsers sniffing the same mail) is charged once: a charge names what was decoded, and only bytes beyond
    the most charged before for that name count.

    The deadline is cooperative: loops over parts and rows call :meth:`tick` (cheap; the clock is read every
    1024th call) or :meth:`check_time`. No thread or signal is involved.
    """

    TICK_EVERY = 1024

    def __init__(self, limits: Limits | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or Limits()
        self.used = 0
        self._clock = clock
        self._deadline = clock() + self.limits.max_seconds if self.limits.max_seconds > 0 else None
        self._ticks = 0
        self._charged: dict[tuple[int, str], int] = {}
        self._keep: list[object] = []  # what charged keys point at, so their ids are not reused

    def charge(self, n: int, where: str | None = None) -> None:
        """Count ``n`` more bytes unpacked or decoded; raise InputLimitExceeded past the limit."""
        self.used += n
        if self.used > self.limits.max_unpacked:
            raise InputLimitExceeded(
                f"the input unpacks and decodes to more than {self.limits.max_unpacked} bytes, all archives and "
                "encoded parts together (setting intake.max_unpacked_bytes); it may be a zip bomb",
                source=where,
            )

    def charge_upto(self, origin: object, name: str, total: int, where: str | None = None) -> None:
        """Charge the ``total`` bytes decoded so far from ``name`` (a member) of ``origin`` (a part, an archive);
        what was charged before for the same origin and name is not charged again."""
        key = (id(origin), name)
        before = self._charged.get(key)
        if before is None:
            self._keep.append(origin)
            before = 0
        if total > before:
            self._charged[key] = total
            self.charge(total - before, where)

    def check_time(self, where: str | None = None) -> None:
        """Raise InputLimitExceeded when the input's parse deadline has passed."""
        if self._deadline is not None and self._clock() > self._deadline:
            raise InputLimitExceeded(
                f"parsing took longer than {self.limits.max_seconds:g} seconds (setting intake.max_parse_seconds); "
                "the input may be too large, or built to be slow to parse",
                source=where,
            )

    def tick(self, where: str | None = None) -> None:
        """One step of a loop (a row, a part): check the deadline every TICK_EVERY steps."""
        self._ticks += 1
        if self._deadline is not None and self._ticks % self.TICK_EVERY == 0:
            self.check_time(where)


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
    if not _HEADER_LINE.match(head):  # the first line (the pattern never reaches past a line end)
        return False
    # at least two header-shaped lines before the first blank line: the first, and the next one after it, with
    # no blank line (LF LF or CRLF CRLF) in between
    second = head.find(b"\n") + 1
    if second == 0:
        return False
    m = _HEADER_LINE.search(head, second)
    if m is None:
        return False
    at = m.start()
    return head.find(b"\n\n", 0, at) < 0 and head.find(b"\r\n\r\n", 0, at) < 0


def parse_message(data: bytes, *, max_nesting: int | None = None) -> Message:
    """Parse bytes into a Message; defects are recorded on the message, not raised.

    The ``compat32`` policy, not ``policy.default``: the modern policy parses every header it is asked for
    into a structured object, which made complaint mail ~8x slower to read (benchmarks/intake.py). Headers
    are decoded (RFC 2047) on demand by :func:`header` instead.

    A mail nested deeper than ``max_nesting`` (multiparts and attached messages) raises InputLimitExceeded: the
    stdlib parser recurses once per level, and 1,000 levels were a RecursionError (issue 9 item 3).
    """
    if max_nesting is None:
        max_nesting = DEFAULT_LIMITS.max_nesting
    if data.startswith(b"From "):
        data = data.split(b"\n", 1)[-1]
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(data)
    except RecursionError:
        raise InputLimitExceeded(_nesting_reason(max_nesting)) from None
    if nesting_depth(msg) > max_nesting:
        raise InputLimitExceeded(_nesting_reason(max_nesting))
    return msg


def _nesting_reason(max_nesting: int) -> str:
    return (
        f"MIME nesting deeper than {max_nesting} (setting intake.max_mime_depth); the mail may be built to exhaust "
        "the parser"
    )


def nesting_depth(msg: Message) -> int:
    """How deep parts nest (0: a single part), multiparts and attached messages alike; iterative, never recursive."""
    deepest = 0
    stack = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        if part.is_multipart():  # get_payload() of a leaf may decode it, and raise for a hostile charset
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend((sub, depth + 1) for sub in payload if isinstance(sub, Message))
    return deepest


_CHARSET_ALIASES = {"utf8": "utf-8", "unicode-1-1-utf-7": "utf-7", "x-unknown": "latin-1", "unknown-8bit": "latin-1"}


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode with the declared charset if it works, else UTF-8, else Windows-1252/Latin-1 (never fails)."""
    candidates = []
    if charset:
        cs = charset.strip().strip('"').lower().replace("\x00", "")
        if cs:
            candidates.append(_CHARSET_ALIASES.get(cs, cs))
    candidates += ["utf-8", "cp1252"]
    for cs in candidates:
        try:
            return data.decode(cs)
        except (LookupError, UnicodeDecodeError, ValueError):  # ValueError: a charset name codecs refuses
            continue
    return data.decode("latin-1")


_ENCODED = frozenset({"base64", "quoted-printable", "x-uuencode", "uuencode", "x-uue", "uue"})


def part_bytes(part: Message, budget: Budget | None = None) -> bytes:
    """The decoded payload of a leaf part (base64/quoted-printable undone); empty for a broken payload.

    With a budget, the bytes a transfer decoding produced are charged to it (once per part).
    """
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        if budget is not None and str(part.get("content-transfer-encoding", "")).strip().lower() in _ENCODED:
            budget.charge_upto(part, "", len(payload), part.get_filename())
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "replace") if isinstance(raw, str) else b""


def part_text(part: Message) -> str:
    return decode_bytes(part_bytes(part), part.get_content_charset())


def decode_header_value(value: object) -> str:
    """RFC 2047 encoded words decoded, folding undone; a malformed encoding is kept as it was written."""
    text = str(value)
    if "=?" in text:
        # MessageError: HeaderParseError, and CharsetError for a charset name that is not ASCII ("=?\xf5tf-8?q?..?=")
        with contextlib.suppress(MessageError, LookupError, UnicodeError, ValueError):
            text = str(make_header(decode_header(text)))
    elif "\n" not in text:
        return text.strip()  # the common case, without the regex: nothing folded, nothing encoded
    return re.sub(r"\s*\r?\n\s+", " ", text).strip()


def header(msg: Headers, name: str) -> str | None:
    """A header as text (encoded words decoded, folding undone); None when absent; never raises."""
    try:
        value = msg.get(name)
    except Exception:  # a malformed header must not stop the parse
        try:
            raw = msg.get_all(name) or []
        except Exception:
            raw = []
        value = raw[0] if raw else None
    if value is None:
        return None
    return decode_header_value(value)


def walk(msg: Message, *, depth: int = 0, budget: Budget | None = None) -> Iterator[Message]:
    """Every leaf part, descending into multiparts and attached messages (``message/rfc822``) up to max_depth.

    With a budget, each part visited is a tick of its deadline.
    """
    max_depth = (budget.limits if budget is not None else DEFAULT_LIMITS).max_depth
    if depth > max_depth:
        return
    if budget is not None:
        budget.tick()
    if msg.is_multipart():
        for sub in msg.get_payload() or []:
            if isinstance(sub, Message):
                yield from walk(sub, depth=depth + 1, budget=budget)
        return
    yield msg


def body_text(msg: Message, *, budget: Budget | None = None) -> str:
    """All text/plain parts joined; text/html only when there is no plain text (tags stripped)."""
    plain: list[str] = []
    html: list[str] = []
    for part in walk(msg, budget=budget):
        ctype = part.get_content_type()
        if part.get_content_disposition() == "attachment":
            continue
        if ctype == "text/plain":
            plain.append(part_text(part))
        elif ctype == "text/html":
            html.append(re.sub(r"<[^>]+>", " ", part_text(part)))
    return "\n".join(plain) if plain else "\n".join(html)


def attachments(msg: Message, *, budget: Budget | None = None) -> list[Attachment]:
    """Parts that carry a file name or are not text, with zip and gzip archives opened within the budget."""
    bud = budget or Budget()
    out: list[Attachment] = []
    for part in walk(msg, budget=bud):
        filename = part.get_filename()
        ctype = part.get_content_type()
        if filename is None and ctype.startswith("text/") and part.get_content_disposition() != "attachment":
            continue
        data = part_bytes(part, bud)
        out.extend(expand_archive(filename, ctype, data, budget=bud, origin=part))
    return out


def expand_archive(
    filename: str | None, ctype: str, data: bytes, *, budget: Budget | None = None, origin: object = None
) -> list[Attachment]:
    """Open zip and gzip payloads; raise ParseError naming the bomb limit that was hit.

    What they unpack to is charged to ``budget`` (a fresh one when none is given), once per ``origin`` (the part or
    input the archive came from) and member.
    """
    bud = budget or Budget()
    name = (filename or "").lower()
    if data[:2] == b"\x1f\x8b" or name.endswith(".gz"):
        inner_name = filename[:-3] if filename and filename.lower().endswith(".gz") else filename
        return [Attachment(inner_name, "application/octet-stream", gunzip_limited(data, bud, filename, origin))]
    if data[:4] == b"PK\x03\x04" or name.endswith(".zip"):
        return unzip_limited(data, bud, filename, origin)
    return [Attachment(filename, ctype, data)]


def _check_ratio(out_size: int, in_size: int, lim: Limits, where: str | None) -> None:
    if in_size and out_size > 1024 * 1024 and out_size / in_size > lim.max_ratio:
        raise InputLimitExceeded(
            f"archive unpacks {out_size / in_size:.0f}x its size, past the ratio limit of {lim.max_ratio} "
            "(setting intake.max_unpack_ratio); it may be a zip bomb",
            source=where,
        )


def gunzip_limited(data: bytes, budget: Budget, where: str | None = None, origin: object = None) -> bytes:
    out = io.BytesIO()
    key = origin if origin is not None else object()  # no origin: every call is charged
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            while chunk := gz.read(1024 * 1024):
                out.write(chunk)
                budget.charge_upto(key, "gzip", out.tell(), where)
                _check_ratio(out.tell(), len(data), budget.limits, where)
    except (OSError, EOFError, zlib.error) as exc:
        raise ParseError(f"gzip data is corrupt: {exc}", source=where) from None
    return out.getvalue()


def unzip_limited(data: bytes, budget: Budget, where: str | None = None, origin: object = None) -> list[Attachment]:
    lim = budget.limits
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise ParseError(f"zip archive is corrupt: {exc}", source=where) from None
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > lim.max_members:
        raise InputLimitExceeded(
            f"zip archive has {len(infos)} members, past the limit of {lim.max_members}", source=where
        )
    out: list[Attachment] = []
    total = 0
    key = origin if origin is not None else object()  # no origin: every call is charged
    for n, info in enumerate(infos):
        buf = io.BytesIO()
        member_where = f"{where or 'zip'}:{info.filename}"
        try:
            with zf.open(info) as member:
                while chunk := member.read(1024 * 1024):
                    buf.write(chunk)
                    total += len(chunk)
                    budget.charge_upto(key, f"{n}:{info.filename}", buf.tell(), member_where)
                    _check_ratio(total, len(data), lim, member_where)
        except _ZIP_ERRORS as exc:
            raise ParseError(f"zip member {info.filename!r} cannot be read: {exc}", source=where) from None
        out.append(Attachment(info.filename, "application/octet-stream", buf.getvalue()))
    return out


# --- archives unpacked as they are read (issue 9 item 3) ---------------------------------------------------------

_UNPACK_CHUNK = 1024 * 1024
_GZIP_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)
# zipfile raises ValueError ("negative seek value"), NotImplementedError (an unknown compression method), RuntimeError
# (encrypted) and zlib.error on corrupt archives, besides BadZipFile
_ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    RuntimeError,
    ValueError,
    NotImplementedError,
    zlib.error,
)


@dataclass(frozen=True, slots=True)
class PackedFile:
    """A file an input carries (itself, an attachment, an archive member), unpacked only as it is read: ``open``
    gives its bytes as a stream, charging the input's budget as they are unpacked, so a report of any size is read
    a row at a time. ``open`` may be called again (a second pass unpacks again; the budget charges it once)."""

    filename: str | None
    content_type: str
    open: Callable[[], BinaryIO]

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes (unpacks no more than the first chunk that holds them)."""
        with self.open() as fh:
            return fh.read(n)


@dataclass(slots=True)
class _ArchiveState:
    packed: int  # the archive's size, for the ratio
    totals: dict[str, int]  # the most unpacked so far of each member


class _Unpacking(io.RawIOBase):
    """An archive member or gzip stream read in the chunks :func:`unzip_limited` and :func:`gunzip_limited` read,
    each charged to the budget and held to the ratio limit as they do; corrupt data raises their ParseError."""

    def __init__(
        self,
        inner: BinaryIO,
        *,
        budget: Budget,
        origin: object,
        key: str,
        state: _ArchiveState,
        where: str | None,
        ratio_where: str | None,
        corrupt: str,
        errors: tuple[type[BaseException], ...],
        owned: BinaryIO | None = None,
    ) -> None:
        super().__init__()
        self._inner, self._owned = inner, owned
        self._budget, self._origin, self._key, self._state = budget, origin, key, state
        self._where, self._ratio_where, self._corrupt, self._errors = where, ratio_where, corrupt, errors
        self._chunk = b""
        self._pos = 0
        self._total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._pos >= len(self._chunk):
            try:
                self._chunk = self._inner.read(_UNPACK_CHUNK)
            except self._errors as exc:
                raise ParseError(self._corrupt.format(exc=exc), source=self._ratio_where) from None
            self._pos = 0
            if not self._chunk:
                return 0
            self._total += len(self._chunk)
            self._budget.charge_upto(self._origin, self._key, self._total, self._where)
            totals = self._state.totals
            totals[self._key] = max(totals.get(self._key, 0), self._total)
            _check_ratio(sum(totals.values()), self._state.packed, self._budget.limits, self._where)
        n = min(len(buffer), len(self._chunk) - self._pos)
        buffer[:n] = self._chunk[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
                if self._owned is not None:
                    self._owned.close()
            finally:
                super().close()


def _buffered(raw: _Unpacking) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(raw, buffer_size=64 * 1024))


def open_archive(
    filename: str | None,
    ctype: str,
    opener: Callable[[], BinaryIO],
    *,
    size: int,
    magic: bytes,
    budget: Budget,
    origin: object,
    stack: contextlib.ExitStack,
) -> list[PackedFile]:
    """:func:`expand_archive` without unpacking: the files ``opener``'s bytes (``size`` long, starting with
    ``magic``) hold, each unpacked as it is read. An archive kept open for its members is closed by ``stack``."""
    name = (filename or "").lower()
    if magic[:2] == b"\x1f\x8b" or name.endswith(".gz"):
        inner_name = filename[:-3] if filename and filename.lower().endswith(".gz") else filename
        state = _ArchiveState(size, {})

        def open_gzip() -> BinaryIO:
            fileobj = opener()
            raw = _Unpacking(
                cast(BinaryIO, gzip.GzipFile(fileobj=fileobj)),
                budget=budget,
                origin=origin,
                key="gzip",
                state=state,
                where=filename,
                ratio_where=filename,
                corrupt="gzip data is corrupt: {exc}",
                errors=_GZIP_ERRORS,
                owned=fileobj,
            )
            return _buffered(raw)

        return [PackedFile(inner_name, "application/octet-stream", open_gzip)]
    if magic[:4] == b"PK\x03\x04" or name.endswith(".zip"):
        fileobj = stack.enter_context(opener())
        try:
            zf = stack.enter_context(zipfile.ZipFile(fileobj))
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
            raise ParseError(f"zip archive is corrupt: {exc}", source=filename) from None
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > budget.limits.max_members:
            raise InputLimitExceeded(
                f"zip archive has {len(infos)} members, past the limit of {budget.limits.max_members}",
                source=filename,
            )
        state = _ArchiveState(size, {})
        return [
            PackedFile(
                info.filename, "application/octet-stream", _member_opener(zf, info, n, filename, budget, origin, state)
            )
            for n, info in enumerate(infos)
        ]
    return [PackedFile(filename, ctype, opener)]


def _member_opener(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    n: int,
    where: str | None,
    budget: Budget,
    origin: object,
    state: _ArchiveState,
) -> Callable[[], BinaryIO]:
    corrupt = f"zip member {info.filename!r} cannot be read: {{exc}}"

    def open_member() -> BinaryIO:
        try:
            member = zf.open(info)
        except _ZIP_ERRORS as exc:
            raise ParseError(corrupt.format(exc=exc), source=where) from None
        raw = _Unpacking(
            cast(BinaryIO, member),
            budget=budget,
            origin=origin,
            key=f"{n}:{info.filename}",
            state=state,
            where=f"{where or 'zip'}:{info.filename}",
            ratio_where=where,
            corrupt=corrupt,
            errors=_ZIP_ERRORS,
        )
        return _buffered(raw)

    return open_member


def packed_attachments(msg: Message, *, budget: Budget, stack: contextlib.ExitStack) -> list[PackedFile]:
    """:func:`attachments` without unpacking archives: each part's transfer encoding is undone (charged), and its
    archives are opened member by member as they are read."""
    out: list[PackedFile] = []
    for part in walk(msg, budget=budget):
        filename = part.get_filename()
        ctype = part.get_content_type()
        if filename is None and ctype.startswith("text/") and part.get_content_disposition() != "attachment":
            continue
        data = part_bytes(part, budget)
        out.extend(
            open_archive(
                filename,
                ctype,
                functools.partial(io.BytesIO, data),
                size=len(data),
                magic=data[:4],
                budget=budget,
                origin=part,
                stack=stack,
            )
        )
    return out


# --- additions for the complaint-mail parsers (ARF, X-ARF, SpamCop, URL reports, free text); issue 4 item 2 ---

_INTERNAL_NETS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "::1/128",
        "::/128",
        "fc00::/7",
        "fe80::/10",
    )
)
# an address in a Received line: [192.0.2.1], (192.0.2.1), [IPv6:2001:db8::1]
_RECEIVED_IP = re.compile(r"[\[(](?:IPv6:)?([0-9a-fA-F:.]{3,45})[\])]")
_RECEIVED_FROM = re.compile(r"^\s*from\s+(\S+)", re.IGNORECASE)
_RECEIVED_BY = re.compile(r"\bby\s+(\S+)", re.IGNORECASE)
_PGP_SIGNED = re.compile(
    r"-----BEGIN PGP SIGNED MESSAGE-----\r?\n(?:Hash:[^\n]*\r?\n)*\r?\n(.*?)\r?\n-----BEGIN PGP SIGNATURE-----.*?"
    r"-----END PGP SIGNATURE-----",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class ReceivedHop:
    """One ``Received:`` header: who handed the message over (``from`` host and address) to whom (``by``)."""

    from_host: str | None
    ip: str | None
    by: str | None
    raw: str


def is_internal_ip(text: str) -> bool:
    """Loopback, RFC 1918, CGNAT, link-local, ULA: addresses a mail hop from outside cannot have."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return True
    mapped = getattr(addr, "ipv4_mapped", None)
    if mapped is not None:
        addr = mapped
    return any(addr in net for net in _INTERNAL_NETS if net.version == addr.version)


def received_lines(msg: Headers) -> list[str]:
    """The ``Received:`` headers, newest first, each on one line (runs of white space made one space)."""
    values = [str(raw) for raw in msg.get_all("Received", failobj=[]) or []]
    joined = "\x00".join(values)
    if len(values) < 2 or "\x00" in joined:
        # " ".join(s.split()) is re.sub(r"\s+", " ", s).strip(): both split on str.isspace() white space
        return [" ".join(value.split()) for value in values]
    # the same for all of them at once: NUL is no white space, so split() keeps it inside a word; the one space
    # the squeeze may leave beside it is the edge of a value and goes
    squeezed = " ".join(joined.split()).replace(" \x00", "\x00").replace("\x00 ", "\x00")
    return squeezed.split("\x00")


def received_hops(msg: Headers) -> list[ReceivedHop]:
    """The ``Received:`` chain, newest first, each with the first valid address found in its ``from`` clause."""
    hops: list[ReceivedHop] = []
    for text in received_lines(msg):
        from_part = re.split(r"\bby\b", text, maxsplit=1, flags=re.IGNORECASE)[0]
        ip = None
        for cand in _RECEIVED_IP.findall(from_part):
            try:
                ip = str(ipaddress.ip_address(cand))
                break
            except ValueError:
                continue
        m_from, m_by = _RECEIVED_FROM.match(text), _RECEIVED_BY.search(text)
        hops.append(
            ReceivedHop(m_from.group(1) if m_from else None, ip, m_by.group(1).rstrip(";") if m_by else None, text)
        )
    return hops


def first_external_hop(msg: Headers) -> ReceivedHop | None:
    """The newest hop whose sending address is not internal: the address the receiving system saw connect.

    Used when a report names no source address (Microsoft JMRP-style sparse ARF); the caller marks the address
    as derived, since a forged or unusual chain can mislead this.
    """
    for hop in received_hops(msg):
        if hop.ip and not is_internal_ip(hop.ip):
            return hop
    return None


# "Tue, 19 Jan 2016 14:32:40 -0500 (EST)": a four-digit year, seconds, a numeric zone, at most a zone comment
_RFC5322_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"([1-9][0-9]{3}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})(?: \([^()]*\))?"
)
_MONTHS = {
    m: i
    for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)
}


_ZONES: dict[str, timedelta] = {}  # "+0100" -> its offset (at most 2 * 100 * 100 spellings)


def parse_mail_date(text: str | None) -> datetime | None:
    """An RFC 5322 date (or ISO 8601) as aware UTC; tolerant of ``UT``, ``(CET)`` comments and missing zones.

    A date without zone (or ``-0000``) is taken as UTC; an unreadable date gives None.
    """
    if not text:
        return None
    m = _RFC5322_DATE.fullmatch(text)
    if m is not None:  # the usual form read directly, as email.utils reads it (tests/parsers/test_fastmime.py)
        day, month, year, hour, minute, second, sign, tz_hours, tz_minutes = m.groups()
        zone = sign + tz_hours + tz_minutes
        offset = _ZONES.get(zone)
        if offset is None:
            seconds = int(tz_hours) * 3600 + int(tz_minutes) * 60
            if seconds >= 86400:  # no time zone object takes it: the general reading decides
                return _parse_mail_date_general(text)
            offset = _ZONES[zone] = timedelta(seconds=-seconds if sign == "-" else seconds)
        try:
            # the wall time less its offset: what astimezone(UTC) gives, without a timezone object per date
            return (
                datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC) - offset
            )
        except (ValueError, OverflowError):
            pass  # out of range: the general reading decides
    return _parse_mail_date_general(text)


def _parse_mail_date_general(text: str) -> datetime | None:
    """parse_mail_date for any form: comments dropped, ``UT`` read as UTC, then email.utils or ISO 8601."""
    s = re.sub(r"\([^)]*\)", " ", text).strip()
    s = re.sub(r"\bUTz?\b", "UTC", s)
    s = re.sub(r"\s+", " ", s)
    try:
        value = email.utils.parsedate_to_datetime(s)
    except (TypeError, ValueError, IndexError, OverflowError):
        value = None
    if value is None:
        try:
            value = datetime.fromisoformat(s.replace("Z", "+00:00").replace(" UTC", "+00:00"))
        except ValueError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def signed_content(msg: Message) -> Message:
    """The signed content of a signed mail, else the mail itself.

    ``multipart/signed`` (S/MIME detached or PGP/MIME): the first part. Opaque S/MIME
    (``application/pkcs7-mime; smime-type=signed-data``): the content carried inside the CMS structure. The
    signature is not verified here: a parser reads what was signed; trust decisions belong to the intake.
    """
    ctype = msg.get_content_type()
    if ctype == "multipart/signed":
        parts = msg.get_payload()
        if isinstance(parts, list) and parts and isinstance(parts[0], Message):
            return parts[0]
    elif ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        smime_type = msg.get_param("smime-type")
        if not isinstance(smime_type, str) or smime_type.lower() == "signed-data":
            inner = cms_signed_content(part_bytes(msg))
            if inner is not None:
                return parse_message(inner)
    return msg


_OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")  # 1.2.840.113549.1.7.2


def _tlv(data: bytes, pos: int, depth: int = 0) -> tuple[int, int, int, int]:
    """One BER element at ``pos``: (tag byte, content start, content end, next position). Raises ValueError."""
    if depth > 32 or pos + 2 > len(data):
        raise ValueError("truncated or too deeply nested BER")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag numbers are not used in CMS")
    length = data[pos + 1]
    start = pos + 2
    if length == 0x80:  # indefinite: children up to the end-of-contents marker
        if not tag & 0x20:
            raise ValueError("indefinite length on a primitive element")
        p = start
        while data[p : p + 2] != b"\x00\x00":
            p = _tlv(data, p, depth + 1)[3]
        return tag, start, p, p + 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or start + n > len(data):
            raise ValueError("bad BER length")
        length = int.from_bytes(data[start : start + n], "big")
        start += n
    end = start + length
    if end > len(data):
        raise ValueError("BER element runs past the end of the data")
    return tag, start, end, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    p = start
    while p < end and data[p : p + 2] != b"\x00\x00":
        tag, s, e, p = _tlv(data, p)
        out.append((tag, s, e))
    return out


def _octets(data: bytes, tag: int, start: int, end: int) -> bytes:
    """An OCTET STRING's bytes, joining the chunks of a constructed (BER) one."""
    if tag == 0x04:
        return data[start:end]
    return b"".join(_octets(data, t, s, e) for t, s, e in _children(data, start, end))


def cms_signed_content(der: bytes) -> bytes | None:
    """The encapsulated content of a CMS/PKCS #7 SignedData (opaque S/MIME), or None when it is not one."""
    try:
        tag, s, e, _ = _tlv(der, 0)
        if tag != 0x30:
            return None
        info = _children(der, s, e)
        if len(info) < 2 or info[0][0] != 0x06 or der[info[0][1] : info[0][2]] != _OID_SIGNED_DATA:
            return None
        explicit = _children(der, info[1][1], info[1][2])  # [0] EXPLICIT SignedData
        signed = _children(der, explicit[0][1], explicit[0][2])
        encap = _children(der, signed[2][1], signed[2][2])  # version, digestAlgorithms, encapContentInfo
        if len(encap) < 2:
            return None  # detached signature: no content inside
        wrapped = _children(der, encap[1][1], encap[1][2])  # [0] EXPLICIT eContent
        tag, s, e = wrapped[0]
        return _octets(der, tag, s, e)
    except (ValueError, IndexError, RecursionError):
        return None


def strip_inline_pgp(text: str) -> str:
    """The text of an inline PGP clear-signed block (dash-escaping undone), or the text unchanged."""
    m = _PGP_SIGNED.search(text)
    if not m:
        return text
    body = "\n".join(line[2:] if line.startswith("- ") else line for line in m.group(1).splitlines())
    return text[: m.start()] + body + text[m.end() :]


def embedded_message(msg: Message) -> Message | None:
    """The first attached message (``message/rfc822`` or ``text/rfc822-headers``) found in the mail."""
    for part in _walk_all(msg):
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            return parse_message(part_bytes(part))
        if ctype in ("text/rfc822-headers", "message/rfc822-headers", "text/rfc822-header"):
            return parse_message(part_bytes(part).lstrip() + b"\n\n")
    return None


def _walk_all(msg: Message, depth: int = 0) -> Iterator[Message]:
    """Every part, containers included, without descending into attached messages (depth-bounded)."""
    yield msg
    if depth > 8 or msg.get_content_type() in ("message/rfc822", "message/global"):
        return
    payload = msg.get_payload() if msg.is_multipart() else None
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                yield from _walk_all(sub, depth + 1)


def parts(msg: Message) -> Iterator[Message]:
    """Every part of the mail (containers too), not descending into attached messages."""
    return _walk_all(msg)


def sender_address(msg: Headers) -> str | None:
    """The bare address of ``From:`` (lower case), or None."""
    value = header(msg, "From")
    if not value:
        return None
    m = _PLAIN_FROM.fullmatch(value)
    if m is not None:  # "a@example.net" or "Name <a@example.net>": what email.utils.parseaddr finds, directly
        return (m.group(1) or m.group(2)).lower()
    _, addr = email.utils.parseaddr(value)
    return addr.lower() or None


_ADDR = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_FROM = re.compile(rf"({_ADDR})|(?:[A-Za-z0-9_-]+(?: [A-Za-z0-9_-]+)*|\"[^\"\\]*\") ?<({_ADDR})>")
