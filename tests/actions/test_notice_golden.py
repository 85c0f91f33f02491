"""Golden files of rendered notices, one per kind of finding, from real samples read in place (issue 11, item 3).

Each sample (the demo's signals and /work/shared/corpus's reports) goes through its real parser, is attributed to
a test customer, becomes a finding by the real ``reported`` detector and a case by the real case engine; the
notice the runner files is composed as the dispatcher would compose it. ``tests/golden/notices/<name>.txt`` holds
the plain-text part; ``UPDATE_GOLDEN=1`` rewrites them.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from abusedesk.actions import notices
from abusedesk.actions.runner import ActionRunner
from abusedesk.cases.engine import CaseEngine
from abusedesk.detectors.reported import ReportedAbuseDetector
from abusedesk.domain.records import Event
from abusedesk.parsers.acns import AcnsParser
from abusedesk.parsers.arf import ArfParser
from abusedesk.parsers.base import Parser
from abusedesk.parsers.freetext import FreetextParser
from abusedesk.parsers.shadowserver import ShadowserverParser
from abusedesk.parsers.spamcop import SpamcopParser
from abusedesk.parsers.urlreport import UrlReportParser
from abusedesk.parsers.xarf import XarfParser
from abusedesk.runtime import Runtime
from abusedesk.store.tables.cases import NoticeRow
from tests.actions.support import seed_inventory
from tests.conftest import CORPUS, T0
from tests.parsers.feedsupport import make_report
from tests.support.components import missing

GOLDEN = Path(__file__).parents[1] / "golden" / "notices"
DEMO = Path(__file__).parents[2] / "src" / "abusedesk" / "demo" / "data" / "signals"
SHADOW = Path("reports/intelmq-shadowserver-testdata")
ABUSEIO = Path("reports/abuseio-notifier-samples")

# name -> (where, path, parser, kind of the event to take)
SAMPLES: dict[str, tuple[str, Path, type[Parser], str]] = {
    "brute-force-xarf": ("demo", Path("02-xarf-login-before-reassignment.json"), XarfParser, "brute-force"),
    "exposed-database-scan_postgres": (
        "demo", Path("2026-03-01-scan_postgres-provider-fi.csv"), ShadowserverParser, "open-service"
    ),
    "exposed-database-scan_redis": ("corpus", SHADOW / "scan_redis.csv", ShadowserverParser, "open-service"),
    "open-resolver-scan_dns": ("corpus", SHADOW / "scan_dns.csv", ShadowserverParser, "open-resolver"),
    "open-proxy-scan_http_proxy": ("corpus", SHADOW / "scan_http_proxy.csv", ShadowserverParser, "open-proxy"),
    "compromised-host-sinkhole": ("corpus", SHADOW / "event4_sinkhole.csv", ShadowserverParser, "infected-host"),
    "amplifier-scan_ntpmonitor": ("corpus", SHADOW / "scan_ntpmonitor.csv", ShadowserverParser, "open-service"),
    "brute-force-honeypot": (
        "corpus", SHADOW / "event4_honeypot_brute_force.csv", ShadowserverParser, "brute-force"
    ),
    "spam-arf": ("demo", Path("01-arf-spam.eml"), ArfParser, "spam"),
    "spam-spamcop": ("demo", Path("04-spamcop.eml"), SpamcopParser, "spam"),
    "phishing-freetext": ("demo", Path("05-phishing.eml"), FreetextParser, "phishing"),
    "malware-safe-browsing": ("corpus", ABUSEIO / "google" / "Safe_Browsing_Report_1.eml", UrlReportParser, "malware"),
    "infringing-file-acns": (
        "corpus", ABUSEIO / "copyrightcompliance" / "Copyrightcompliance_Example_1.eml", AcnsParser, "copyright-p2p"
    ),
}  # fmt: skip


def _event(name: str) -> Event:
    where, rel, parser_cls, kind = SAMPLES[name]
    if where == "corpus" and not CORPUS.is_dir():
        missing(f"the shared corpus is not at {CORPUS}")
    path = (DEMO if where == "demo" else CORPUS) / rel
    report = make_report(path.read_bytes(), path.name)
    events = [e for e in parser_cls().parse(report) if isinstance(e, Event) and e.kind == kind]
    assert events, f"{path} gave no {kind} event"
    first = events[0]
    extra = {k: v for k, v in first.extra.items() if k != "triage"}
    return dataclasses.replace(
        first,
        customer_id="cust-a",
        project_id="proj-cust-a",
        service_id="svc-a1",
        confidence=max(first.confidence, 0.9),
        extra=extra,
    )


def _composed(runtime: Runtime, event: Event, disclose: tuple[str, ...] = ()) -> notices.Composed:
    seed_inventory(runtime)
    [finding] = ReportedAbuseDetector(runtime.policy).detect([event])
    CaseEngine(runtime).ingest([finding])
    [filed] = ActionRunner(runtime).run_pending()
    assert filed.ok, filed.detail
    with runtime.sessions() as s:
        [notice] = s.scalars(select(NoticeRow))
        return notices.compose(
            s,
            notice,
            policy=runtime.policy,
            notify_from=runtime.settings.notify_from,
            now=T0 + timedelta(hours=6),
            disclose_reporters=disclose,
        )


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_notice_golden(runtime: Runtime, name: str) -> None:
    composed = _composed(runtime, _event(name))
    text = f"Subject: {composed.subject}\n\n{composed.body}"
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()
    # the HTML part carries the same facts, escaped
    for line in composed.body.splitlines():
        if line.startswith("      ") and ": " in line and "<" not in line and "&" not in line:
            label, _, value = line.strip().partition(": ")
            assert value in composed.html, (label, value)
    assert "<script" not in composed.html


def test_brute_force_notice_names_target_port_and_attempts_and_not_the_reporter(runtime: Runtime) -> None:
    """The defects of issue 11: no target/port/count, the reporter's address shown, a range of one instant."""
    composed = _composed(runtime, _event("brute-force-xarf"))
    body = " ".join(composed.body.split())
    assert "against 203.0.113.250 port 22/tcp (ssh), 412 attempts" in body
    assert "Attempts: 412" in body
    assert "cert@cert.example.net" not in composed.body + composed.html
    assert "Reported by: a third party" in body
    assert "from 2026-03-01T11:00:00Z to 2026-03-01T11:30:00Z" in body  # XARF first_seen .. last_seen


def test_reporter_named_only_when_it_agreed(runtime: Runtime) -> None:
    composed = _composed(runtime, _event("brute-force-xarf"), disclose=("@cert.example.net",))
    assert "Reported by: cert@cert.example.net" in composed.body
    assert "cert@cert.example.net" in composed.html


def test_one_instant_is_written_once_and_open_service_names_service_port_and_fix(runtime: Runtime) -> None:
    composed = _composed(runtime, _event("exposed-database-scan_postgres"))
    body = " ".join(composed.body.split())
    assert "at 2026-03-01T05:12:33Z: open service at 192.0.2.70 (postgres port 5432/tcp)" in body
    assert " to 2026-03-01T05:12:33Z" not in body
    assert "Database reachable from the internet" in body
    assert "listen_addresses" in body


def test_notice_is_multipart_alternative_with_text_and_html(runtime: Runtime) -> None:
    composed = _composed(runtime, _event("phishing-freetext"))
    with runtime.sessions() as s:
        [notice] = s.scalars(select(NoticeRow))
    msg = notices.build_message(notice, composed, notify_from=runtime.settings.notify_from, date=T0)
    parsed = email.message_from_bytes(msg.as_bytes(policy=email.policy.SMTP), policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    html = parsed.get_body(("html",))
    assert html is not None
    assert "Take the page down now" in str(html.get_content())


def test_what_an_outsider_wrote_is_escaped_in_html_and_cut_in_text(runtime: Runtime) -> None:
    """Header samples come from outsiders: HTML-escaped in the HTML part, control characters and length cut."""
    event = _event("spam-arf")
    hostile = '<script>alert("x")</script>\r\nBcc: victim@example.net\x00' + "A" * 1000
    event = dataclasses.replace(event, extra={**event.extra, "original_subject": hostile})
    composed = _composed(runtime, event)
    assert "<script>" not in composed.html
    assert "&lt;script&gt;" in composed.html
    [subject_line] = [line for line in composed.body.splitlines() if "Subject: <script>" in line]
    assert "\r" not in composed.body and "\x00" not in composed.body
    assert "Bcc: victim" in " ".join(composed.body.split())  # on the Subject sample line, not a header of ours
    assert "A" * 400 not in composed.body.replace("\n", "").replace(" ", "")  # cut to 300 characters
    assert subject_line.startswith("        Subject: ")
