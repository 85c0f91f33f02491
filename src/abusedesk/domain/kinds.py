"""The catalogue of event kinds, and the lossless mapping to and from XARF v4.

An event kind says *what was observed* (a port scan, a phishing page, a copyright notice). Which clause of the
policy a kind falls under is the policy file's business, not this module's: see ``abusedesk.policy``.

Every one of XARF v4's 32 (category, type) pairs maps to exactly one kind and back, so an XARF v4 report converts
in and out without loss. Kinds that XARF has no type for (``open-proxy``, ``disposable-email``, ...) export to the
nearest XARF pair given in ``KIND_TO_XARF``; the exported report keeps our kind in ``abusedesk_kind`` so a round
trip through abusedesk stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    title: str
    xarf: tuple[str, str]  # (category, type) used when exporting


_KINDS: tuple[Kind, ...] = (
    # network abuse (clause 1.8 by default)
    Kind("scan", "Port or host scan", ("connection", "port_scan")),
    Kind("reconnaissance", "Reconnaissance other than port scanning", ("connection", "reconnaissance")),
    Kind("vulnerability-scan", "Scanning for vulnerable software", ("connection", "vulnerability_scan")),
    Kind("dos", "Denial of service", ("connection", "ddos")),
    Kind("open-proxy", "Open proxy", ("vulnerability", "open_service")),
    Kind("open-relay", "Open mail relay", ("vulnerability", "open_service")),
    Kind("open-resolver", "Open recursive DNS resolver", ("vulnerability", "open_service")),
    Kind(
        "open-service", "Other service open to abuse (amplifier, exposed admin port)", ("vulnerability", "open_service")
    ),
    # unconsented load or security testing (1.3)
    Kind("load-test", "Load or security test without the provider's consent", ("connection", "ddos")),
    # intrusion (1.7)
    Kind("brute-force", "Login brute force", ("connection", "login_attack")),
    Kind("sql-injection", "SQL injection or other web attack", ("connection", "sql_injection")),
    Kind("intrusion", "Unauthorised access", ("content", "remote_compromise")),
    Kind("compromised-host", "Compromised server", ("infrastructure", "compromised_server")),
    Kind("infected-host", "Host infected with malware", ("connection", "infected_host")),
    Kind("botnet", "Botnet command and control", ("infrastructure", "botnet")),
    Kind("spoofed-source", "Traffic with a forged source address", ("connection", "reconnaissance")),
    Kind("exposed-data", "Data exposed to the public", ("content", "exposed_data")),
    Kind("vulnerable-service", "Service with a known vulnerability (CVE)", ("vulnerability", "cve")),
    Kind("misconfiguration", "Dangerous misconfiguration", ("vulnerability", "misconfiguration")),
    # interference with the provider (1.9, 1.10, 1.15)
    Kind("service-interference", "Interference with the provider's equipment or availability", ("connection", "ddos")),
    Kind(
        "circumvention",
        "Circumventing trials, quotas or other limits of the service",
        ("content", "suspicious_registration"),
    ),
    Kind(
        "other-product-tos",
        "Use of another product of the provider against its terms",
        ("reputation", "threat_intelligence"),
    ),
    # mail (1.11)
    Kind("spam", "Unsolicited bulk e-mail", ("messaging", "spam")),
    Kind("bulk-messaging", "Bulk messaging other than e-mail spam", ("messaging", "bulk_messaging")),
    Kind("header-forgery", "Forged or obscured mail headers, assumed sender identity", ("messaging", "spam")),
    # content (1.5, 1.6, 1.1, 1.4)
    Kind("phishing", "Phishing", ("content", "phishing")),
    Kind("fraud", "Fraud (pyramid schemes, fake shops, scams)", ("content", "fraud")),
    Kind("harassment", "Harassment or defamation", ("content", "fraud")),
    Kind("mirroring", "Mirroring another website", ("content", "brand_infringement")),
    Kind("malware", "Malware distribution", ("content", "malware")),
    Kind(
        "suspicious-registration", "Suspicious domain or account registration", ("content", "suspicious_registration")
    ),
    Kind("csam", "Child sexual abuse material", ("content", "csam")),
    Kind("csem", "Child sexual exploitation material", ("content", "csem")),
    Kind("illegal-content", "Other unlawful content", ("content", "fraud")),
    Kind("privacy", "Violation of privacy or publicity rights", ("content", "exposed_data")),
    Kind("legal-request", "Request from law enforcement or a court", ("reputation", "threat_intelligence")),
    Kind("hateful-content", "Hateful, discriminatory or violent extremist content", ("content", "fraud")),
    # intellectual property (1.2)
    Kind("copyright", "Copyright infringement (web)", ("copyright", "copyright")),
    Kind("copyright-p2p", "Copyright infringement on peer-to-peer networks", ("copyright", "p2p")),
    Kind("copyright-cyberlocker", "Copyright infringement on a file locker", ("copyright", "cyberlocker")),
    Kind("copyright-link-site", "Links to infringing copies", ("copyright", "link_site")),
    Kind("copyright-ugc", "Infringing user-generated content", ("copyright", "ugc_platform")),
    Kind("copyright-usenet", "Copyright infringement on Usenet", ("copyright", "usenet")),
    Kind("trademark", "Trademark or brand infringement", ("content", "brand_infringement")),
    # crawling (1.14)
    Kind("crawling", "Crawling without a unique user agent or ignoring robots.txt", ("connection", "scraping")),
    # third-party policy, reputation (1.12)
    Kind("blocklisted", "Listed on a third-party blocklist", ("reputation", "blocklist")),
    Kind("threat-intel", "Named in threat intelligence", ("reputation", "threat_intelligence")),
    # high risk use (1.13)
    Kind("high-risk-use", "High-risk use (life, health, physical property)", ("reputation", "threat_intelligence")),
    # accounts (2)
    Kind(
        "disposable-email",
        "Account registered with a disposable e-mail address",
        ("content", "suspicious_registration"),
    ),
    # an observation, not in itself abuse: the signup detector judges it (sections 2 and 1.10; issue 14)
    Kind(
        "signup",
        "An account signup (screened; may link to a suspended customer)",
        ("content", "suspicious_registration"),
    ),
    # anything a parser cannot classify
    Kind("other", "Unclassified complaint, needs an analyst", ("reputation", "threat_intelligence")),
)

KINDS: dict[str, Kind] = {k.name: k for k in _KINDS}

#: The 32 XARF v4 (category, type) pairs, each to exactly one kind (the inverse of the chosen exports).
XARF_TO_KIND: dict[tuple[str, str], str] = {
    ("connection", "ddos"): "dos",
    ("connection", "infected_host"): "infected-host",
    ("connection", "login_attack"): "brute-force",
    ("connection", "port_scan"): "scan",
    ("connection", "reconnaissance"): "reconnaissance",
    ("connection", "scraping"): "crawling",
    ("connection", "sql_injection"): "sql-injection",
    ("connection", "vulnerability_scan"): "vulnerability-scan",
    ("content", "brand_infringement"): "trademark",
    ("content", "csam"): "csam",
    ("content", "csem"): "csem",
    ("content", "exposed_data"): "exposed-data",
    ("content", "fraud"): "fraud",
    ("content", "malware"): "malware",
    ("content", "phishing"): "phishing",
    ("content", "remote_compromise"): "intrusion",
    ("content", "suspicious_registration"): "suspicious-registration",
    ("copyright", "copyright"): "copyright",
    ("copyright", "cyberlocker"): "copyright-cyberlocker",
    ("copyright", "link_site"): "copyright-link-site",
    ("copyright", "p2p"): "copyright-p2p",
    ("copyright", "ugc_platform"): "copyright-ugc",
    ("copyright", "usenet"): "copyright-usenet",
    ("infrastructure", "botnet"): "botnet",
    ("infrastructure", "compromised_server"): "compromised-host",
    ("messaging", "bulk_messaging"): "bulk-messaging",
    ("messaging", "spam"): "spam",
    ("reputation", "blocklist"): "blocklisted",
    ("reputation", "threat_intelligence"): "threat-intel",
    ("vulnerability", "cve"): "vulnerable-service",
    ("vulnerability", "misconfiguration"): "misconfiguration",
    ("vulnerability", "open_service"): "open-service",
}

XARF_CATEGORIES: frozenset[str] = frozenset(c for c, _ in XARF_TO_KIND)


def is_kind(name: str) -> bool:
    return name in KINDS


def kind_from_xarf(category: str, type_: str) -> str:
    """The kind for an XARF v4 (category, type); ``other`` for a pair XARF does not define."""
    return XARF_TO_KIND.get((category.strip().lower(), type_.strip().lower().replace("-", "_")), "other")


def xarf_for_kind(kind: str) -> tuple[str, str]:
    """The XARF v4 (category, type) to export a kind as."""
    return KINDS[kind].xarf if kind in KINDS else KINDS["other"].xarf
