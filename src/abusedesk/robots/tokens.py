"""Product tokens: what RFC 9309 matches groups by, and how a User-Agent header yields them.

RFC 9309 section 2.2.1: a crawler's product token is ``[a-zA-Z_-]+`` and is matched case-insensitively against
the ``user-agent`` lines. In an egress log we only see the whole ``User-Agent`` header, so the candidates are the
header's product names (``Name/version``) and the names inside its comments (``(compatible; Name/2.1; +url)``),
generic browser and engine names left out (``Mozilla``, ``AppleWebKit`` ...): a crawler that names itself in either
place is judged by the group it named.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[A-Za-z_-]+")
_PRODUCT = re.compile(r"([A-Za-z_-]+)(?:/[^\s;()]*)?")

#: names that identify no crawler: browser and engine names every browser string carries
GENERIC_NAMES = frozenset(
    {"mozilla", "applewebkit", "khtml", "like", "gecko", "chrome", "safari", "firefox", "version", "mobile",
     "compatible", "windows", "linux", "macintosh", "x", "u", "edg", "opr", "trident", "msie", "android", "iphone",
     "cpu", "os", "intel", "mac", "nt", "wow", "win", "ubuntu", "headlesschrome"}
)  # fmt: skip


def is_product_token(value: str) -> bool:
    """Whether ``value`` is a valid product token by RFC 9309 (letters, ``_`` and ``-``; not empty)."""
    return _TOKEN.fullmatch(value) is not None


def product_tokens(user_agent: str) -> tuple[str, ...]:
    """The product tokens a User-Agent header names, in order, lower-cased, generic browser names left out.

    ``"Scrapy/2.11 (+https://scrapy.org)"`` → ``("scrapy",)``; ``"Mozilla/5.0 (compatible; Googlebot/2.1;
    +http://www.google.com/bot.html)"`` → ``("googlebot",)``; a bare token is itself.
    """
    value = user_agent.strip()
    if is_product_token(value):
        return (value.lower(),)
    out: list[str] = []
    for m in _PRODUCT.finditer(value):
        start = m.start()
        if start > 0 and value[start - 1] not in " (;,":  # part of a URL or a longer word, not a product
            continue
        name = m.group(1).lower()
        if name in GENERIC_NAMES or name.startswith(("http", "www")) or name in out:
            continue
        out.append(name)
    return tuple(out)
