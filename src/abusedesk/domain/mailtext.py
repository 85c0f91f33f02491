"""Text of the mail the desk writes (notices to customers, replies to reporters): subjects and bodies.

Issue 11 found replies whose Subject kept the reporter's folding (``Report received:    Phishing site…``), a
Subject whose first line was empty, and bodies in quoted-printable that showed ``=20`` to readers that do not
decode it. Three causes, three fixes:

- :func:`clean_subject` decodes RFC 2047 encoded words, unfolds and collapses white space, drops control
  characters and cuts at a length;
- :data:`MAIL_POLICY` folds an ASCII Subject at word boundaries itself: the standard library's folder moves a
  value that would fit on a continuation line *whole* onto it, leaving ``Subject:`` alone on the first line;
- :func:`body_cte` picks ``7bit`` for ASCII text whose lines fit in 998 octets (RFC 5322), so a plain reply is
  readable as it is; other text goes quoted-printable.
"""

from __future__ import annotations

import contextlib
import email.policy
import textwrap
from email.header import decode_header, make_header


def clean_subject(value: object, limit: int = 200) -> str:
    """A subject as one line: encoded words decoded, folding and runs of white space made one space."""
    text = "" if value is None else str(value)
    if "=?" in text:
        with contextlib.suppress(ValueError, LookupError, UnicodeError):  # a malformed word stays as written
            text = str(make_header(decode_header(text)))
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def body_cte(body: str) -> str:
    """The Content-Transfer-Encoding for a text body: ``7bit`` when it is ASCII with lines of at most 998."""
    if body.isascii() and all(len(line) <= 998 for line in body.splitlines()):
        return "7bit"
    return "quoted-printable"


class MailPolicy(email.policy.EmailPolicy):
    """``email.policy.SMTP`` whose Subject (when ASCII) folds at word boundaries from the first line on."""

    def _fold_subject(self, name: str, value: str) -> str | None:
        if name.lower() != "subject" or not value.isascii() or "\n" in value or "\r" in value:
            return None
        width = self.max_line_length or 78
        lines = textwrap.wrap(
            f"{name}: {value}",
            width=width,
            subsequent_indent=" ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        return self.linesep.join(lines) + self.linesep if lines else None

    def fold(self, name: str, value: str) -> str:
        folded = self._fold_subject(name, value)
        return folded if folded is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = self._fold_subject(name, value)
        return folded.encode("ascii") if folded is not None else super().fold_binary(name, value)


MAIL_POLICY = MailPolicy(linesep="\r\n")
