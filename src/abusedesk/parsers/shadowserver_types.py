"""Shadowserver report types and what each one means for an abuse desk (our own table).

This table is written by the abusedesk project from the report names and the per-type summary in the fixture
corpus's MANIFEST; it is not derived from Shadowserver's report schema (that repository has no licence). Each
report type says:

- ``kind``: the abusedesk event kind (``abusedesk.domain.kinds``) a row of this report becomes;
- ``role``: whether the reported address is the one *doing* something (``actor``), one that is *exposed* (an open
  or vulnerable service our customer runs), or the *victim* (e.g. the target of a DDoS);
- ``ip`` / ``port``: the column names of the reported address and port, in order of preference;
- ``required``: the columns without which the report is unusable. When a known report type lacks one, the input
  is quarantined as *schema drift* instead of being parsed half-way;
- ``confidence``: how sure the report is that the kind applies (informational "accessible service" reports are
  low, sinkhole hits are high);
- ``signature``: columns that, together, only this report type has, so a CSV without its file name can still be
  typed from its header.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReportType:
    name: str
    kind: str
    role: str = "exposed"
    ip: tuple[str, ...] = ("ip",)
    port: tuple[str, ...] = ("port",)
    required: tuple[str, ...] = ("timestamp", "ip", "port")
    confidence: float = 0.8
    signature: frozenset[str] = frozenset()
    title: str = ""


_EVENT_IP = ("src_ip",)
_EVENT_PORT = ("src_port",)
_EVENT_REQ = ("timestamp", "src_ip", "src_port")


def _scan(
    name: str,
    kind: str = "open-service",
    *,
    conf: float = 0.8,
    sig: tuple[str, ...] = (),
    port_required: bool = True,
    title: str = "",
) -> ReportType:
    """A scan_* report: Shadowserver found a service on the reported address (it is exposed, not acting)."""
    req = ("timestamp", "ip", "port") if port_required else ("timestamp", "ip")
    return ReportType(name, kind, "exposed", ("ip",), ("port",), req, conf, frozenset(sig), title)


def _event(
    name: str, kind: str, *, role: str = "actor", conf: float = 0.9, sig: tuple[str, ...] = (), title: str = ""
) -> ReportType:
    """An event4_/event6_ report: something was seen coming from ``src_ip``."""
    return ReportType(name, kind, role, _EVENT_IP, _EVENT_PORT, _EVENT_REQ, conf, frozenset(sig), title)


_TYPES: tuple[ReportType, ...] = (
    # --- the reported address is an open service that can be abused (clause 1.8) or is vulnerable
    _scan("scan_dns", "open-resolver", conf=0.9, sig=("dns_version", "min_amplification"), title="Open DNS resolver"),
    _scan("dns_openresolver", "open-resolver", conf=0.9, title="Open DNS resolver (pre-2016 name)"),
    _scan("scan_http_proxy", "open-proxy", conf=0.9, sig=("proxy_authenticate", "via"), title="Open HTTP proxy"),
    _scan("population_http_proxy", "open-proxy", conf=0.6, title="HTTP proxy seen in the population scan"),
    _scan("scan_socks", "open-proxy", conf=0.9, title="Open SOCKS4/5 proxy"),
    _scan("scan_chargen", "open-service", conf=0.9, title="Open Chargen (UDP amplifier)"),
    _scan("scan_qotd", "open-service", conf=0.9, sig=("quote",), title="Open QOTD (UDP amplifier)"),
    _scan("scan_ntp", "open-service", conf=0.8, sig=("clk_wander", "refid"), title="NTP version query answered"),
    _scan("scan_ntpmonitor", "open-service", conf=0.9, sig=("packets",), title="NTP monlist (amplifier)"),
    _scan("scan_ssdp", "open-service", conf=0.9, sig=("search_target", "unique_service_name"), title="Open SSDP"),
    _scan("scan_snmp", "open-service", conf=0.9, sig=("sysdesc", "sysname"), title="Open SNMP"),
    _scan("scan_memcached", "open-service", conf=0.9, sig=("pointer_size", "curr_connections"), title="Open memcached"),
    _scan("scan_netbios", "open-service", conf=0.8, sig=("workgroup", "mac_address"), title="Open NetBIOS"),
    _scan("scan_portmapper", "open-service", conf=0.8, sig=("programs", "mountd_port"), title="Open portmapper"),
    _scan("scan_mdns", "open-service", conf=0.8, sig=("mdns_name",), title="Open mDNS"),
    _scan("scan_tftp", "open-service", conf=0.8, sig=("errormessage",), title="Open TFTP"),
    _scan("scan_ldap_udp", "open-service", conf=0.9, title="Open LDAP over UDP (amplifier)"),
    _scan("scan_ldap_tcp", "open-service", conf=0.7, title="Open LDAP over TCP"),
    _scan("scan_mssql", "open-service", conf=0.8, sig=("instance_name", "named_pipe"), title="Open MS-SQL browser"),
    _scan("scan_nat_pmp", "open-service", conf=0.8, sig=("external_ip", "opcode", "uptime"), title="Open NAT-PMP"),
    _scan("scan_ard", "open-service", conf=0.8, sig=("machine_name", "response_size"), title="Apple Remote Desktop"),
    _scan("scan_coap", "open-service", conf=0.8, title="Open CoAP"),
    _scan("scan_ws_discovery", "open-service", conf=0.8, title="Open WS-Discovery"),
    _scan("scan_xdmcp", "open-service", conf=0.8, sig=("reported_hostname",), title="Open XDMCP"),
    _scan("scan_ubiquiti", "open-service", conf=0.8, sig=("radioname", "essid"), title="Ubiquiti discovery"),
    _scan("scan_dvr_dhcpdiscover", "open-service", conf=0.8, title="DVR DHCPDiscover"),
    _scan("scan_rdpeudp", "open-service", conf=0.8, sig=("sessionid",), title="MS-RDPEUDP"),
    _scan(
        "scan_ddos_middlebox",
        "open-service",
        conf=0.8,
        sig=("source_port", "bytes", "method"),
        title="DDoS-able middlebox (TCP amplifier)",
    ),
    _scan("scan_db2", "open-service", conf=0.8, sig=("db2_hostname", "servername"), title="DB2 discovery"),
    _scan("scan_stun", "open-service", conf=0.5, sig=("magic_cookie", "mapped_address"), title="Open STUN"),
    _scan("scan_ipmi", "open-service", conf=0.8, sig=("ipmi_version", "none_auth"), title="Open IPMI"),
    _scan("scan_redis", "open-service", conf=0.8, sig=("git_sha1", "multiplexing_api"), title="Open Redis"),
    _scan(
        "scan_mongodb", "open-service", conf=0.8, sig=("javascriptengine", "maxbsonobjectsize"), title="Open MongoDB"
    ),
    _scan(
        "scan_elasticsearch",
        "open-service",
        conf=0.8,
        sig=("lucene_version", "cluster_name"),
        title="Open Elasticsearch",
    ),
    _scan("scan_couchdb", "open-service", conf=0.8, sig=("couchdb_message",), title="Open CouchDB"),
    _scan("scan_docker", "open-service", conf=0.8, sig=("experimental", "api_version"), title="Open Docker API"),
    _scan("scan_kubernetes", "open-service", conf=0.8, title="Open Kubernetes API"),
    _scan("scan_hadoop", "open-service", conf=0.8, sig=("namenodeaddress", "livenodes"), title="Open Hadoop"),
    _scan("scan_amqp", "open-service", conf=0.7, title="Open AMQP"),
    _scan("scan_mqtt", "open-service", conf=0.7, sig=("anonymous_access",), title="Open MQTT"),
    _scan("scan_mqtt_anon", "open-service", conf=0.8, title="MQTT with anonymous access"),
    _scan("scan_mysql", "open-service", conf=0.6, sig=("mysql_protocol_version",), title="Accessible MySQL"),
    _scan("scan_postgres", "open-service", conf=0.6, sig=("supported_protocols",), title="Accessible PostgreSQL"),
    _scan("scan_ics", "open-service", conf=0.8, title="Accessible industrial control system"),
    _scan("scan_adb", "open-service", conf=0.8, title="Accessible Android Debug Bridge"),
    _scan("scan_afp", "open-service", conf=0.6, sig=("afp_versions", "uams"), title="Accessible AFP"),
    _scan("scan_cisco_smart_install", "open-service", conf=0.8, title="Accessible Cisco Smart Install"),
    _scan("scan_cwmp", "open-service", conf=0.6, title="Accessible CWMP (TR-069)"),
    _scan("scan_ipp", "open-service", conf=0.6, sig=("ipp_version", "printer_uris"), title="Open IPP printer"),
    _scan("scan_rdp", "open-service", conf=0.5, sig=("rdp_protocol",), title="Accessible RDP"),
    _scan("scan_vnc", "open-service", conf=0.5, sig=("product",), title="Accessible VNC"),
    _scan("scan_telnet", "open-service", conf=0.5, title="Accessible Telnet"),
    _scan("scan_smb", "open-service", conf=0.6, sig=("smb_implant", "smbv1_support"), title="Accessible SMB"),
    _scan("scan_rsync", "open-service", conf=0.6, sig=("motd", "module"), title="Accessible rsync"),
    _scan("scan_sip", "open-service", conf=0.5, sig=("sip_via", "sip_code"), title="Accessible SIP"),
    _scan("scan_slp", "open-service", conf=0.7, sig=("function_text",), title="Accessible SLP"),
    _scan("scan_radmin", "open-service", conf=0.5, title="Accessible Radmin"),
    _scan("scan_ftp", "open-service", conf=0.4, title="Accessible FTP"),
    _scan("scan_http", "open-service", conf=0.3, title="Accessible HTTP (informational)"),
    _scan(
        "scan_ssh",
        "open-service",
        conf=0.3,
        sig=("serverid_software", "available_kex"),
        title="Accessible SSH (informational)",
    ),
    _scan("scan_ssl", "open-service", conf=0.3, title="Accessible TLS (informational)"),
    _scan("scan_quic", "open-service", conf=0.3, sig=("version_field_1",), title="Accessible QUIC (informational)"),
    # vulnerable rather than merely open
    _scan("scan_exchange", "vulnerable-service", conf=0.8, title="Vulnerable Exchange server"),
    _scan("scan_http_vulnerable", "vulnerable-service", conf=0.7, title="Vulnerable HTTP server"),
    _scan("scan_smtp_vulnerable", "vulnerable-service", conf=0.7, title="Vulnerable SMTP server"),
    _scan(
        "scan_isakmp",
        "vulnerable-service",
        conf=0.7,
        sig=("initiator_spi", "responder_spi"),
        title="Vulnerable ISAKMP (IKE)",
    ),
    _scan("scan_ssl_freak", "vulnerable-service", conf=0.7, title="TLS server open to FREAK"),
    _scan("scan_ssl_poodle", "vulnerable-service", conf=0.7, title="SSLv3 server open to POODLE"),
    _scan("scan_netis_router", "vulnerable-service", conf=0.8, title="Netis router backdoor open"),
    _scan(
        "special",
        "vulnerable-service",
        conf=0.6,
        sig=("public_source", "status", "detail"),
        title="Special report (one-off findings)",
    ),
    # the host itself is compromised
    _scan(
        "scan_synfulknock",
        "compromised-host",
        conf=0.9,
        sig=("sequence_number", "ack_number", "raw_packet"),
        title="Cisco router with the SYNful Knock implant",
    ),
    _scan(
        "compromised_website",
        "compromised-host",
        conf=0.9,
        sig=("detected_since", "redirect_target"),
        title="Compromised website",
    ),
    _scan("device_id", "other", conf=0.2, title="Device identification (inventory, informational)"),
    # --- the reported address did something: sinkholes and honeypots (event4_ = IPv4, event6_ = IPv6)
    _event("event4_sinkhole", "infected-host", conf=0.9, title="Sinkhole connection (infected host)"),
    _event("event6_sinkhole", "infected-host", conf=0.9, title="Sinkhole connection, IPv6"),
    _event("event4_sinkhole_http", "infected-host", conf=0.9, title="Sinkhole HTTP request (infected host)"),
    _event("event6_sinkhole_http", "infected-host", conf=0.9, title="Sinkhole HTTP request, IPv6"),
    _event("event4_microsoft_sinkhole", "infected-host", conf=0.9, title="Microsoft sinkhole connection"),
    _event("event4_microsoft_sinkhole_http", "infected-host", conf=0.9, title="Microsoft sinkhole HTTP request"),
    _event("event4_sinkhole_dns", "infected-host", conf=0.6, title="DNS query for a sinkholed domain"),
    ReportType(
        "event4_sinkhole_http_referer",
        "infected-host",
        "actor",
        ("http_referer_ip",),
        ("http_referer_port",),
        ("timestamp", "http_referer_ip"),
        0.5,
        frozenset({"http_referer_ip"}),
        "Web page referring visitors to a sinkhole",
    ),
    ReportType(
        "sinkhole_http_drone",
        "infected-host",
        "actor",
        ("ip",),
        ("src_port",),
        ("timestamp", "ip"),
        0.9,
        frozenset({"http_agent", "tor"}),
        "Sinkhole HTTP drone (pre-2016 name)",
    ),
    _event("event4_honeypot_brute_force", "brute-force", conf=0.9, title="Login brute force against a honeypot"),
    _event("event4_honeypot_http_scan", "vulnerability-scan", conf=0.8, title="HTTP exploit scan of a honeypot"),
    _event("event4_honeypot_darknet", "scan", conf=0.6, title="Traffic to unused address space (darknet)"),
    _event("event4_ip_spoofer", "spoofed-source", conf=0.9, title="Network lets spoofed source addresses out"),
    _event("event4_ddos_participant", "dos", conf=0.8, title="Host took part in a DDoS"),
    _event("event4_honeypot_ddos", "dos", conf=0.8, title="DDoS observed by honeypots"),
    _event(
        "event4_honeypot_ddos_amp", "dos", role="victim", conf=0.7, title="Victim of a reflected (amplification) DDoS"
    ),
    _event("event4_honeypot_ddos_target", "dos", role="victim", conf=0.7, title="Target of a DDoS"),
    # --- lists and sandboxes
    ReportType(
        "blocklist",
        "blocklisted",
        "actor",
        ("ip",),
        (),
        ("timestamp", "ip"),
        0.7,
        frozenset({"source", "reason"}),
        "Address on a blocklist Shadowserver tracks",
    ),
    ReportType(
        "malware_url",
        "malware",
        "actor",
        ("ip",),
        ("port",),
        ("timestamp", "ip", "port"),
        0.8,
        frozenset({"sha256", "url"}),
        "URL serving malware",
    ),
    ReportType(
        "sandbox_url",
        "malware",
        "actor",
        ("ip",),
        ("port",),
        ("timestamp", "ip", "port"),
        0.7,
        frozenset({"md5", "url", "user_agent"}),
        "URL fetched by malware in a sandbox",
    ),
    ReportType(
        "sandbox_conn",
        "malware",
        "actor",
        ("ip",),
        ("port",),
        ("timestamp", "ip", "port"),
        0.7,
        frozenset({"md5", "bytes_in", "bytes_out"}),
        "Address contacted by malware in a sandbox",
    ),
    ReportType(
        "sandbox_dns",
        "threat-intel",
        "actor",
        (),
        (),
        ("timestamp",),
        0.5,
        frozenset({"md5hash", "request", "response"}),
        "DNS name resolved by malware in a sandbox",
    ),
)

REPORT_TYPES: dict[str, ReportType] = {t.name: t for t in _TYPES}

#: report types Shadowserver has stopped publishing; a file of one of them parses generically with a note
RETIRED_TYPES: frozenset[str] = frozenset({"phish_url"})

#: columns whose value is the reported address in a report type we do not know
GENERIC_IP_COLUMNS: tuple[str, ...] = ("ip", "src_ip")
GENERIC_PORT_COLUMNS: tuple[str, ...] = ("port", "src_port")


def report_type_from_columns(columns: list[str]) -> ReportType | None:
    """The one report type whose signature columns all appear in ``columns``, or None (none, or ambiguous)."""
    have = set(columns)
    matches = [t for t in _TYPES if t.signature and t.signature <= have]
    if not matches:
        return None
    best = max(len(t.signature) for t in matches)
    top = [t for t in matches if len(t.signature) == best]
    return top[0] if len(top) == 1 else None
