"""Format hints: a channel that knows what it receives names the parser, and the parse stage skips sniffing.

IntelMQ routes by feed; abusedesk sniffs by default (``IntakeService._sniff`` asks every parser), and a hint in a
raw input's ``meta["parser"]`` overrides that. The setting ``intake.parser_hints`` says which places deliver
which format: an envelope recipient (the SMTP/LMTP listener's ``rcpt_to``; a feedback-loop address gets ARF), an
IMAP mailbox, a drop folder. ``ParserHints`` is that setting checked against the registered parsers, built
with the intake service, so a misspelt parser name stops start-up instead of quarantining every input of that
place. A hinted input its parser cannot read is quarantined with the parser's reason, like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from abusedesk.config import ParserHintSettings
from abusedesk.domain.errors import ConfigError

log = logging.getLogger(__name__)

_KEY = "intake__parser_hints__{}"


@dataclass(frozen=True, slots=True)
class Hint:
    """A parser name, and what chose it (kept in the raw input's meta as ``parser_hint``)."""

    parser: str
    reason: str


def _address(text: str) -> str:
    return text.strip().strip("<>").strip().lower()


def _folder(path: Path | str) -> Path:
    return Path(path).expanduser().resolve()


@dataclass(frozen=True, slots=True)
class ParserHints:
    """``intake.parser_hints`` with its parser names checked; look-ups by recipient, mailbox or folder."""

    recipients: Mapping[str, str]
    mailboxes: Mapping[str, str]
    folders: Mapping[Path, str]

    @classmethod
    def none(cls) -> ParserHints:
        return cls({}, {}, {})

    @classmethod
    def from_settings(cls, settings: ParserHintSettings, parser_names: Callable[[], Iterable[str]]) -> ParserHints:
        """The hints, or ConfigError naming the key and the place whose parser is not registered.

        ``parser_names`` is called only when some hint is set (loading the parsers is then needed anyway).
        """
        groups = {"recipients": settings.recipients, "mailboxes": settings.mailboxes, "folders": settings.folders}
        if not any(groups.values()):
            return cls.none()
        known = set(parser_names())
        for group, mapping in groups.items():
            for place, name in mapping.items():
                if name not in known:
                    key = _KEY.format(group)
                    raise ConfigError(
                        f"setting {key!r} (env ABUSEDESK_{key.upper()}) sends {place!r} to parser {name!r}, which "
                        f"is not a registered parser ({', '.join(sorted(known))}); a misspelt name, or a parser "
                        "plugin that is not installed?",
                        field=key,
                    )
        return cls(
            {_address(a): n for a, n in settings.recipients.items()},
            dict(settings.mailboxes),
            {_folder(f): n for f, n in settings.folders.items()},
        )

    def __bool__(self) -> bool:
        return bool(self.recipients or self.mailboxes or self.folders)

    def for_recipients(self, addresses: Iterable[str]) -> Hint | None:
        """The parser of a mail's envelope recipients: the one their hints name, None when none or several do.

        A mail to the feedback-loop address and to abuse@ as well is still a feedback report; one to two hinted
        addresses with different parsers is sniffed (and logged), since the channel cannot tell which is meant.
        """
        found = {(a, self.recipients[a]) for a in map(_address, addresses) if a in self.recipients}
        names = {name for _, name in found}
        if len(names) > 1:
            log.warning("recipients %s name different parsers (%s); the mail is sniffed", sorted(found), names)
            return None
        if not found:
            return None
        address, name = min(found)
        return Hint(name, f"recipient {address}")

    def for_mailbox(self, mailbox: str) -> Hint | None:
        """The parser of an IMAP mailbox (its name as given to the poller), or None."""
        name = self.mailboxes.get(mailbox)
        return None if name is None else Hint(name, f"mailbox {mailbox}")

    def for_folder(self, folder: Path) -> Hint | None:
        """The parser of a drop folder (compared as resolved paths), or None."""
        if not self.folders:
            return None
        resolved = _folder(folder)
        name = self.folders.get(resolved)
        return None if name is None else Hint(name, f"folder {resolved}")

    @staticmethod
    def apply(meta: dict[str, object], hint: Hint | None) -> None:
        """Put ``hint`` in a raw input's meta, unless the channel already named a parser."""
        if hint is not None and "parser" not in meta:
            meta["parser"] = hint.parser
            meta["parser_hint"] = hint.reason
