"""`abusedesk demo`: a fresh data dir, a sample inventory, sample signals through the real doors, the cases.

Everything runs for real on loopback: complaint mail goes through the SMTP intake listener, XARF reports
through the REST API, a Shadowserver file through the feed door; notices go out by SMTP to a mail sink the demo
starts (saved as .eml files in ``<data dir>/outbox``), and control-plane actions go as signed webhooks to a
receiver the demo starts (its requests saved in ``<data dir>/control-plane``). The clock is a manual one set to
the sample day, so the section 4 deadline can be passed without waiting three days.
"""

from __future__ import annotations

import json
import secrets
import shutil
import smtplib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr
from sqlalchemy import select

from abusedesk.clock import ManualClock
from abusedesk.config import Settings, SmtpSettings, WebhookSettings
from abusedesk.runtime import Runtime

DEMO_START = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
WEBHOOK_SECRET = "demo-secret-not-for-production"  # noqa: S105 - the demo's own loopback receiver

Echo = Callable[[str], None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _OutboxHandler:
    """The notice sink: every message the desk sends is saved as an .eml file."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.count += 1
            n = self.count
        data = envelope.original_content or b""
        (self.outbox / f"{n:03d}.eml").write_bytes(data)
        return "250 OK saved"


@dataclass
class _ControlPlane:
    """A stand-in for the provider's control plane: verifies the signature, records what it was asked."""

    folder: Path
    requests: list[dict[str, Any]] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        plane = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                from abusedesk.actions.webhook import SIGNATURE_HEADER, verify_signature

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verify_signature(WEBHOOK_SECRET, self.headers.get(SIGNATURE_HEADER, ""), body)
                record = {
                    "signature_ok": ok,
                    "idempotency_key": self.headers.get("Idempotency-Key"),
                    "body": json.loads(body or b"{}"),
                }
                plane.requests.append(record)
                (plane.folder / f"{len(plane.requests):03d}.json").write_text(json.dumps(record, indent=2))
                reply = json.dumps({"ok": ok, "ref": f"cp-{len(plane.requests)}"}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


@contextmanager
def _peers(data_dir: Path) -> Iterator[tuple[int, int, _OutboxHandler, _ControlPlane]]:
    outbox = data_dir / "outbox"
    control = data_dir / "control-plane"
    outbox.mkdir(parents=True, exist_ok=True)
    control.mkdir(parents=True, exist_ok=True)
    sink = _OutboxHandler(outbox)
    smtp_port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    plane = _ControlPlane(control)
    http = ThreadingHTTPServer(("127.0.0.1", 0), plane.handler())
    thread = threading.Thread(target=http.serve_forever, name="demo-control-plane", daemon=True)
    thread.start()
    try:
        yield smtp_port, int(http.server_address[1]), sink, plane
    finally:
        http.shutdown()
        http.server_close()
        controller.stop()


def _signal(name: str) -> bytes:
    return resources.files("abusedesk.demo").joinpath("data", "signals", name).read_bytes()


def _signal_names() -> list[str]:
    return sorted(p.name for p in resources.files("abusedesk.demo").joinpath("data", "signals").iterdir())


@contextmanager
def serve_api(rt: Runtime) -> Iterator[str]:
    """The real API under uvicorn on a loopback port, for as long as the block runs."""
    import time

    import uvicorn

    from abusedesk.api.app import create_app
    from abusedesk.api.ratelimit import uvicorn_config

    port = _free_port()
    server = uvicorn.Server(
        uvicorn_config(rt, create_app(rt), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="demo-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def run_demo(data_dir: Path, *, fresh: bool = True, echo: Echo = print) -> dict[str, Any]:
    """Run the whole demo; returns a summary (what the tests check), and prints as it goes."""
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with _peers(data_dir) as (smtp_port, webhook_port, sink, plane):
        settings = Settings(
            data_dir=data_dir,
            notify_backend="smtp",
            control_backend="webhook",
            smtp=SmtpSettings(host="127.0.0.1", port=smtp_port),
            webhook=WebhookSettings(
                url=f"http://127.0.0.1:{webhook_port}/abusedesk",
                secret=SecretStr(WEBHOOK_SECRET),
                max_attempts=3,
                backoff_base=0.1,
            ),
        )
        clock = ManualClock(DEMO_START)
        from abusedesk.evidence import checkpoints

        key = checkpoints.key_path(settings)
        if not key.exists():  # as `abusedesk audit keygen` does: every checkpoint of the demo is signed
            checkpoints.generate_key(key)
        rt = Runtime.open(settings, clock=clock)
        try:
            return _Demo(rt, clock, echo, sink, plane).run()
        finally:
            rt.close()


class _Demo:
    def __init__(self, rt: Runtime, clock: ManualClock, echo: Echo, sink: _OutboxHandler, plane: _ControlPlane) -> None:
        from abusedesk.intake.channels import wire_channels

        self.rt, self.clock, self.echo, self.sink, self.plane = rt, clock, echo, sink, plane
        self.door = wire_channels(rt)
        self.intake = self.door.intake
        self.summary: dict[str, Any] = {}

    @contextmanager
    def api(self) -> Iterator[str]:
        """The real API under uvicorn on a loopback port, for as long as the block runs."""
        with serve_api(self.rt) as url:
            yield url

    def heading(self, text: str) -> None:
        self.echo("")
        self.echo(f"== {text} ==")

    def run(self) -> dict[str, Any]:
        self.echo(
            f"abusedesk demo in {self.rt.settings.data_dir.resolve()} (clock set to {DEMO_START:%Y-%m-%d %H:%MZ})"
        )
        self.import_inventory()
        self.people()
        self.feed_signals()
        self.egress_log()
        self.show_attribution()
        self.act()
        self.second_person_approval()
        self.section_four_loop()
        self.prove()
        return self.summary

    # -- 1. inventory --------------------------------------------------------------------------------------------
    def import_inventory(self) -> None:
        from abusedesk.inventory.service import InventoryService

        self.heading("1. Inventory: customers, nested prefixes, an address re-assigned at 12:00, IPv6")
        path = resources.files("abusedesk.demo").joinpath("data", "inventory.json")
        with resources.as_file(path) as p:
            report = InventoryService(self.rt).import_file(p)
        counts = report.to_dict()
        self.summary["inventory"] = counts
        self.echo(json.dumps({k: v for k, v in counts.items() if isinstance(v, dict)}, sort_keys=True))

    def people(self) -> None:
        """The first admin (the documented bootstrap), then an analyst, an approver and a customer's user, each
        with an API token; every later step acts through a token, as the API and the CLI do."""
        from abusedesk.identity.service import IdentityService

        self.heading("1b. Identities: the first admin, an analyst, an approver, a customer; one API token each")
        ident = IdentityService(self.rt)
        admin_user, admin_token = ident.bootstrap("admin")
        self.tokens: dict[str, str] = {"admin": admin_token.token}
        admin = ident.authenticate(admin_token.token)
        for name, role, customer in (
            ("alice", "analyst", None),
            ("bob", "approver", None),
            ("carol", "approver", None),
            ("globex-ops", "customer", "cust-globex"),
        ):
            user = ident.add_user(admin, name, role, customer)
            # the demo's clock is in 2026-03; a long lifetime keeps the printed token usable on the real clock
            self.tokens[name] = ident.create_token(admin, name, label="demo", days=3650).token
            self.echo(f"  {user['name']:<11} {user['role']:<9} {user['id']}{' (' + customer + ')' if customer else ''}")
        self.who = {name: ident.authenticate(token) for name, token in self.tokens.items()}
        self.echo(f"  admin       admin     {admin_user['id']} (abusedesk user bootstrap admin)")
        # console logins (issue 11): a password for the analyst, an approver and the customer's user, made afresh
        # for each demo (never a well-known one), and the approver's TOTP secret; printed at the end
        self.logins: dict[str, dict[str, str]] = {}
        for name in ("alice", "bob", "globex-ops"):
            password = f"{name}-" + secrets.token_urlsafe(9)
            ident.set_password(admin, name, password)
            self.logins[name] = {"role": self.who[name].role.value, "password": password}
        self.logins["bob"]["totp_secret"] = ident.enrol_totp(admin, "bob", issuer="abusedesk demo")["secret"]
        self.summary["logins"] = self.logins

    # -- 2. signals through the real doors -----------------------------------------------------------------------
    def feed_signals(self) -> None:
        import httpx

        from abusedesk.intake.smtp import SmtpIntakeServer

        self.heading("2. Signals: complaint mail by SMTP, XARF by the REST API, a Shadowserver feed file")
        port = _free_port()
        server = SmtpIntakeServer(self.door, host="127.0.0.1", port=port)
        server.start()
        fed = []
        with self.api() as api:
            try:
                for name in _signal_names():
                    data = _signal(name)
                    if name.endswith(".eml"):
                        msg = message_from_bytes(data, policy=policy.default)
                        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                            reply = smtp.send_message(
                                msg, from_addr=str(msg["From"]), to_addrs=["abuse@provider.example"]
                            )
                        fed.append((name, "SMTP", "250" if not reply else str(reply)))
                    elif name.endswith(".json"):
                        resp = httpx.post(
                            f"{api}/api/v1/reports",
                            content=data,
                            timeout=30,
                            headers={"Content-Type": "application/json"},
                        )
                        fed.append((name, "REST", f"{resp.status_code} {resp.json().get('reference', '')}"))
                    else:
                        acc = self.intake.accept(data, channel="folder", meta={"filename": name})
                        fed.append((name, "feed file", f"stored {acc.raw.id[:12]}"))
            finally:
                server.stop()
        self.rt.drain()
        for name, channel, result in fed:
            self.echo(f"  {channel:<9} {name:<46} {result}")
        self.summary["signals"] = len(fed)

    # -- 2b. an egress proxy's log: crawlers judged by clause 1.14 ---------------------------------------------------
    def egress_log(self) -> None:
        from sqlalchemy import select

        from abusedesk.robots.store import RobotsStore
        from abusedesk.store.tables.cases import FindingRow

        self.heading("2b. Egress log: one polite crawler and two impolite ones (clause 1.14)")
        weblog = resources.files("abusedesk.demo").joinpath("data", "weblog")
        RobotsStore(self.rt).imported("203.0.113.80", weblog.joinpath("robots.txt").read_bytes(), 200,
                                      origin="demo", at=self.clock.now())  # fmt: skip
        self.intake.accept(weblog.joinpath("access.log").read_bytes(), channel="folder",
                           meta={"filename": "access.log", "parser": "weblog", "weblog_format": "squid"})  # fmt: skip
        self.rt.drain()
        crawlers: dict[str, list[str]] = {}
        with self.rt.sessions() as s:
            for row in s.scalars(select(FindingRow).where(FindingRow.kind == "crawling")):
                crawlers.setdefault(str(row.subject_ip), []).append(row.summary)
        for client in ("2001:db8:100:5::10", "2001:db8:100:5::11", "2001:db8:100:5::12"):
            found = sorted(crawlers.get(client, []))
            self.echo(f"  {client:<20} {len(found)} findings" + "".join(f"\n      {x}" for x in found))
        self.summary["crawlers"] = {k: len(v) for k, v in sorted(crawlers.items())}

    # -- 3. attribution ------------------------------------------------------------------------------------------
    def show_attribution(self) -> None:
        from abusedesk.domain.ipnet import is_ip
        from abusedesk.inventory.service import InventoryService
        from abusedesk.pipeline import url_host
        from abusedesk.store.tables.intake import EventRow, RawInputRow

        self.heading("3. What was attributed to whom, and why")
        inventory = InventoryService(self.rt)
        rows = []
        with self.rt.sessions() as s:
            events = s.scalars(select(EventRow).order_by(EventRow.time, EventRow.id)).all()
            quarantined = s.scalars(select(RawInputRow).where(RawInputRow.status == "quarantined")).all()
        for e in events:
            subject = e.source_ip or e.source_url or "-"
            host = url_host(e.source_url) if e.source_url else None
            address = e.source_ip or (host if host and is_ip(host) else None)
            if address:
                why = inventory.whois(address, e.time)
                reason = str(why.get("reason") or why.get("why") or "")
            elif e.service_id:
                reason = f"host name in {e.source_url} belongs to {e.service_id}"
            else:
                reason = "no address or known host name"
            owner = f"{e.customer_id}/{e.service_id}" if e.service_id else e.disposition
            rows.append((e.time.strftime("%m-%d %H:%M"), e.kind, subject[:40], owner, reason))
        widths = [max(len(str(r[i])) for r in [("time", "kind", "subject", "owner", "why"), *rows]) for i in range(4)]
        header = ("time", "kind", "subject", "customer/service", "why")
        self.echo("  " + "  ".join(str(h).ljust(w) for h, w in zip(header, [*widths, 0], strict=False)))
        for r in rows:
            self.echo("  " + "  ".join(str(c).ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
        triage = [e for e in events if e.disposition == "triage" or (e.data.get("extra") or {}).get("triage")]
        for e in triage:
            extra = e.data.get("extra") or {}
            triage_reason = (
                "incomplete DMCA notice: missing " + ", ".join(extra["dmca_missing"])
                if extra.get("dmca_missing")
                else f"confidence {e.confidence:.2f}"
            )
            self.echo(
                f"  triage (an analyst decides): {e.kind} {e.source_ip or e.source_url} "
                f"from {e.reporter}: {triage_reason}"
            )
        for q in quarantined:
            self.echo(f"  quarantined {q.id[:12]} ({q.meta.get('filename') or q.channel}): {q.error}")
        self.summary["events"] = len(rows)
        self.summary["attributed"] = sum(1 for e in events if e.service_id)
        self.summary["not_ours"] = sum(1 for e in events if e.disposition == "not-ours")
        self.summary["triage"] = len(triage)
        self.summary["owners_of_203.0.113.10"] = sorted(
            {str(e.customer_id) for e in events if e.source_ip == "203.0.113.10"}
        )

    # -- 4. cases, notices ---------------------------------------------------------------------------------------
    def run_actions(self) -> None:
        from abusedesk.actions.runner import ActionRunner, NoticeDispatcher

        now = self.clock.now()
        ActionRunner(self.rt).run_pending(now)
        NoticeDispatcher(self.rt).send_due(now)
        self.rt.drain()

    def act(self) -> None:
        from abusedesk.cases.service import CaseService

        self.heading("4. Cases and the notices the playbooks sent")
        self.rt.drain()
        # digests wait at most the policy's limit per severity; move past the longest so every first notice goes
        self.clock.advance(timedelta(hours=1))
        self.run_actions()
        self.clock.advance(timedelta(hours=4))
        self.run_actions()
        cases = CaseService(self.rt).list(self.who["alice"])
        for c in sorted(cases, key=lambda c: c["ref"]):
            self.echo(
                f"  {c['ref']:<18} {c['state']:<18} clause {c['clause']:<5} {c['kind']:<16} "
                f"{c['customer_id']}/{c['service_id']}  {c['group_key']}"
            )
        self.echo(f"  notices in the outbox: {self.sink.count} (one digest per customer contact)")
        for path in sorted((self.rt.settings.data_dir / "outbox").glob("*.eml")):
            msg = message_from_bytes(path.read_bytes(), policy=policy.default)
            self.echo(f"    {path.name}  to {msg['To']}: {msg['Subject']}")
        self.summary["cases_after_intake"] = len(cases)
        self.summary["notices"] = self.sink.count

    def _case_for(self, service_id: str, kind: str) -> dict[str, Any] | None:
        from abusedesk.cases.service import CaseService

        for c in CaseService(self.rt).list(self.who["alice"]):
            if c["service_id"] == service_id and c["kind"] == kind:
                return c
        return None

    # -- 5. section 4: the findings go on after the deadline -----------------------------------------------------
    def section_four_loop(self) -> None:
        import httpx

        from abusedesk.cases.scheduler import Scheduler
        from abusedesk.cases.service import CaseService

        self.heading("6. Section 4: the brute force goes on after the request to cease")
        case = self._case_for("svc-umbrella-vm", "brute-force")
        if case is None or not case.get("deadline"):
            self.echo("  no request-to-cease case for svc-umbrella-vm; the policy's playbook sends none")
            self.summary["escalated"] = False
            return
        self.echo(f"  {case['ref']} asked Umbrella Labs to cease by {case['deadline']}")
        self.clock.advance(timedelta(days=1))
        when = self.clock.now() - timedelta(minutes=30)
        report = {
            "xarf_version": "4.2.0",
            "report_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "abusedesk-demo-repeat")),
            "timestamp": when.isoformat().replace("+00:00", "Z"),
            "reporter": {"org": "Example CERT", "contact": "cert@cert.example.net", "domain": "cert.example.net"},
            "sender": {"org": "Example CERT", "contact": "cert@cert.example.net", "domain": "cert.example.net"},
            "source_identifier": "203.0.113.10",
            "source_port": 40555,
            "category": "connection",
            "type": "login_attack",
            "evidence_source": "honeypot",
            "destination_ip": "203.0.113.250",
            "destination_port": 22,
            "protocol": "tcp",
            "service": "ssh",
            "attempt_count": 1500,
            "description": "Still brute-forcing SSH a day after the request to cease",
        }
        with self.api() as api:
            resp = httpx.post(f"{api}/api/v1/reports", json=report, timeout=30)
        self.echo(f"  a day later the CERT reports it again: REST {resp.status_code}")
        self.rt.drain()
        deadline = datetime.fromisoformat(str(case["deadline"]).replace("Z", "+00:00"))
        self.clock.set(deadline + timedelta(minutes=1))
        tick = Scheduler(self.rt).tick()
        self.rt.drain()
        after = CaseService(self.rt).get(case["ref"], self.who["alice"])
        self.echo(f"  deadline passed; scheduler: {json.dumps(tick.to_dict())}")
        self.echo(f"  {after['ref']} is now {after['state']}")
        proposed = [a for a in after.get("actions", []) if a.get("status") == "proposed"]
        for a in proposed:
            self.echo(f"  proposed by {a['proposed_by']}: {a['kind']} (waits for two persons)")
        self.summary["escalated"] = after["state"] == "escalated"
        self.summary["escalated_case"] = after["ref"]
        self.summary["proposals_after_deadline"] = [a["kind"] for a in proposed]

    # -- 6. two persons ------------------------------------------------------------------------------------------
    def second_person_approval(self) -> None:
        from abusedesk.cases.service import CaseService
        from abusedesk.domain.errors import AbuseDeskError

        self.heading("5. Suspension: proposed by one person, refused to the same one, approved by a second")
        svc = CaseService(self.rt)
        case = self._case_for("svc-globex-web", "phishing")
        if case is None:
            self.echo("  no phishing case for svc-globex-web")
            return
        alice, bob = self.who["alice"], self.who["bob"]
        action = svc.propose(
            case["ref"], "suspend-service", by=bob, reason="phishing page impersonating a bank, still up"
        )
        self.echo(f"  bob proposes suspend-service on {case['ref']}: action {action['id']} {action['status']}")
        try:
            svc.approve(action["id"], by=bob)
        except AbuseDeskError as exc:
            self.echo(f"  bob approves his own proposal: refused ({exc.message})")
            self.summary["self_approval_refused"] = True
        try:
            svc.approve(action["id"], by=alice)
        except AbuseDeskError as exc:
            self.echo(f"  alice (an analyst) approves: refused ({exc.message})")
        import httpx

        with self.api() as api:  # carol approves over the REST API with her own token, as a console would
            resp = httpx.post(
                f"{api}/api/v1/actions/{action['id']}/approve",
                json={"reason": "checked the page: phishing"},
                headers={"Authorization": f"Bearer {self.tokens['carol']}"},
                timeout=30,
            )
            approved = resp.json()["action"]
            theirs = httpx.get(
                f"{api}/api/v1/cases/{case['ref']}",
                headers={"Authorization": f"Bearer {self.tokens['globex-ops']}"},
                timeout=30,
            )
            other = next(c for c in svc.list(alice) if c["customer_id"] != "cust-globex")
            not_theirs = httpx.get(
                f"{api}/api/v1/cases/{other['ref']}",
                headers={"Authorization": f"Bearer {self.tokens['globex-ops']}"},
                timeout=30,
            )
        self.echo(
            f"  carol approves (POST /api/v1/actions/.../approve): {approved['status']} "
            f"(the case stays {approved['case_state']} until it is done)"
        )
        self.echo(
            f"  Globex's own user reads {case['ref']}: {theirs.status_code}; another customer's "
            f"{other['ref']}: {not_theirs.status_code}"
        )
        self.summary["customer_sees_own"] = theirs.status_code
        self.summary["customer_sees_other"] = not_theirs.status_code
        self.run_actions()
        after = svc.get(case["ref"], alice)
        done = [a for a in after["actions"] if a["id"] == action["id"]]
        self.echo(
            f"  control plane received {len(self.plane.requests)} signed request(s); suspension "
            f"{done[0]['status'] if done else '?'}; {case['ref']} is now {after['state']}"
        )
        for r in self.plane.requests:
            body = r["body"]
            self.echo(
                f"    {body.get('action') or body.get('kind')} {body.get('service_id')} "
                f"signature ok: {r['signature_ok']}"
            )
        from abusedesk.store.tables.inventory import ServiceRow

        with self.rt.sessions() as s:
            svc_row = s.get(ServiceRow, "svc-globex-web")
            self.summary["globex_web_status"] = svc_row.status if svc_row else None
        self.summary["approved_case"] = case["ref"]
        self.summary["approved_case_state"] = after["state"]
        self.summary["control_plane_requests"] = len(self.plane.requests)

    # -- 7. proof ------------------------------------------------------------------------------------------------
    def prove(self) -> None:
        from abusedesk.actions.export import export_case
        from abusedesk.cases.service import CaseService
        from abusedesk.evidence import audit

        self.heading("7. Proof: the audit chain, and an evidence bundle for officials")
        with self.rt.sessions() as s:
            result = audit.verify_settings(s, self.rt.settings)
        self.echo(
            f"  audit log: {result.entries} entries, chain {'intact' if result.ok else 'BROKEN: ' + result.problem}"
            + (f", signed up to entry {result.signed_seq}" if result.signed_seq else "")
        )
        self.summary["audit_ok"] = result.ok
        ref = self.summary.get("escalated_case") or self.summary.get("approved_case")
        if ref:
            out = self.rt.settings.data_dir / "bundles" / f"{ref}"
            export_case(self.rt, str(ref), out, exported_by=self.who["alice"].id)
            self.echo(f"  evidence bundle for {ref}: {out} (check with: cd {out} && sha256sum -c SHA256SUMS")
            self.echo("    && python3 verify_audit.py: its audit entries against our signed checkpoints)")
            self.summary["bundle"] = str(out)
        summary = CaseService(self.rt).summary(self.who["alice"])
        self.summary["cases"] = summary
        self.heading("Summary")
        self.echo(f"  cases by state:  {json.dumps(summary['by_state'])}")
        self.echo(f"  cases by clause: {json.dumps(summary['by_clause'])}")
        self.echo(f"  notices sent: {self.sink.count}; control-plane calls: {len(self.plane.requests)}")
        data_dir = self.rt.settings.data_dir
        self.echo("")
        self.echo("Look around (from the checkout: `. .venv/bin/activate` first, or type .venv/bin/abusedesk):")
        self.echo(f"  export ABUSEDESK_TOKEN={self.tokens['alice']}   # alice, analyst")
        self.echo(f"  abusedesk --data-dir {data_dir} case list")
        self.echo(f"  abusedesk --data-dir {data_dir} case show {ref}")
        self.echo(f"  abusedesk --data-dir {data_dir} inventory whois 203.0.113.10 --at 2026-03-01T11:59:59Z")
        self.echo(f"  abusedesk --data-dir {data_dir} audit verify")
        host, port = self.rt.settings.api_host, self.rt.settings.api_port
        self.echo("")
        self.echo("The console and the customer portal on the demo data (the API's documentation at /api/docs):")
        self.echo(f"  abusedesk --data-dir {data_dir} serve")
        self.echo(f"  then open http://{host}:{port}/ and sign in as:")
        for name, login in self.logins.items():
            extra = ""
            if "totp_secret" in login:
                secret = login["totp_secret"]
                extra = (
                    f"; TOTP secret {secret} (an authenticator app, or: "
                    f"python3 -c 'import pyotp; print(pyotp.TOTP(\"{secret}\").now())')"
                )
            self.echo(f"    {name:<11} {login['role']:<9} password {login['password']}{extra}")
        self.echo(f"  API documentation: http://{host}:{port}/api/docs")
