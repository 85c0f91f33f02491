"""Screening one address: syntax (email-validator, no DNS), then the domain knowledge, then (optionally) MX.

The verdict is one of ``ok | disposable | invalid | review`` with the rule that decided it, the matched domain,
the list(s) that hold it and the version of every list in force (``knowledge``), so a verdict can be explained
and re-checked later (issue 14; docs/reference/screening.md).

=================  ==========  =====================================================================
rule               verdict     when
=================  ==========  =====================================================================
``syntax``         invalid     email-validator refuses the address (deliverability checks are off)
``operator-allow`` ok          the domain or a parent is on the operator's allow list
``operator-deny``  disposable  ... on the operator's deny list
``operator-review`` review     ... on the operator's review list
``list``           disposable  the domain or a parent is on a shipped list (named in ``lists``)
``public-suffix``  review      the domain is itself a public suffix (``user@co.uk``): no registrant
``mx``             review      not listed, but its MX hosts are those of known disposable providers
``none``           ok          nothing matched
=================  ==========  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from email_validator import EmailNotValidError, validate_email

from abusedesk.screening.knowledge import DomainKnowledge, is_public_suffix

if TYPE_CHECKING:
    from abusedesk.screening.mx import MxIntel

VerdictName = Literal["ok", "disposable", "invalid", "review"]
VERDICTS: tuple[VerdictName, ...] = ("ok", "disposable", "invalid", "review")

_OPERATOR_VERDICT: dict[str, VerdictName] = {"allow": "ok", "deny": "disposable", "review": "review"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What screening said about one address, and why."""

    address: str
    verdict: VerdictName
    rule: str
    reason: str
    knowledge: str
    normalized: str | None = None
    domain: str | None = None
    matched_domain: str | None = None
    lists: tuple[str, ...] = ()
    list_versions: tuple[tuple[str, str], ...] = ()
    mx_hosts: tuple[str, ...] = ()

    @property
    def is_ok(self) -> bool:
        return self.verdict == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "verdict": self.verdict,
            "rule": self.rule,
            "reason": self.reason,
            "normalized": self.normalized,
            "domain": self.domain,
            "matched_domain": self.matched_domain,
            "lists": [{"name": n, "version": v} for n, v in self.list_versions],
            "mx_hosts": list(self.mx_hosts),
            "knowledge": self.knowledge,
        }


class AddressScreen:
    """Screens addresses against one compiled :class:`DomainKnowledge` (and an :class:`MxIntel` when given)."""

    def __init__(self, knowledge: DomainKnowledge, mx: MxIntel | None = None, mx_verdict: VerdictName = "review"):
        self.knowledge = knowledge
        self.mx = mx
        self.mx_verdict = mx_verdict
        self._versions = {s.name: s.version for s in knowledge.sources}

    def _versions_of(self, lists: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        return tuple((name, self._versions.get(name, "?")) for name in lists)

    def screen(self, address: str) -> Verdict:
        """The verdict for one address (syntax first; DNS only when MX intelligence is on)."""
        kn = self.knowledge
        try:
            parsed = validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            return Verdict(address, "invalid", "syntax", f"not a valid e-mail address: {exc}", kn.version)
        domain = parsed.ascii_domain.lower()
        normalized = parsed.normalized
        listed = self.screen_domain(address, domain, normalized)
        if listed is not None:
            return listed
        if is_public_suffix(domain):
            return Verdict(
                address,
                "review",
                "public-suffix",
                f"{domain} is a public suffix: no one registrant stands behind it",
                kn.version,
                normalized=normalized,
                domain=domain,
                matched_domain=domain,
                list_versions=self._versions_of(("publicsuffixlist",)),
            )
        if self.mx is not None:
            hit = self.mx.disposable_mx(domain)
            if hit is not None:
                provider_hosts, matched = hit
                return Verdict(
                    address,
                    self.mx_verdict,
                    "mx",
                    f"{domain} is on no list, but its mail goes to {', '.join(provider_hosts)}, the MX of "
                    f"known disposable providers ({', '.join(matched)})",
                    kn.version,
                    normalized=normalized,
                    domain=domain,
                    matched_domain=domain,
                    mx_hosts=provider_hosts,
                    lists=("mx",),
                    list_versions=(("disposable-mx", self.mx.version),),
                )
        return Verdict(address, "ok", "none", f"{domain} is on no list", kn.version, normalized, domain)

    def screen_domain(self, address: str, domain: str, normalized: str | None = None) -> Verdict | None:
        """The verdict of the lists for ``address`` at a normalised ``domain``, or None when no list names it."""
        kn = self.knowledge
        m = kn.match(domain)
        if m is None:
            return None
        if m.operator is not None:
            verdict = _OPERATOR_VERDICT[m.operator]
            how = {"ok": "allows", "disposable": "denies", "review": "sends to review"}[verdict]
            rule, reason = f"operator-{m.operator}", f"the operator's {m.operator} list {how} {m.matched}"
        else:
            below = "" if m.matched == domain else f" (a parent of {domain})"
            verdict, rule = "disposable", "list"
            reason = f"{m.matched}{below} is a disposable e-mail domain on {' and '.join(m.lists)}"
        return Verdict(
            address, verdict, rule, reason, kn.version, normalized, domain, m.matched, m.lists,
            self._versions_of(m.lists),
        )  # fmt: skip

    def is_disposable_fast(self, address: str) -> bool:
        """No syntax check: the domain after the last ``@``, lower-cased, looked up (the benchmark's single call)."""
        return self.knowledge.is_listed(address[address.rfind("@") + 1 :].lower())
