"""Screening many addresses at once: the parent-domain walk as column operations (Polars).

``flag_batch(knowledge, addresses)`` answers, for each address, whether the lists flag it (the same answer as
``AddressScreen.is_disposable_fast``: no syntax check; the tests hold the two to each other). The domain is the
text after the last ``@``, lower-cased. The walk is level by level: every domain is looked up (``is_in`` over the
shipped walk set, and the public-suffix entries for the domain itself), then only the rows not yet matched that
still have a parent go on, each cut after its first dot, so the deep levels touch few rows. Rows that meet an
operator entry are decided one at a time (operator lists are short, and win over the shipped ones).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from abusedesk.screening.knowledge import DomainKnowledge


def domains_of(addresses: Sequence[str] | pl.Series) -> pl.Series:
    """The lower-cased text after the last ``@`` of each address."""
    series = addresses if isinstance(addresses, pl.Series) else pl.Series("address", addresses, dtype=pl.String)
    return series.str.split("@").list.last().str.to_lowercase()


def walk_hits(domains: pl.Series, keys: pl.Series, first: pl.Series | None = None) -> pl.Series:
    """True where a domain or one of its parents is in ``keys``; ``first`` adds matches of the domain itself."""
    implode = keys.implode()
    hit = domains.is_in(implode).fill_null(False)
    if first is not None:
        hit = hit | first
    index = pl.Series("i", range(len(domains)), dtype=pl.UInt32)
    current = domains
    while True:
        dot = current.str.find(".", literal=True)
        go_on = dot.is_not_null() & ~hit.gather(index)
        if not go_on.any():
            return hit
        index, current = index.filter(go_on), current.filter(go_on)
        current = current.str.slice(dot.filter(go_on) + 1)
        found = current.is_in(implode).fill_null(False)
        if found.any():
            hit = hit.scatter(index.filter(found), True)


def flag_batch(knowledge: DomainKnowledge, addresses: Sequence[str] | pl.Series) -> pl.Series:
    """A boolean Series: True where the address's domain (or a parent) is on a list (operator allow excepted)."""
    domains = domains_of(addresses)
    exact = domains.is_in(pl.Series(list(knowledge.exact), dtype=pl.String).implode()).fill_null(False)
    flagged = walk_hits(domains, knowledge.walk_series, exact).alias("flagged")
    if not knowledge.operator:
        return flagged
    near = walk_hits(domains, pl.Series(list(knowledge.operator), dtype=pl.String))
    rows = near.arg_true()
    if len(rows) == 0:
        return flagged
    values = flagged.to_list()
    for index in rows.to_list():
        values[index] = knowledge.is_listed(domains[index])
    return pl.Series("flagged", values, dtype=pl.Boolean)
