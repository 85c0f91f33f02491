"""The content key of a raw input: what makes a second input "the same report again" at the intake door.

Two inputs are one report only when they say the same thing and come from the same reporter (issue 9 item 7,
issue 10 item 8). A shared ``Message-ID`` or XARF ``report_id`` is not enough: reporters reuse them (five
Shadowserver report types under one Message-ID, a sample set's IPv6 twin of an IPv4 report), and such an input is
a new report, linked to the earlier one, never a silent duplicate.

The key is the SHA-256 of the door's reporter (empty when none is known) and the input's canonical content:

- **Mail** (``mime.looks_like_mail``): the bytes with line ends made LF (SMTP sends CRLF, a maildir keeps LF), a
  leading mbox ``From `` line dropped, and the header fields added in transit set aside (``TRANSPORT_HEADERS``,
  ``TRANSPORT_PREFIXES``); every other header field, in its order and spelling, and the whole body count. A copy
  delivered twice (another ``Received`` chain, an IMAP re-fetch, a maildir export) has the same key; a copy
  with another Subject, Date, body or attachment has another.
- **Anything else** (CSV, JSON, XML, text): the whole bytes. A channel that knows the document better may give
  its canonical form instead (the HTTP API gives a XARF document's canonical JSON, so a re-serialised copy of
  the same document is the same report).
"""

from __future__ import annotations

import hashlib
import os

from abusedesk.parsers import mime

#: header fields a relay, our MTA, a delivery agent or a mail store adds on the way: not the author's content
TRANSPORT_HEADERS = frozenset(
    {
        "received",
        "x-received",
        "return-path",
        "delivered-to",
        "x-original-to",
        "envelope-to",
        "authentication-results",
        "received-spf",
        "x-virus-scanned",
        "x-virus-status",
        "status",  # mbox / IMAP flags written by mail readers
        "x-status",
        "x-keywords",
        "x-uid",
    }
)
#: header-name prefixes added in transit: X-Envelope-From/-To, ARC-Seal/-Message-Signature/-Authentication-Results,
#: spam-filter verdicts (X-Spam-Status, X-Spam-Score ...), Mozilla's mbox flags
TRANSPORT_PREFIXES = ("x-envelope-", "arc-", "x-spam-", "x-mozilla-status")

_VERSION = b"abusedesk content key v1\0"


def is_transport_header(name: str) -> bool:
    """Whether a header field (by name, any case) is added in transit rather than written by the author."""
    low = name.strip().lower()
    return low in TRANSPORT_HEADERS or low.startswith(TRANSPORT_PREFIXES)


def canonical_mail(data: bytes) -> bytes:
    """A mail's bytes without what transport added: LF line ends, no mbox ``From `` line, no transport headers."""
    text = data.replace(b"\r\n", b"\n").lstrip()
    if text.startswith(b"From "):  # the mailbox's separator line, not part of the message
        text = text.split(b"\n", 1)[1] if b"\n" in text else b""
    head, sep, body = text.partition(b"\n\n")
    fields: list[bytes] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:  # a folded continuation belongs to the field before it
            fields[-1] += b"\n" + line
        else:
            fields.append(line)
    kept = [f for f in fields if not (b":" in f and is_transport_header(f.split(b":", 1)[0].decode("latin-1")))]
    return b"\n".join(kept) + sep + body


def content_key(data: bytes, *, reporter: str | None, canonical: bytes | None = None) -> str:
    """The content key (64 hex digits) of ``data`` from ``reporter``; ``canonical`` replaces the content when given."""
    h = hashlib.sha256(_VERSION)
    h.update((reporter or "").encode("utf-8", "surrogateescape") + b"\0")
    if canonical is not None:
        h.update(b"canonical\0")
        h.update(canonical)
    elif mime.looks_like_mail(data):
        h.update(b"mail\0")
        h.update(canonical_mail(data))
    else:
        h.update(b"bytes\0")
        h.update(data)
    return h.hexdigest()


def content_key_of_file(path: str | os.PathLike[str], *, reporter: str | None, chunk: int = 1 << 20) -> str:
    """``content_key`` of a file that is not mail, read a chunk at a time (a feed too large to hold)."""
    h = hashlib.sha256(_VERSION)
    h.update((reporter or "").encode("utf-8", "surrogateescape") + b"\0")
    h.update(b"bytes\0")
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
