"""What a notice says about each kind of finding: its evidence, laid out, and how to fix the common kinds.

A notice is only useful if the customer can find the problem and fix it (issue 11, item 3). For each finding the
notice shows the facts its detector kept (``detectors/facts.py``): the time (once when it is one instant), the
target, ports and protocol, counts, and a sample of headers or log lines; per case, advice for the kind of
finding. Advice is chosen by *family*: an ``open-service`` finding for PostgreSQL is an exposed database, for NTP
an amplifier; :func:`family` decides.

The reporter's identity is shown only when the reporter agreed to be named to customers
(``notices.disclose_reporters``); otherwise the notice says who reported only as "a third party" or "our own
monitoring".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# services that hold data: exposed to the internet they are an "exposed database"
DATABASES = frozenset(
    {
        "postgres", "postgresql", "mysql", "mariadb", "mssql", "mongodb", "redis", "elasticsearch", "couchdb",
        "cassandra", "db2", "memcached", "kafka", "clickhouse", "influxdb", "opensearch",
    }
)  # fmt: skip
# UDP services abused for reflection/amplification
AMPLIFIERS = frozenset(
    {"ntp", "ssdp", "snmp", "chargen", "qotd", "ldap", "cldap", "mdns", "netbios", "portmapper", "ws-discovery",
     "coap", "tftp", "ubiquiti", "rdpeudp", "stun", "ard", "nat-pmp", "xdmcp", "ipmi", "dvr"}
)  # fmt: skip

FAMILY_TITLES: dict[str, str] = {
    "open-resolver": "Open recursive DNS resolver",
    "open-proxy": "Open proxy",
    "open-relay": "Open mail relay",
    "exposed-database": "Database reachable from the internet",
    "amplifier": "Service usable for reflection and amplification attacks",
    "open-service": "Service reachable from the internet",
    "compromised-host": "Compromised host",
    "brute-force": "Password guessing (brute force) from your address",
    "scan": "Scanning from your address",
    "dos": "Denial-of-service traffic from your address",
    "spam": "Unsolicited mail (spam) sent from your service",
    "phishing": "Phishing page hosted on your service",
    "malware": "Malware distributed from your service",
    "copyright": "Allegedly infringing file on your service",
    "other": "Reported use",
}

ADVICE: dict[str, tuple[str, ...]] = {
    "open-resolver": (
        "Restrict recursion to your own clients: in BIND `allow-recursion { <your networks>; };`, in Unbound "
        "`access-control:` lines for your networks only, in dnsmasq `--local-service` or a firewall rule.",
        "If the server only needs to answer for your own zones, switch recursion off altogether.",
        "Block UDP and TCP port 53 from the internet in your security group if no outside client needs it.",
    ),
    "open-proxy": (
        "Require authentication on the proxy, or bind it to localhost or your private network only "
        "(Squid `http_access deny all` after your allowed networks; Dante/SOCKS `client pass` for your networks).",
        "Close the proxy port to the internet in your security group, and check the proxy's logs for abuse "
        "that went through it.",
    ),
    "open-relay": (
        "Relay mail only for your authenticated users and your own networks (Postfix "
        "`smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination`).",
        "Check the mail queue for spam that went through the relay and remove it.",
    ),
    "exposed-database": (
        "Do not expose the database to the whole internet: allow only the addresses that need it (security group "
        "or firewall), or use a private network or an SSH tunnel / VPN.",
        "Bind the server to a private address (PostgreSQL `listen_addresses`, MySQL `bind-address`, Redis "
        "`bind` and `protected-mode yes`, MongoDB `net.bindIp`, Elasticsearch `network.host`).",
        "Require authentication with strong passwords and TLS, and check the database for unknown users, "
        "changed data or ransom notes: an exposed database is often already copied or wiped.",
    ),
    "amplifier": (
        "Close the UDP port to the internet in your security group; the service is rarely needed from outside.",
        "If it must answer outsiders, switch off the commands attackers use for amplification (for NTP "
        "`disable monitor` / `restrict default noquery`; for SNMP a non-default community and an allow list).",
    ),
    "open-service": (
        "Check whether this service must be reachable from the internet; if not, close its port in your security "
        "group or firewall, or bind it to a private address.",
        "If it must stay open, keep it patched and require authentication.",
    ),
    "compromised-host": (
        "Treat the host as compromised: isolate it, keep a copy of its disk and logs for your investigation, and "
        "look for unknown processes, cron jobs, SSH keys and users.",
        "Rebuild it from a known-good image rather than cleaning it, rotate every password and key it held, and "
        "patch whatever let the attacker in before you bring it back.",
    ),
    "brute-force": (
        "Password guessing from your address usually means the host is compromised or runs a tool someone "
        "should not: find the process making the connections (`ss -tnp`, your flow logs) and stop it.",
        "If the host was compromised: isolate it, rebuild it from a known-good image, rotate its credentials and "
        "keys, and patch what let the attacker in.",
    ),
    "scan": (
        "Find the process making the connections (`ss -tnp`, your flow logs) and stop it; scanning networks you "
        "have no permission to test breaches the policy even when it is a research tool.",
        "If you did not start it, the host is probably compromised: isolate and rebuild it.",
    ),
    "dos": (
        "Stop the traffic at once (security group egress rules) and find its cause; if the host was compromised, "
        "isolate and rebuild it.",
    ),
    "spam": (
        "Find out how the mail was sent: a compromised mail account or web form, a vulnerable script, or a list "
        "without consent. Stop the sending, reset the affected passwords and clear the mail queue.",
        "Send only to recipients who asked for your mail, with a working unsubscribe link, and authenticate "
        "your mail (SPF, DKIM, DMARC).",
    ),
    "phishing": (
        "Take the page down now and keep a copy of it, its files and the web server's logs for your investigation.",
        "Phishing pages are usually planted through a vulnerable application or stolen credentials: update the "
        "site's software and plug-ins, remove unknown files and accounts, and change the passwords used to "
        "manage it.",
    ),
    "malware": ("Remove the file and find how it got there; scan the host and rebuild it if it was compromised.",),
    "copyright": (
        "Remove the file or disable access to it, or tell us why you believe it does not infringe (for example, "
        "that you hold a licence); we will pass a proper counter-notice on.",
    ),
}


def family(kind: str, facts: dict[str, Any] | None = None) -> str:
    """The advice family of a finding: its kind, refined by the service for ``open-service``."""
    if kind == "open-service":
        service = str((facts or {}).get("service") or (facts or {}).get("report_type") or "").lower()
        service = service.removeprefix("scan_").replace("_", "-")
        if service in DATABASES or any(service.startswith(d) for d in DATABASES):
            return "exposed-database"
        if service in AMPLIFIERS or any(service.startswith(a) for a in AMPLIFIERS):
            return "amplifier"
        if service in ("dns", "dns-openresolver"):
            return "open-resolver"
        if "proxy" in service or service == "socks":
            return "open-proxy"
        return "open-service"
    if kind in ("intrusion", "spoofed-source", "infected-host", "botnet-drone", "compromised-host"):
        return "compromised-host"
    if kind.startswith("copyright") or kind == "trademark":
        return "copyright"
    if kind in ("header-forgery",):
        return "spam"
    return kind if kind in FAMILY_TITLES else "other"


def span(start: str | None, end: str | None) -> str:
    """``at T`` for one instant, ``from A to B`` for a range (times are ISO-8601 UTC strings)."""
    if not start and not end:
        return ""
    if not start or not end or start == end:
        return f"at {start or end}"
    return f"from {start} to {end}"


def is_disclosed(reporter: str | None, agreed: Iterable[str]) -> bool:
    """Whether ``reporter`` agreed to be named to customers: its address, or ``@domain``, is in ``agreed``."""
    if not reporter:
        return False
    address = reporter.strip().lower()
    domain = address.rpartition("@")[2]
    for entry in agreed:
        e = entry.strip().lower()
        if e and (e == address or (e.startswith("@") and e[1:] == domain)):
            return True
    return False


@dataclass(frozen=True, slots=True)
class FindingView:
    """One finding as a notice shows it (text and HTML templates render the same view)."""

    when: str
    summary: str
    details: tuple[tuple[str, str], ...]
    headers: tuple[str, ...]
    lines: tuple[str, ...]


def _port(port: Any, transport: Any) -> str:
    return f"{port}/{transport}" if transport else str(port)


def view_finding(finding: dict[str, Any], agreed: Iterable[str]) -> FindingView:
    """Lay out one finding summary (``cases.lifecycle.finding_summary``) for a customer."""
    facts: dict[str, Any] = dict(finding.get("facts") or {})
    start = facts.get("first_seen") or finding.get("window_start")
    end = facts.get("last_seen") or finding.get("window_end")
    details: list[tuple[str, str]] = []
    if facts.get("source"):
        port = f", port {_port(facts['source_port'], facts.get('transport'))}" if facts.get("source_port") else ""
        details.append(("Your address" if facts.get("url") is None else "Location", f"{facts['source']}{port}"))
    if facts.get("hostname"):
        details.append(("Host name", str(facts["hostname"])))
    if facts.get("url") and facts.get("url") != facts.get("source"):
        details.append(("URL", str(facts["url"])))
    if facts.get("target") or facts.get("target_port"):
        target = str(facts.get("target") or "")
        if facts.get("target_port"):
            target = (target + " " if target else "") + f"port {_port(facts['target_port'], facts.get('transport'))}"
        details.append(("Target", target))
    elif facts.get("transport") and not facts.get("source_port"):
        details.append(("Protocol", str(facts["transport"])))
    if facts.get("service"):
        details.append(("Service", str(facts["service"])))
    if facts.get("count") is not None:
        unit = str(facts.get("count_unit") or "events")
        details.append((unit.capitalize(), f"{int(facts['count']):,}"))
    if facts.get("report_type"):
        details.append(("Report type", str(facts["report_type"])))
    if facts.get("work"):
        details.append(("Work", str(facts["work"])))
    for name in facts.get("files") or ():
        details.append(("File", str(name)))
    reporter = facts.get("reporter")
    if reporter:
        details.append(("Reported by", str(reporter) if is_disclosed(reporter, agreed) else "a third party"))
    return FindingView(
        when=span(start, end),
        summary=str(finding.get("summary") or finding.get("kind") or ""),
        details=tuple(details),
        headers=tuple(facts.get("headers") or ()),
        lines=tuple(facts.get("lines") or ()),
    )


def advice_for(families: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
    """(title, advice paragraphs) for each family that has advice, in the order given, once each."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for fam in dict.fromkeys(families):
        if fam in ADVICE:
            out.append((FAMILY_TITLES.get(fam, fam), ADVICE[fam]))
    return out
