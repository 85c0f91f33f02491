"""XARF JSON reports: abusix-schema "XARF" v1–v3 and XARF v4 (strict, with a tolerant mode for v4.0 drafts).

Inputs: a bare JSON document, or a mail carrying it as an attachment (``xarf.json``, ``application/json``),
typically in an ARF envelope with ``Feedback-Type: xarf`` (Netcraft 2022, ``"Version":"1"``).

* abusix v1–v3 (``Version``, ``ReporterInfo``, ``Report.ReportClass``/``ReportType``): validated field by field
  (types, addresses, ports, dates, hashes, required fields per class/type); an invalid report raises ParseError
  naming the field and the reason. ``InternalProcessing`` is the sender's own data and is dropped.
* XARF v4 (``xarf_version``, ``report_id``, ``category``/``type``): strict validation against the v4.2 core and
  the fields each category needs. Drafts of v4.0 (no ``sender``, non-UUID ids, types outside the 32 final ones)
  are read in tolerant mode (``Params.mode``: ``auto`` falls back to it and marks ``extra["xarf_tolerant"]``).
  ``_internal`` is stripped; evidence hashes (``sha256:...``) are verified and mismatches reported as issues.

One report is one Event. :func:`event_to_xarf` exports an Event back to XARF v4 without loss of category/type.

False positives: XARF is machine-written; the usual mistakes are a CDN or shared host as ``source_identifier``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from abusedesk.domain.errors import ParseError
from abusedesk.domain.kinds import KINDS, XARF_CATEGORIES, XARF_TO_KIND, kind_from_xarf, xarf_for_kind
from abusedesk.domain.records import Event, ParseIssue
from abusedesk.domain.timeutil import iso
from abusedesk.parsers import mime
from abusedesk.parsers.base import Parser, Report

_MAX_JSON = 16 * 1024 * 1024
_MAX_EVIDENCE_KEEP = 64 * 1024
_EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\.?$")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_ABUSIX_TOP = frozenset({"Version", "ReporterInfo", "OnBehalfOf", "Disclosure", "Report", "InternalProcessing"})


class XarfInvalid(ValueError):
    """A report that breaks the schema: ``field`` says where."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


# ----------------------------------------------------------------------------------------------------------------
# abusix-schema XARF v1–v3
# ----------------------------------------------------------------------------------------------------------------

#: (ReportClass, ReportType) → kind
ABUSIX_KINDS: dict[tuple[str, str], str] = {
    ("Activity", "Spam"): "spam",
    ("Activity", "PortScan"): "scan",
    ("Activity", "LoginAttack"): "brute-force",
    ("Activity", "DOS"): "dos",
    ("Activity", "Malware"): "infected-host",
    ("Activity", "WebCrawler"): "crawling",
    ("Activity", "Exploit"): "intrusion",
    ("Activity", "Harassment"): "harassment",
    ("Activity", "PotentiallyCompromisedAccount"): "intrusion",
    ("Activity", "Phishing"): "phishing",
    ("Content", "Malware"): "malware",
    ("Content", "Phishing"): "phishing",
    ("Content", "Botnet"): "botnet",
    ("Content", "ChildAbuse"): "csam",
    ("Content", "Copyright"): "copyright",
    ("Content", "Trademark"): "trademark",
    ("Content", "Spamvertised"): "spam",
    ("Content", "Fraud"): "fraud",
    ("Content", "Harassment"): "harassment",
    ("Vulnerability", "OpenService"): "open-service",
    ("Vulnerability", "Exploit"): "vulnerable-service",
}
_STR_FIELDS = {
    "ReportSubType",
    "ReporterCaseID",
    "ReporterNotes",
    "MalwareName",
    "BotnetName",
    "InfringedMaterial",
    "MaterialType",
    "FileName",
    "TrademarkedMaterial",
    "RegistrationOffice",
    "RegistrationNumber",
    "ServiceName",
    "ServiceVersion",
    "Harasser",
    "HarassmentDescription",
    "HarassmentLocation",
    "HarassmentType",
}
_IP_FIELDS = {"SourceIp", "DestinationIp", "AttackerIp"}
_PORT_FIELDS = {"SourcePort", "DestinationPort", "AttackerPort"}
_DATE_FIELDS = {"Date", "FirstSeen", "LastSeen"}
_COUNT_FIELDS = {"ByteCount", "PacketCount", "FileSize"}
_EMAIL_FIELDS = {"SmtpMailFromAddress", "SmtpRcptToAddress"}
_URL_FIELDS = {"SourceUrl", "CourtOrder"}
_REPORT_FIELDS = (
    _STR_FIELDS
    | _IP_FIELDS
    | _PORT_FIELDS
    | _DATE_FIELDS
    | _COUNT_FIELDS
    | _EMAIL_FIELDS
    | _URL_FIELDS
    | {
        "ReportClass",
        "ReportType",
        "ReporterSeverity",
        "Ongoing",
        "ASN",
        "RpzDomain",
        "CVE",
        "CVSS",
        "TransportProtocol",
        "FileHash",
        "PasswordHash",
        "Account",
        "Custom",
        "Samples",
    }
)
_REPORTER_KEYS = {
    "ReporterType",
    "ReporterOrg",
    "ReporterOrgDomain",
    "ReporterOrgEmail",
    "ReporterContactEmail",
    "ReporterContactName",
    "ReporterContactPhone",
}
_BEHALF_KEYS = {
    "ComplainantOrg",
    "ComplainantOrgDomain",
    "ComplainantOrgEmail",
    "ComplainantContactEmail",
    "ComplainantContactName",
    "ComplainantContactPhone",
}
_HASH_ALGOS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_SEVERITIES = {"low", "medium", "high", "critical", "info"}
_TRANSPORTS = {"tcp", "udp", "sctp", "icmp"}
_CVSS_VERSIONS = {"2", "2.0", "3", "3.0", "3.1", "4.0"}


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and v.strip() != ""


def _check_ip(field: str, v: Any) -> str:
    if not isinstance(v, str):
        raise XarfInvalid(field, f"must be an IP address string, not {type(v).__name__}")
    try:
        return str(ipaddress.ip_address(v.strip()))
    except ValueError:
        raise XarfInvalid(field, f"{v!r} is not an IPv4 or IPv6 address") from None


def _check_port(field: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
        raise XarfInvalid(field, f"{v!r} is not a port number (integer 0..65535)")
    return v


def _check_date(field: str, v: Any) -> datetime:
    if not isinstance(v, str):
        raise XarfInvalid(field, f"must be an ISO 8601 date string, not {type(v).__name__}")
    try:
        when = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
    except ValueError:
        raise XarfInvalid(field, f"{v!r} is not an ISO 8601 date") from None
    if when.tzinfo is None:
        raise XarfInvalid(field, f"{v!r} has no time zone")
    try:
        return when.astimezone(UTC)
    except (OverflowError, ValueError):
        raise XarfInvalid(field, f"{v!r} is out of range in UTC") from None


def _check_email(field: str, v: Any) -> str:
    if not isinstance(v, str) or not _EMAIL.match(v.strip()):
        raise XarfInvalid(field, f"{v!r} is not an e-mail address")
    return v.strip()


def _check_url(field: str, v: Any) -> str:
    if not isinstance(v, str):
        raise XarfInvalid(field, f"must be a URL string, not {type(v).__name__}")
    parts = urlsplit(v.strip())
    if parts.scheme.lower() not in ("http", "https", "ftp", "ftps") or not parts.netloc:
        raise XarfInvalid(field, f"{v!r} is not an absolute http(s)/ftp URL")
    return v.strip()


def _check_hostname(field: str, v: Any) -> str:
    if not isinstance(v, str) or not _HOSTNAME.match(v.strip()):
        raise XarfInvalid(field, f"{v!r} is not a host name")
    return v.strip()


def _check_hash(field: str, v: Any) -> None:
    if not isinstance(v, dict) or set(v) - {"HashValue", "HashAlgorithm"}:
        raise XarfInvalid(field, "must be an object with HashValue and HashAlgorithm")
    algo = str(v.get("HashAlgorithm", "")).lower()
    if algo not in _HASH_ALGOS:
        raise XarfInvalid(f"{field}.HashAlgorithm", f"{v.get('HashAlgorithm')!r} is not one of {sorted(_HASH_ALGOS)}")
    value = v.get("HashValue")
    if not isinstance(value, str) or not _HEX.match(value) or len(value) != _HASH_ALGOS[algo]:
        raise XarfInvalid(f"{field}.HashValue", f"is not a {algo} hex digest")


def _validate_report_field(key: str, v: Any) -> None:
    if key in _STR_FIELDS:
        if not _is_str(v):
            raise XarfInvalid(f"Report.{key}", f"must be a non-empty string, not {v!r}")
    elif key in _IP_FIELDS:
        _check_ip(f"Report.{key}", v)
    elif key in _PORT_FIELDS:
        _check_port(f"Report.{key}", v)
    elif key in _DATE_FIELDS:
        _check_date(f"Report.{key}", v)
    elif key in _COUNT_FIELDS:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise XarfInvalid(f"Report.{key}", f"{v!r} is not a non-negative integer")
    elif key in _EMAIL_FIELDS:
        _check_email(f"Report.{key}", v)
    elif key in _URL_FIELDS:
        _check_url(f"Report.{key}", v)
    elif key == "ReporterSeverity":
        if not isinstance(v, str) or v.lower() not in _SEVERITIES:
            raise XarfInvalid("Report.ReporterSeverity", f"{v!r} is not one of {sorted(_SEVERITIES)}")
    elif key == "Ongoing":
        if not isinstance(v, bool):
            raise XarfInvalid("Report.Ongoing", f"{v!r} is not true/false")
    elif key == "ASN":
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**32:
            raise XarfInvalid("Report.ASN", f"{v!r} is not an AS number (integer below 2^32)")
    elif key == "RpzDomain":
        _check_hostname("Report.RpzDomain", v)
    elif key == "CVE":
        if not isinstance(v, str) or not _CVE.match(v):
            raise XarfInvalid("Report.CVE", f"{v!r} is not a CVE id (CVE-YYYY-NNNN)")
    elif key == "CVSS":
        _check_cvss(v)
    elif key == "TransportProtocol":
        if not isinstance(v, str) or v.lower() not in _TRANSPORTS:
            raise XarfInvalid("Report.TransportProtocol", f"{v!r} is not one of {sorted(_TRANSPORTS)}")
    elif key in ("FileHash", "PasswordHash"):
        _check_hash(f"Report.{key}", v)
    elif key == "Account":
        _check_account(v)
    elif key == "Custom":
        if not isinstance(v, dict):
            raise XarfInvalid("Report.Custom", "must be an object")
        for ck, cv in v.items():
            if not isinstance(cv, str | int | float | bool) or cv is None:
                raise XarfInvalid(f"Report.Custom.{ck}", f"must be a string, number or boolean, not {cv!r}")
    elif key == "Samples":
        _check_samples(v)


def _check_cvss(v: Any) -> None:
    if not isinstance(v, dict):
        raise XarfInvalid("Report.CVSS", "must be an object with Version, Score, Vector")
    version = str(v.get("Version", ""))
    if version not in _CVSS_VERSIONS:
        raise XarfInvalid("Report.CVSS.Version", f"{v.get('Version')!r} is not a CVSS version")
    vector = v.get("Vector")
    if vector is not None:
        if not isinstance(vector, str):
            raise XarfInvalid("Report.CVSS.Vector", "must be a string")
        m = re.match(r"^CVSS:(\d(?:\.\d)?)/", vector)
        vector_version = m.group(1) if m else "2.0"
        if vector_version.split(".")[0] != version.split(".")[0] or (
            "." in version and "." in vector_version and vector_version != version
        ):
            raise XarfInvalid("Report.CVSS.Vector", f"vector is CVSS {vector_version} but Version says {version}")
    score = v.get("Score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 10):
        raise XarfInvalid("Report.CVSS.Score", f"{score!r} is not a score between 0 and 10")


def _check_account(v: Any) -> None:
    if not isinstance(v, dict) or not v:
        raise XarfInvalid("Report.Account", "must be a non-empty object")
    allowed = {"AccountIdentifier", "AccountName", "AccountNumber", "AccountEmail"}
    if set(v) - allowed:
        raise XarfInvalid("Report.Account", f"unknown fields {sorted(set(v) - allowed)}")
    ident = v.get("AccountIdentifier")
    if ident is not None:
        if not _is_str(ident):
            raise XarfInvalid("Report.Account.AccountIdentifier", f"must be a string, not {ident!r}")
        if _EMAIL.match(ident):
            raise XarfInvalid("Report.Account.AccountIdentifier", "is an e-mail address; put it in AccountEmail")
    if "AccountEmail" in v:
        _check_email("Report.Account.AccountEmail", v["AccountEmail"])
    if "AccountName" in v and not _is_str(v["AccountName"]):
        raise XarfInvalid("Report.Account.AccountName", "must be a string")
    number = v.get("AccountNumber")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int | str)):
        raise XarfInvalid("Report.Account.AccountNumber", "must be a number or string")


def _check_samples(v: Any) -> None:
    if not isinstance(v, list):
        raise XarfInvalid("Report.Samples", "must be a list of sample objects")
    for i, s in enumerate(v):
        where = f"Report.Samples[{i}]"
        if not isinstance(s, dict):
            raise XarfInvalid(where, "must be an object")
        if not _is_str(s.get("ContentType")):
            raise XarfInvalid(f"{where}.ContentType", "is required and must be a string")
        if not isinstance(s.get("Payload"), str):
            raise XarfInvalid(f"{where}.Payload", "is required and must be a string")
        if "Base64Encoded" in s and not isinstance(s["Base64Encoded"], bool):
            raise XarfInvalid(f"{where}.Base64Encoded", f"{s['Base64Encoded']!r} is not true/false")
        for key in ("Description", "FileName"):
            if key in s and not isinstance(s[key], str):
                raise XarfInvalid(f"{where}.{key}", "must be a string")


def _check_reporter(doc: dict[str, Any]) -> None:
    info = doc.get("ReporterInfo")
    if info is None:
        raise XarfInvalid("ReporterInfo", "is required")
    if not isinstance(info, dict) or not info:
        raise XarfInvalid("ReporterInfo", "must be a non-empty object")
    if set(info) - _REPORTER_KEYS:
        raise XarfInvalid("ReporterInfo", f"unknown fields {sorted(set(info) - _REPORTER_KEYS)}")
    rtype = info.get("ReporterType", "Org")
    if rtype not in ("Org", "Person"):
        raise XarfInvalid("ReporterInfo.ReporterType", f"{rtype!r} is not Org or Person")
    if rtype == "Org":
        for key in ("ReporterOrg", "ReporterOrgDomain", "ReporterOrgEmail"):
            if not _is_str(info.get(key)):
                raise XarfInvalid(f"ReporterInfo.{key}", "is required for an organisation reporter")
    elif not any(_is_str(info.get(k)) for k in ("ReporterContactEmail", "ReporterContactName", "ReporterOrg")):
        raise XarfInvalid("ReporterInfo", "a person reporter needs a name, e-mail or organisation")
    for key in ("ReporterOrgEmail", "ReporterContactEmail"):
        if key in info:
            _check_email(f"ReporterInfo.{key}", info[key])
    if "ReporterOrgDomain" in info:
        _check_hostname("ReporterInfo.ReporterOrgDomain", info["ReporterOrgDomain"])
    for key in ("ReporterOrg", "ReporterContactName", "ReporterContactPhone"):
        if key in info and not isinstance(info[key], str):
            raise XarfInvalid(f"ReporterInfo.{key}", "must be a string")
    if "OnBehalfOf" in doc:
        behalf = doc["OnBehalfOf"]
        if not isinstance(behalf, dict) or not behalf:
            raise XarfInvalid("OnBehalfOf", "must be a non-empty object")
        if set(behalf) - _BEHALF_KEYS:
            raise XarfInvalid("OnBehalfOf", f"unknown fields {sorted(set(behalf) - _BEHALF_KEYS)}")
        for key in ("ComplainantOrgEmail", "ComplainantContactEmail"):
            if key in behalf:
                _check_email(f"OnBehalfOf.{key}", behalf[key])
        if "ComplainantOrgDomain" in behalf:
            _check_hostname("OnBehalfOf.ComplainantOrgDomain", behalf["ComplainantOrgDomain"])
        for key in ("ComplainantOrg", "ComplainantContactName", "ComplainantContactPhone"):
            if key in behalf and not isinstance(behalf[key], str):
                raise XarfInvalid(f"OnBehalfOf.{key}", "must be a string")


def _check_internal(v: Any) -> None:
    if not isinstance(v, dict):
        raise XarfInvalid("InternalProcessing", "must be an object")
    for section in ("SubscriberInformation", "ContractInformation"):
        sec = v.get(section)
        if sec is None:
            continue
        if not isinstance(sec, dict):
            raise XarfInvalid(f"InternalProcessing.{section}", "must be an object")
        if "ID" in sec and not isinstance(sec["ID"], str):
            raise XarfInvalid(f"InternalProcessing.{section}.ID", f"must be a string, not {sec['ID']!r}")
        for sub in ("SubscriberData", "ResolverData"):
            data = sec.get(sub)
            if data is not None and (not isinstance(data, dict) or not all(isinstance(x, str) for x in data.values())):
                raise XarfInvalid(f"InternalProcessing.{section}.{sub}", "values must be strings")
    tags = v.get("EventTags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise XarfInvalid("InternalProcessing.EventTags", "must be a list of strings")


def validate_abusix(doc: dict[str, Any]) -> dict[str, Any]:
    """Check an abusix-schema report; return its ``Report`` object. Raises XarfInvalid naming the field."""
    version = str(doc.get("Version", ""))
    if version not in ("1", "2", "3"):
        raise XarfInvalid("Version", f"{doc.get('Version')!r} is not an abusix XARF version (1, 2 or 3)")
    unknown = set(doc) - _ABUSIX_TOP
    if unknown:
        raise XarfInvalid("(top level)", f"unknown fields {sorted(unknown)}")
    _check_reporter(doc)
    if "Disclosure" in doc and not isinstance(doc["Disclosure"], bool):
        raise XarfInvalid("Disclosure", "must be true/false")
    if "InternalProcessing" in doc:
        _check_internal(doc["InternalProcessing"])
    rep = doc.get("Report")
    if rep is None:
        raise XarfInvalid("Report", "is required")
    if not isinstance(rep, dict):
        raise XarfInvalid("Report", "must be an object")
    cls, typ = rep.get("ReportClass"), rep.get("ReportType")
    if not _is_str(cls) or not _is_str(typ):
        raise XarfInvalid("Report.ReportClass/ReportType", "are required strings")
    if (cls, typ) not in ABUSIX_KINDS:
        raise XarfInvalid("Report.ReportClass/ReportType", f"{cls}/{typ} is not a known class/type pair")
    if "Date" not in rep:
        raise XarfInvalid("Report.Date", "is required")
    strict = version == "3"
    for key, value in rep.items():
        if key not in _REPORT_FIELDS:
            if strict:
                raise XarfInvalid(f"Report.{key}", "is not a field of XARF v3 (put extra data in Custom)")
            continue
        _validate_report_field(key, value)
    if typ == "PotentiallyCompromisedAccount":
        if "Account" not in rep:
            raise XarfInvalid("Report.Account", f"is required for {typ}")
        for key in ("SourceIp", "SourceUrl"):
            if key in rep:
                raise XarfInvalid(f"Report.{key}", f"is not allowed for {typ} (use AttackerIp)")
    elif "SourceIp" not in rep and "SourceUrl" not in rep:
        raise XarfInvalid("Report.SourceIp/SourceUrl", "one of them is required")
    required = {
        "OpenService": ("ServiceName",),
        "Harassment": ("SourceUrl", "Harasser", "HarassmentDescription"),
        "Trademark": ("TrademarkedMaterial",),
        "Copyright": ("InfringedMaterial",),
    }.get(str(typ), ())
    for key in required:
        if key not in rep:
            raise XarfInvalid(f"Report.{key}", f"is required for {cls}/{typ}")
    if typ == "Malware" and cls == "Activity" and rep.get("ReportSubType") == "RPZ-Rewrite" and "RpzDomain" not in rep:
        raise XarfInvalid("Report.RpzDomain", "is required for RPZ-Rewrite reports")
    return rep


# ----------------------------------------------------------------------------------------------------------------
# XARF v4
# ----------------------------------------------------------------------------------------------------------------

#: v4.0 draft types (xarf-python samples) → kind; final v4.2 types go through kind_from_xarf
V4_DRAFT_KINDS: dict[tuple[str, str], str] = {
    ("connection", "auth_failure"): "brute-force",
    ("connection", "ddos_amplification"): "dos",
    ("connection", "ip_spoof"): "spoofed-source",
    ("content", "defacement"): "intrusion",
    ("content", "web_hack"): "intrusion",
    ("content", "phishing_site"): "phishing",
    ("content", "spamvertised"): "spam",
    ("copyright", "trademark"): "trademark",
    ("infrastructure", "bot"): "botnet",
    ("infrastructure", "compromised_account"): "intrusion",
    ("infrastructure", "compromised_microsoft_exchange"): "compromised-host",
    ("infrastructure", "compromised_website"): "compromised-host",
    ("infrastructure", "cve"): "vulnerable-service",
    ("messaging", "social_engineering"): "fraud",
    ("reputation", "ip_reclamation"): "threat-intel",
    ("reputation", "trap"): "spam",
    ("vulnerability", "malicious_activity"): "threat-intel",
    ("vulnerability", "open"): "open-service",
    ("vulnerability", "outdated_dnssec"): "misconfiguration",
    ("vulnerability", "ssl_freak"): "vulnerable-service",
    ("vulnerability", "ssl_poodle"): "vulnerable-service",
}
#: fields each category (or category/type) needs in v4.2 strict mode
V4_REQUIRED: dict[str, tuple[str, ...]] = {
    "connection": ("destination_ip", "protocol"),
    "content": ("url",),
    "messaging": ("protocol",),
    "reputation": ("threat_type",),
    "copyright/copyright": ("infringing_url", "work_title"),
    "copyright/cyberlocker": ("infringing_url", "work_title"),
    "copyright/link_site": ("infringing_url", "work_title"),
    "copyright/ugc_platform": ("infringing_url", "work_title"),
    "copyright/p2p": ("p2p_protocol", "swarm_info", "work_title"),
    "copyright/usenet": ("newsgroup", "work_title"),
    "vulnerability/cve": ("cve_id",),
    "vulnerability/open_service": ("service",),
    "vulnerability/misconfiguration": ("misconfiguration_type",),
}
_V4_CORE = ("xarf_version", "report_id", "timestamp", "reporter", "source_identifier", "category", "type")


def _v4_required(category: str, type_: str) -> tuple[str, ...]:
    return V4_REQUIRED.get(category, ()) + V4_REQUIRED.get(f"{category}/{type_}", ())


def validate_v4(doc: dict[str, Any], *, tolerant: bool) -> None:
    """Check an XARF v4 report (v4.2 rules, or the looser v4.0-draft rules); raise XarfInvalid naming the field."""
    version = doc.get("xarf_version")
    if not _is_str(version):
        raise XarfInvalid("xarf_version", "is required")
    if not str(version).startswith("4"):
        raise XarfInvalid("xarf_version", f"{version!r} is not a v4 version")
    for key in _V4_CORE:
        if key not in doc or doc[key] in (None, "", {}, []):
            raise XarfInvalid(key, "is required")
    if not tolerant:
        try:
            uuid.UUID(str(doc["report_id"]))
        except ValueError:
            raise XarfInvalid("report_id", f"{doc['report_id']!r} is not a UUID") from None
    _check_date("timestamp", doc["timestamp"])
    parties: tuple[str, ...] = ("reporter", "sender") if not tolerant else ("reporter",)
    for who in parties:
        party = doc.get(who)
        if not isinstance(party, dict):
            raise XarfInvalid(who, "is required and must be an object (org, contact, domain)")
        party_keys: tuple[str, ...] = ("org", "contact", "domain") if not tolerant else ("org", "contact")
        for key in party_keys:
            if not _is_str(party.get(key)):
                raise XarfInvalid(f"{who}.{key}", "is required")
        _check_email(f"{who}.contact", party["contact"])
    if "sender" in doc and not isinstance(doc["sender"], dict):
        raise XarfInvalid("sender", "must be an object")
    category, type_ = doc["category"], doc["type"]
    if not isinstance(category, str) or category not in XARF_CATEGORIES:
        raise XarfInvalid("category", f"{category!r} is not one of {sorted(XARF_CATEGORIES)}")
    if not isinstance(type_, str):
        raise XarfInvalid("type", "must be a string")
    if not tolerant and (category, type_) not in XARF_TO_KIND:
        raise XarfInvalid("type", f"{type_!r} is not a v4.2 type of category {category!r}")
    if not isinstance(doc["source_identifier"], str):
        raise XarfInvalid("source_identifier", "must be a string")
    needed: tuple[str, ...] = (
        _v4_required(category, type_)
        if not tolerant
        else (("protocol",) if category in ("messaging", "connection") else ())
    )
    for key in needed:
        if doc.get(key) in (None, "", [], {}):
            raise XarfInvalid(key, f"is required for {category}/{type_}")
    for key in ("source_port", "destination_port"):
        if key in doc:
            _check_port(key, doc[key])
    if "destination_ip" in doc:
        _check_ip("destination_ip", doc["destination_ip"])
    evidence = doc.get("evidence", [])
    if not isinstance(evidence, list) or not all(isinstance(e, dict) for e in evidence):
        raise XarfInvalid("evidence", "must be a list of objects")


def verify_evidence(doc: dict[str, Any]) -> list[str]:
    """Reasons for each evidence item whose ``hash`` does not match its base64 payload (empty when all match)."""
    problems: list[str] = []
    for i, item in enumerate(doc.get("evidence") or []):
        digest = item.get("hash")
        if not digest or not isinstance(digest, str):
            continue
        algo, _, want = digest.partition(":") if ":" in digest else ("sha256", "", digest)
        algo = algo.lower()
        if algo not in ("sha256", "sha512", "sha1", "md5"):
            problems.append(f"evidence[{i}].hash uses unsupported algorithm {algo!r}")
            continue
        try:
            payload = base64.b64decode(str(item.get("payload", "")), validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"evidence[{i}].payload is not valid base64")
            continue
        if hashlib.new(algo, payload).hexdigest().lower() != want.lower():
            problems.append(f"evidence[{i}].hash {algo} does not match its payload")
    return problems


def _classify_identifier(value: str) -> dict[str, Any]:
    v = value.strip()
    try:
        return {"source_ip": str(ipaddress.ip_address(v))}
    except ValueError:
        pass
    if "://" in v:
        return {"source_url": v, "source_fqdn": urlsplit(v).hostname}
    if _HOSTNAME.match(v):
        return {"source_fqdn": v.rstrip(".").lower()}
    return {"source_account": v}


def event_to_xarf(event: Event) -> dict[str, Any]:
    """An Event as an XARF v4.2 report. A report imported from XARF keeps its category, type and fields."""
    extra = event.extra
    category = extra.get("xarf_category")
    type_ = extra.get("xarf_type")
    if not (category and type_ and kind_from_xarf(category, type_) == event.kind) and not extra.get("xarf_tolerant"):
        category, type_ = xarf_for_kind(event.kind)
    fields: dict[str, Any] = dict(extra.get("xarf_fields") or {})
    reporter = extra.get("xarf_reporter") or _party(event.reporter)
    report_id = event.report_id
    try:
        report_id = str(uuid.UUID(str(report_id)))
    except ValueError:
        report_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"abusedesk:{event.id}"))
    source = event.source_ip or event.source_url or event.source_fqdn or event.source_account or ""
    out: dict[str, Any] = {
        "xarf_version": "4.2.0",
        "report_id": report_id,
        "timestamp": iso(event.time),
        "reporter": reporter,
        "sender": extra.get("xarf_sender") or reporter,
        "source_identifier": extra.get("xarf_source_identifier") or source,
        "category": category,
        "type": type_,
    }
    if event.source_port is not None:
        out["source_port"] = event.source_port
    if event.destination_ip:
        fields.setdefault("destination_ip", event.destination_ip)
    if event.destination_port is not None:
        fields.setdefault("destination_port", event.destination_port)
    if event.source_url and category in ("content",):
        fields.setdefault("url", event.source_url)
    if event.description:
        fields.setdefault("description", event.description)
    if extra.get("xarf_evidence"):
        out["evidence"] = extra["xarf_evidence"]
    if kind_from_xarf(str(category), str(type_)) != event.kind:
        out["abusedesk_kind"] = event.kind
    for key, value in fields.items():
        out.setdefault(key, value)
    return out


def _party(reporter: str | None) -> dict[str, str]:
    contact = reporter or "abuse@example.invalid"
    domain = contact.split("@")[-1] if "@" in contact else contact
    return {"org": domain, "contact": contact if "@" in contact else f"abuse@{domain}", "domain": domain}


# ----------------------------------------------------------------------------------------------------------------
# the parser
# ----------------------------------------------------------------------------------------------------------------


def _json_head(data: bytes) -> bool:
    head = data[:65536].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") and (
        b'"xarf_version"' in head
        or b'"ReporterInfo"' in head
        or b'"Version"' in head
        or (b'"report_id"' in head and b'"category"' in head)
    )


def _looks_like_xarf(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    if "xarf_version" in doc or ("report_id" in doc and ("category" in doc or "source_identifier" in doc)):
        return True
    return "Version" in doc and set(doc) <= _ABUSIX_TOP | {"Version"}


def _claims(data: bytes) -> bool:
    """Whether a JSON document is XARF: parsed when it is small enough, else judged by its key names.

    Broken JSON that names ``xarf_version`` or ``ReporterInfo`` is still claimed, so it is refused with a reason
    instead of falling through to a generic parser.
    """
    if len(data) <= _MAX_JSON:
        try:
            return _looks_like_xarf(json.loads(mime.decode_bytes(data, "utf-8").lstrip("\ufeff")))
        except (ValueError, RecursionError):
            pass
    head = data[:65536]
    return b'"xarf_version"' in head or b'"ReporterInfo"' in head or (b'"report_id"' in head and b'"category"' in head)


class XarfParser(Parser):
    """XARF JSON (abusix v1–v3, XARF v4) as a file or a mail attachment (ARF ``Feedback-Type: xarf``)."""

    name: ClassVar[str] = "xarf"
    priority: ClassVar[int] = 10

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        #: strict = v4.2 only; tolerant = v4.0-draft rules; auto = strict, falling back to tolerant (marked)
        mode: Literal["strict", "tolerant", "auto"] = "auto"

    def recognises(self, report: Report) -> bool:
        if _json_head(report.peek(65536)):
            return _claims(report.data)
        if not report.is_mail:
            return False  # not mail, not bare JSON: decided without reading the whole input (issue 9 item 3)
        msg = report.message
        if msg is None:
            return False
        return self._attachment(mime.signed_content(msg)) is not None

    @staticmethod
    def _attachment(msg: Message) -> bytes | None:
        for part in mime.walk(msg):
            name = (part.get_filename() or "").lower()
            ctype = part.get_content_type()
            if ctype == "application/json" or name.endswith(".json") or name == "xarf.json":
                data = mime.part_bytes(part)
                if _json_head(data) and _claims(data):
                    return data
        return None

    def parse(self, report: Report) -> Iterator[Event | ParseIssue]:
        envelope: Message | None = None
        data: bytes | None = report.data if _json_head(report.data) else None
        if data is None and report.message is not None:
            envelope = report.message
            data = self._attachment(mime.signed_content(envelope))
        if data is None:
            raise ParseError("no XARF JSON document found (bare JSON or a .json mail attachment)", parser=self.name)
        if len(data) > _MAX_JSON:
            raise ParseError(f"XARF document is {len(data)} bytes, past the limit of {_MAX_JSON}", parser=self.name)
        try:
            doc = json.loads(mime.decode_bytes(data, "utf-8").lstrip("\ufeff"))
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, and ints past Python's digit limit
            line = getattr(exc, "lineno", None)
            raise ParseError(f"XARF document is not valid JSON: {exc}", parser=self.name, line=line) from None
        if not isinstance(doc, dict):
            raise ParseError("XARF document is not a JSON object", parser=self.name)
        if not _looks_like_xarf(doc):
            raise ParseError(
                "JSON document has neither xarf_version (v4) nor Version/ReporterInfo/Report (abusix v1-v3)",
                parser=self.name,
            )
        try:
            if "xarf_version" in doc or "report_id" in doc:
                yield from self._v4(doc)
            elif isinstance(doc.get("Report"), dict) and isinstance(doc["Report"].get("Source"), dict):
                yield from self._spec_v3(doc)
            else:
                yield from self._abusix(doc, envelope)
        except XarfInvalid as exc:
            raise ParseError(f"invalid XARF report: {exc}", parser=self.name, source=exc.field) from None

    # -- abusix v1-v3 --------------------------------------------------------------------------------------------
    def _abusix(self, doc: dict[str, Any], envelope: Message | None) -> Iterator[Event | ParseIssue]:
        rep = validate_abusix(doc)
        info = doc["ReporterInfo"]
        cls, typ = rep["ReportClass"], rep["ReportType"]
        kind = ABUSIX_KINDS[(cls, typ)]
        source_ip = rep.get("SourceIp") or rep.get("AttackerIp")
        source_port = rep.get("SourcePort", rep.get("AttackerPort"))
        url = rep.get("SourceUrl")
        account = rep.get("Account") or {}
        extra: dict[str, Any] = {
            "xarf_version": str(doc["Version"]),
            "report_class": cls,
            "report_type": typ,
            "reporter_org": info.get("ReporterOrg"),
            "reporter_type": info.get("ReporterType", "Org"),
        }
        for key, name in (
            ("ReportSubType", "report_subtype"),
            ("ReporterNotes", "reporter_notes"),
            ("ReporterSeverity", "reporter_severity"),
            ("MalwareName", "malware_name"),
            ("BotnetName", "botnet_name"),
            ("ServiceName", "service"),
            ("ServiceVersion", "service_version"),
            ("TransportProtocol", "transport"),
            ("RpzDomain", "rpz_domain"),
            ("CVE", "cve"),
            ("SmtpMailFromAddress", "smtp_from"),
            ("SmtpRcptToAddress", "smtp_rcpt_to"),
            ("InfringedMaterial", "infringed_material"),
            ("TrademarkedMaterial", "trademarked_material"),
            ("Harasser", "harasser"),
            ("Custom", "custom"),
            ("FirstSeen", "first_seen"),
            ("Ongoing", "ongoing"),
        ):
            if key in rep:
                extra[name] = rep[key]
        if doc.get("OnBehalfOf"):
            extra["on_behalf_of"] = doc["OnBehalfOf"].get("ComplainantOrg")
        if "InternalProcessing" in doc:
            extra["internal_stripped"] = True
        samples = rep.get("Samples") or []
        if samples:
            extra["samples"] = [
                {"content_type": s["ContentType"], "description": s.get("Description"), "size": len(s["Payload"])}
                for s in samples
            ]
        if envelope is not None:
            extra["envelope_subject"] = mime.header(envelope, "Subject")
            extra["envelope_message_id"] = mime.header(envelope, "Message-ID")
        reporter = info.get("ReporterOrgEmail") or info.get("ReporterContactEmail") or info.get("ReporterOrg")
        yield Event.create(
            kind=kind,
            time=_check_date("Report.Date", rep["Date"]),
            feed=self.name,
            reporter=reporter,
            report_id=rep.get("ReporterCaseID"),
            source_ip=source_ip,
            source_port=source_port,
            source_url=url,
            source_fqdn=urlsplit(url).hostname if url else None,
            source_account=account.get("AccountIdentifier")
            or account.get("AccountEmail")
            or account.get("AccountName"),
            destination_ip=rep.get("DestinationIp"),
            destination_port=rep.get("DestinationPort"),
            transport=(rep.get("TransportProtocol") or "").lower() or None,
            confidence=0.9,
            description=f"XARF v{doc['Version']} {cls}/{typ} report from {reporter}",
            extra={k: v for k, v in extra.items() if v is not None},
        )

    # -- xarf-spec "v3.0.0" legacy samples (Source object, AdditionalInfo) -----------------------------------
    def _spec_v3(self, doc: dict[str, Any]) -> Iterator[Event | ParseIssue]:
        rep = doc["Report"]
        class_map = {"system": "infrastructure", "network": "connection", "messaging": "messaging"}
        cls = str(rep.get("ReportClass", "")).lower()
        typ = str(rep.get("ReportType", "")).lower()
        kind = kind_from_xarf(class_map.get(cls, cls), typ)
        if kind == "other":
            kind = V4_DRAFT_KINDS.get((class_map.get(cls, cls), typ), "other")
        src = rep["Source"]
        info: dict[str, Any] = doc["ReporterInfo"] if isinstance(doc.get("ReporterInfo"), dict) else {}
        if "Date" not in rep:
            raise XarfInvalid("Report.Date", "is required")
        ident: dict[str, Any] = {}
        if src.get("IP"):
            ident["source_ip"] = _check_ip("Report.Source.IP", src["IP"])
        if src.get("URL"):
            ident["source_url"] = _check_url("Report.Source.URL", src["URL"])
            ident["source_fqdn"] = urlsplit(src["URL"]).hostname
        if not ident:
            raise XarfInvalid("Report.Source", "names no IP or URL")
        add = rep.get("AdditionalInfo") if isinstance(rep.get("AdditionalInfo"), dict) else {}
        dest_ip = (
            _check_ip("Report.AdditionalInfo.DestinationIP", add["DestinationIP"]) if "DestinationIP" in add else None
        )
        dest_port = (
            _check_port("Report.AdditionalInfo.DestinationPort", add["DestinationPort"])
            if "DestinationPort" in add
            else None
        )
        reporter = info.get("ReporterOrgEmail") or info.get("ReporterOrg")
        yield Event.create(
            kind=kind,
            time=_check_date("Report.Date", rep["Date"]),
            feed=self.name,
            reporter=reporter,
            source_port=_check_port("Report.Source.Port", src["Port"]) if "Port" in src else None,
            destination_ip=dest_ip,
            destination_port=dest_port,
            confidence=0.9 if kind != "other" else 0.4,
            description=f"XARF {doc.get('Version')} {rep.get('ReportClass')}/{rep.get('ReportType')} report",
            extra={
                "xarf_version": str(doc.get("Version")),
                "report_class": rep.get("ReportClass"),
                "report_type": rep.get("ReportType"),
                "additional_info": add,
                "xarf_tolerant": True,
            },
            **ident,
        )

    # -- XARF v4 -----------------------------------------------------------------------------------------------
    def _v4(self, doc: dict[str, Any]) -> Iterator[Event | ParseIssue]:
        doc = {k: v for k, v in doc.items() if not k.startswith("_")}  # `_internal` is the sender's business
        mode = self.params.mode  # type: ignore[attr-defined]
        tolerant = mode == "tolerant"
        strict_error: XarfInvalid | None = None
        if not tolerant:
            try:
                validate_v4(doc, tolerant=False)
            except XarfInvalid as exc:
                if mode == "strict":
                    raise
                strict_error, tolerant = exc, True
        if tolerant:
            validate_v4(doc, tolerant=True)
        category, type_ = doc["category"], doc["type"]
        kind = kind_from_xarf(category, type_)
        if kind == "other":
            kind = V4_DRAFT_KINDS.get((category, type_), "other")
        exported_kind = doc.get("abusedesk_kind")
        if isinstance(exported_kind, str) and exported_kind in KINDS:
            kind = exported_kind
        ident = _classify_identifier(doc["source_identifier"])
        if "url" in doc and isinstance(doc["url"], str) and "source_url" not in ident:
            ident["source_url"] = doc["url"]
        elif "infringing_url" in doc and isinstance(doc["infringing_url"], str) and "source_url" not in ident:
            ident["source_url"] = doc["infringing_url"]
        reporter = doc["reporter"]
        problems = verify_evidence(doc)
        for problem in problems:
            yield ParseIssue(problem)
        core = {*_V4_CORE, "sender", "evidence", "source_port", "destination_ip", "destination_port", "abusedesk_kind"}
        extra: dict[str, Any] = {
            "xarf_version": doc["xarf_version"],
            "xarf_category": category,
            "xarf_type": type_,
            "xarf_reporter": reporter,
            "xarf_source_identifier": doc["source_identifier"],
            "xarf_fields": {k: v for k, v in doc.items() if k not in core},
        }
        if "sender" in doc:
            extra["xarf_sender"] = doc["sender"]
        evidence = doc.get("evidence") or []
        if evidence:
            if len(json.dumps(evidence)) <= _MAX_EVIDENCE_KEEP:
                extra["xarf_evidence"] = evidence
            else:
                extra["xarf_evidence"] = [{k: v for k, v in e.items() if k != "payload"} for e in evidence]
        if problems:
            extra["evidence_hash_mismatch"] = problems
        if tolerant:
            extra["xarf_tolerant"] = True
            if strict_error is not None:
                extra["xarf_strict_error"] = str(strict_error)
        yield Event.create(
            kind=kind,
            time=_check_date("timestamp", doc["timestamp"]),
            feed=self.name,
            reporter=reporter.get("contact") or reporter.get("org"),
            report_id=str(doc["report_id"]),
            source_port=doc.get("source_port"),
            destination_ip=doc.get("destination_ip"),
            destination_port=doc.get("destination_port"),
            transport=doc["protocol"].lower() if doc.get("protocol") in ("tcp", "udp", "TCP", "UDP") else None,
            confidence=0.95 if not tolerant else 0.8,
            description=doc.get("description") if isinstance(doc.get("description"), str) else None,
            extra=extra,
            **ident,
        )
