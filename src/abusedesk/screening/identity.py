"""Normalised identities: the one mailbox behind many spellings of an address (clause 1.10, issue 14).

A suspended customer who signs up again rarely uses the very same string. ``normalise_identity`` folds the
spellings one mailbox answers to into one key, following each provider's documented rules:

=====================================================  =============================================================
provider (domains)                                     rule
=====================================================  =============================================================
every domain                                           case folded; IDN domain as its A-label; ``+tag`` removed
                                                       (RFC 5233 sub-addressing, which most mail systems honour)
Gmail (``gmail.com``, ``googlemail.com``)              dots in the local part ignored; googlemail.com is gmail.com
Outlook (``outlook.com``, ``hotmail.*``, ``live.*``)   ``+tag`` only (dots count)
Yahoo (``yahoo.*``, ``ymail.com``, ``rocketmail.com``)  ``base-keyword`` disposable addresses: from the first ``-``
                                                       removed (Yahoo IDs have none); ymail, rocketmail: yahoo.com
Proton (``proton.me``, ``protonmail.com/.ch``, pm.me)  dots, hyphens and underscores ignored; one domain
iCloud (``icloud.com``, ``me.com``, ``mac.com``)        one domain
Fastmail (``fastmail.com`` and its domains)            ``user@alias.fastmail.com`` is ``user+alias``: the alias dropped
=====================================================  =============================================================

The key is for linking, never for sending: ``a.b+x@googlemail.com`` → ``ab@gmail.com``.
"""

from __future__ import annotations

from abusedesk.screening.knowledge import normalise_domain

GMAIL = frozenset({"gmail.com", "googlemail.com"})
YAHOO = frozenset({"ymail.com", "rocketmail.com"})
PROTON = frozenset({"proton.me", "protonmail.com", "protonmail.ch", "pm.me"})
ICLOUD = frozenset({"icloud.com", "me.com", "mac.com"})
FASTMAIL = frozenset({"fastmail.com", "fastmail.fm", "messagingengine.com"})


def split_address(address: str) -> tuple[str, str]:
    """(local part, domain) at the last ``@``; ValueError when there is none or either side is empty."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{address!r} is not an e-mail address (no local part and domain around an '@')")
    return local, domain


def normalise_identity(address: str) -> str:
    """The linking key of ``address`` (see the module's table). ValueError for what is not an address."""
    local, domain = split_address(address)
    if local.startswith('"') and local.endswith('"') and len(local) >= 2:
        local = local[1:-1]
    local = local.lower()
    domain = normalise_domain(domain)
    for suffix in FASTMAIL:
        if domain.endswith("." + suffix):  # user@alias.fastmail.com delivers to user+alias@fastmail.com
            domain = suffix
            break
    local = local.split("+", 1)[0] or local
    if domain in GMAIL:
        return local.replace(".", "") + "@gmail.com"
    if domain.startswith("yahoo.") or domain in YAHOO:
        if "-" in local:
            local = local.split("-", 1)[0] or local  # Yahoo IDs have no hyphen: from the first one is a keyword
        return f"{local}@{'yahoo.com' if domain in YAHOO else domain}"
    if domain in PROTON:
        return local.replace(".", "").replace("-", "").replace("_", "") + "@proton.me"
    if domain in ICLOUD:
        return local + "@icloud.com"
    return f"{local}@{domain}"
