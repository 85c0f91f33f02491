"""What abusedesk knows about e-mail domains: the shipped disposable lists, the operator's lists, compiled once.

Policy section 2 forbids temporary "dead-drop" addresses for accounts (issue 14). The shipped knowledge is the
union of two PyPI packages, each named with its installed version in every verdict:

* ``disposable-email-domains`` (``disposable_email_domains.blocklist``, ~10k domains, updated weekly),
* ``mailchecker`` (``MailChecker.MailChecker.blacklist``, ~56k domains).

The operator adds ``allow``, ``deny`` and ``review`` entries (settings ``screening.*_domains`` or files of one
domain a line), which win over the shipped lists at every level of the walk.

A domain matches an entry that is the domain itself or a parent of it (``sub.tempmail.example`` matches
``tempmail.example``). The walk is public-suffix aware (publicsuffixlist, offline): a shipped entry that is itself
a public suffix (``ddns.net``, ``msk.ru``: each name below it belongs to someone else) matches only itself, never
the names below it. So a check is a handful of dict look-ups: no DNS, no regular expression, microseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import idna

from abusedesk.domain.errors import ConfigError

#: bit of each shipped list in the compiled table (a domain on both lists carries both bits)
DED = 1
MAILCHECKER = 2
SHIPPED_NAMES = {DED: "disposable-email-domains", MAILCHECKER: "mailchecker"}

OperatorVerdict = Literal["allow", "deny", "review"]


@dataclass(frozen=True, slots=True)
class ListSource:
    """One list the knowledge was compiled from: its name, version (package version or content hash) and size."""

    name: str
    version: str
    entries: int

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "entries": self.entries}


@dataclass(frozen=True, slots=True)
class DomainMatch:
    """A domain's match: the entry that matched (the domain or a parent), and which lists hold it."""

    matched: str
    lists: tuple[str, ...]
    operator: OperatorVerdict | None = None


def normalise_domain(text: str) -> str:
    """A domain as the lists spell it: lower case, no trailing dot, IDN as its A-label (``xn--``).

    Raises ValueError for a name that IDNA cannot encode.
    """
    name = text.strip().lower().rstrip(".")
    if name.startswith("*."):
        name = name[2:]
    if name.startswith("@"):
        name = name[1:]
    if not name or " " in name:
        raise ValueError(f"{text!r} is not a domain name")
    if not name.isascii():
        try:  # the idna package (IDNA 2008 with UTS 46 mapping), as email-validator encodes
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise ValueError(f"{text!r} is not a valid internationalised domain name ({exc})") from None
    return name


def read_domain_file(path: Path) -> list[str]:
    """One domain a line; ``#`` starts a comment; blank lines are skipped. A bad line is a ConfigError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read domain list {path}: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError(f"domain list {path} is not UTF-8 text", file=str(path)) from None
    out: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            out.append(normalise_domain(entry))
        except ValueError as exc:
            raise ConfigError(f"{exc}; one domain a line is expected", file=str(path), line=number) from None
    return out


@dataclass(frozen=True, slots=True)
class OperatorLists:
    """The operator's own entries, already normalised: they win over the shipped lists."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    review: tuple[str, ...] = ()
    #: where the entries came from (setting or file), for the provenance
    origin: tuple[str, ...] = field(default=())

    @classmethod
    def build(
        cls,
        *,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        review: Iterable[str] = (),
        allow_file: Path | None = None,
        deny_file: Path | None = None,
        review_file: Path | None = None,
    ) -> OperatorLists:
        lists: dict[str, list[str]] = {"allow": [], "deny": [], "review": []}
        origin: list[str] = []
        for name, entries, path in (
            ("allow", allow, allow_file),
            ("deny", deny, deny_file),
            ("review", review, review_file),
        ):
            for entry in entries:
                try:
                    lists[name].append(normalise_domain(entry))
                except ValueError as exc:
                    raise ConfigError(f"{exc}", field=f"screening.{name}_domains") from None
            if path is not None:
                lists[name].extend(read_domain_file(path))
                origin.append(str(path))
        return cls(
            allow=tuple(sorted(set(lists["allow"]))),
            deny=tuple(sorted(set(lists["deny"]))),
            review=tuple(sorted(set(lists["review"]))),
            origin=tuple(origin),
        )

    def table(self) -> dict[str, OperatorVerdict]:
        """entry → verdict; one domain on two lists: allow beats review beats deny (the operator's exception)."""
        out: dict[str, OperatorVerdict] = {}
        for verdict, entries in (("deny", self.deny), ("review", self.review), ("allow", self.allow)):
            for entry in entries:
                out[entry] = verdict  # type: ignore[assignment]  # the loop's literals
        return out

    @property
    def digest(self) -> str:
        text = "\n".join(f"{v} {d}" for d, v in sorted(self.table().items()))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@cache
def shipped_lists() -> tuple[dict[str, int], tuple[ListSource, ...]]:
    """The union of both PyPI lists as domain → bits, and their provenance. Read once per process."""
    from disposable_email_domains import blocklist
    from MailChecker import MailChecker

    table: dict[str, int] = {}
    for bit, domains in ((DED, blocklist), (MAILCHECKER, MailChecker.blacklist)):
        for domain in domains:
            key = domain.strip().lower().rstrip(".")
            if key:
                table[key] = table.get(key, 0) | bit
    sources = (
        ListSource("disposable-email-domains", version("disposable-email-domains"), len(blocklist)),
        ListSource("mailchecker", version("mailchecker"), len(MailChecker.blacklist)),
    )
    return table, sources


@cache
def public_suffixes() -> tuple[object, str]:
    """The offline public suffix list (publicsuffixlist's bundled copy) and its version."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(), version("publicsuffixlist")


@cache
def _shipped_split() -> tuple[dict[str, int], dict[str, int], frozenset[str]]:
    """The shipped table split once: entries that match below themselves, and public suffixes (only themselves).

    The third item is the walk entries as a frozenset, for batch look-ups (benchmarks, re-screening).
    """
    walk: dict[str, int] = {}
    exact: dict[str, int] = {}
    for domain, bits in shipped_lists()[0].items():
        (exact if is_public_suffix(domain) else walk)[domain] = bits
    return walk, exact, frozenset(walk)


@cache
def _walk_series() -> Any:
    import polars as pl

    return pl.Series("walk", sorted(_shipped_split()[2]), dtype=pl.String)


def is_public_suffix(domain: str) -> bool:
    psl = public_suffixes()[0]
    return bool(psl.is_public(domain))  # type: ignore[attr-defined]


class DomainKnowledge:
    """The compiled knowledge: ``match(domain)`` walks the domain and its parents through dict look-ups.

    ``walk`` holds the shipped entries that match their sub-domains; ``exact`` the shipped entries that are public
    suffixes and so match only themselves; ``operator`` the operator's entries, looked at first.
    """

    def __init__(self, operator: OperatorLists | None = None) -> None:
        self.walk, self.exact, self.walk_keys = _shipped_split()
        sources = shipped_lists()[1]
        self.operator_lists = operator or OperatorLists()
        self.operator: dict[str, OperatorVerdict] = self.operator_lists.table()
        op = self.operator_lists
        self.sources: tuple[ListSource, ...] = (
            *sources,
            ListSource("publicsuffixlist", public_suffixes()[1], 0),
            ListSource("operator", op.digest, len(self.operator)),
        )
        #: one line naming every list and its version, carried in every verdict
        self.version = " + ".join(f"{s.name} {s.version}" for s in self.sources)

    @property
    def walk_series(self) -> Any:
        """The walk entries as a Polars Series (for ``screening.batch``), built once per process."""
        return _walk_series()

    def lists_of(self, bits: int) -> tuple[str, ...]:
        return tuple(name for bit, name in SHIPPED_NAMES.items() if bits & bit)

    def match(self, domain: str) -> DomainMatch | None:
        """The first entry on the walk from ``domain`` up through its parents, operator entries first."""
        if self.operator:
            d = domain
            while True:
                verdict = self.operator.get(d)
                if verdict is not None:
                    return DomainMatch(d, ("operator",), verdict)
                dot = d.find(".")
                if dot < 0:
                    break
                d = d[dot + 1 :]
        bits = self.exact.get(domain)
        if bits is not None:
            return DomainMatch(domain, self.lists_of(bits))
        walk = self.walk
        d = domain
        while True:
            bits = walk.get(d)
            if bits is not None:
                return DomainMatch(d, self.lists_of(bits))
            dot = d.find(".")
            if dot < 0:
                return None
            d = d[dot + 1 :]

    def is_listed(self, domain: str) -> bool:
        """The fastest answer: is ``domain`` (lower case, A-label) denied by a list? Operator lists included."""
        if self.operator:
            m = self.match(domain)
            return m is not None and m.operator != "allow"
        if domain in self.exact:
            return True
        walk = self.walk
        d = domain
        while True:
            if d in walk:
                return True
            dot = d.find(".")
            if dot < 0:
                return False
            d = d[dot + 1 :]
