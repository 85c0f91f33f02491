"""Has a mail's sender shown it is who its ``From`` says? The rule that keeps our replies from being aimed (issue 10).

Anyone can put a victim's address in ``From`` and a spam text in the subject; if our acknowledgement quoted it,
the desk would mail that text to the victim. So a reply quotes what the sender wrote (subject, reported addresses)
only to a *verified* sender, and anyone else gets a plain receipt with our reference:

- **DKIM- or SPF-aligned**, per an ``Authentication-Results`` header (RFC 8601) that our own receiving MTA added:
  only headers whose authserv-id is in ``intake.authserv_ids`` count (the MTA must remove incoming ones with that
  id, as RFC 8601 section 5 asks); ``dmarc=pass``, ``dkim=pass`` with ``header.d`` aligned with the ``From``
  domain, or ``spf=pass`` with ``smtp.mailfrom`` aligned with it. Aligned is relaxed alignment: the same domain,
  or one a subdomain of the other, neither being a bare top-level domain.
- **a known reporter**: an address (or ``@domain``) in ``intake.known_reporters``, or a ``reporters`` row marked
  ``trusted``.
- **an authenticated API client**: the channel that authenticated it sets ``meta["sender_verified"]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import Message
from email.utils import getaddresses

_COMMENT = re.compile(r"\([^()]*\)")


def domain_of(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    domain = address.rsplit("@", 1)[1].strip().strip(">").lower().rstrip(".")
    return domain or None


def is_aligned(a: str | None, b: str | None) -> bool:
    """Relaxed alignment: equal, or one a subdomain of the other (never a bare TLD like ``com``)."""
    if not a or not b:
        return False
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    return "." in shorter and longer.endswith("." + shorter)


def parse_results(value: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """One ``Authentication-Results`` value: its authserv-id and ``(method, result, {ptype.property: value})``."""
    text = _COMMENT.sub(" ", " ".join(value.split()))
    parts = [p.strip() for p in text.split(";")]
    authserv = parts[0].split()[0].lower() if parts and parts[0].split() else ""
    results = []
    for part in parts[1:]:
        tokens = part.split()
        if not tokens or "=" not in tokens[0]:
            continue
        method, _, result = tokens[0].partition("=")
        props = {}
        for token in tokens[1:]:
            key, sep, val = token.partition("=")
            if sep:
                props[key.lower()] = val.strip('"').lower()
        results.append((method.lower(), result.lower(), props))
    return authserv, results


def authenticated_by_results(message: Message | None, authserv_ids: Iterable[str]) -> str | None:
    """Why our MTA's Authentication-Results show the From domain is the sender's, or None."""
    trusted = {a.lower() for a in authserv_ids}
    if message is None or not trusted:
        return None
    senders = getaddresses([str(v) for v in message.get_all("From", [])])
    if len(senders) != 1:
        return None
    from_domain = domain_of(senders[0][1])
    for value in message.get_all("Authentication-Results", []):
        authserv, results = parse_results(str(value))
        if authserv not in trusted:
            continue
        for method, result, props in results:
            if result != "pass":
                continue
            if method == "dmarc" and is_aligned(props.get("header.from"), from_domain):
                return f"dmarc=pass for {from_domain} ({authserv})"
            if method == "dkim":
                d = props.get("header.d") or domain_of(props.get("header.i"))
                if is_aligned(d, from_domain):
                    return f"dkim=pass d={d} aligned with {from_domain} ({authserv})"
            if method == "spf":
                mailfrom = props.get("smtp.mailfrom", "")
                spf_domain = domain_of(mailfrom) or mailfrom or None
                if is_aligned(spf_domain, from_domain):
                    return f"spf=pass {spf_domain} aligned with {from_domain} ({authserv})"
    return None


def is_known_reporter(address: str | None, known: Iterable[str]) -> bool:
    """``address`` is listed in ``intake.known_reporters``, itself or by ``@domain``."""
    if not address:
        return False
    address = address.lower()
    domain = domain_of(address)
    for entry in known:
        entry = entry.strip().lower()
        if entry == address or (entry.startswith("@") and domain is not None and entry[1:] == domain):
            return True
    return False
