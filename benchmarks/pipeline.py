"""Pipeline benchmark: door to case, as a user runs abusedesk, with IntelMQ 3.5 measured on the same feed input.

Everything goes through the command line and the database, never through abusedesk's internals, so the figures
follow whatever the pipeline becomes; durability is as shipped (raw inputs fsync'd before they are
acknowledged, SQLite in WAL mode). Each run gets a fresh data dir with a small inventory imported by
``abusedesk inventory import`` (10.0.0.0/8 for the mail copies, 100.64.0.0/10 for the feed rows, 2001:db8:b00::/40,
and a service owning the host names under ``bench-hosting.example``), so the reports become cases.
Acknowledgements and notices go to an SMTP sink on loopback that this script runs.

Workloads:

- ``mail``: the corpus's complaint mails (every RFC 822 mail of abuseio-notifier-samples,
  abuseio-parser-netcraft-samples and ovh-cerberus-core-samples; read in place, never copied) scaled to
  ``--mails`` copies. Each copy gets its own Message-ID and its own reported addresses, report ids and URL hosts
  (in base64 parts and zipped CSVs too), so that no copy is a duplicate of another at any stage; a template
  whose copies cannot be made distinct is left out and named. The mails go (a) into a maildir taken in by
  ``abusedesk intake file`` (timed from the command's start until it exited and the database shows every mail at
  its end), and (b) over SMTP to ``abusedesk serve --smtp`` on loopback from several client connections (timed
  from the first byte sent until every acknowledged mail is at its end). A mail is at its end when its raw input
  is quarantined, or parsed with every event not ours, in triage, or in a finding that belongs to a case.
- ``mail_preloaded``: the same as (a) into a database that already holds ``--preload`` mails.
- ``shadowserver``: a telnet scan report (the corpus's scan_telnet.csv rows, scaled with distinct addresses) of
  ``--rows`` rows (default 20,000 and 200,000) through ``abusedesk intake file`` to cases.
- ``intelmq``: IntelMQ 3.5 on the same CSV as its users run it: ``intelmqctl start`` of a file collector, the
  Shadowserver parser and a file output bot, each its own process, over Redis (``--redis-db``, only this run's
  keys are deleted afterwards), from the start until the output file holds every event. Offline IntelMQ has only
  the Shadowserver schema's test types, so it reads the file as ``test_telnet`` and abusedesk as ``scan_telnet``.

``--profile FILE`` runs the mail case (a) once more under cProfile and prints where the time went by stage.

Run: ``.venv/bin/python benchmarks/pipeline.py [--quick] [--mails N] [--preload N] [--rows 20000,200000]``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import email
import email.generator
import email.utils
import io
import ipaddress
import json
import mailbox
import os
import platform
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def _find_corpus() -> Path:
    """../shared/corpus/reports beside the checkout (or beside an ancestor: git worktrees); $BENCH_CORPUS wins."""
    if os.environ.get("BENCH_CORPUS"):
        return Path(os.environ["BENCH_CORPUS"])
    for parent in ROOT.parents:
        if (parent / "shared" / "corpus" / "reports").is_dir():
            return parent / "shared" / "corpus" / "reports"
    return ROOT.parent / "shared" / "corpus" / "reports"


CORPUS = _find_corpus()
MAIL_SETS = ("abuseio-notifier-samples", "abuseio-parser-netcraft-samples", "ovh-cerberus-core-samples")
TELNET = CORPUS / "intelmq-shadowserver-testdata" / "scan_telnet.csv"
sys.path.insert(0, str(ROOT / "src"))

MAIL_V4 = ipaddress.IPv4Network("10.0.0.0/8")  # complaint mails: 16.7M addresses, enough for a 1M-mail preload
FEED_V4 = ipaddress.IPv4Network("100.64.0.0/10")  # Shadowserver rows
V6_POOL = ipaddress.IPv6Network("2001:db8:b00::/40")
HOST_SUFFIX = "bench-hosting.example"
GOALS = {"mail_per_s": 2_000, "shadowserver_rows_per_s": 50_000, "ratio": 10}
BIN = Path(sys.executable).parent

# ------------------------------------------------------------------------------------------------ the mail mix


class AddressPool:
    """Hands out distinct benchmark addresses: IPv4 from ``v4`` (10.0.0.0/8), IPv6 from 2001:db8:b00::/40."""

    def __init__(self, start: int = 1, v4: ipaddress.IPv4Network = MAIL_V4) -> None:
        self.v4 = v4
        self.n4 = start
        self.n6 = start

    def next(self, version: int) -> str:
        if version == 4:
            self.n4 += 1
            if self.n4 % 256 == 0:  # no .0 host addresses: some reporters' tools drop them
                self.n4 += 1
            if self.n4 >= self.v4.num_addresses - 1:
                raise ValueError(f"the benchmark's address pool {self.v4} is used up")
            return str(self.v4.network_address + self.n4)
        self.n6 += 1
        return str(V6_POOL.network_address + self.n6)


_V4_TOKEN = re.compile(rb"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
_V6_TOKEN = re.compile(rb"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


def _normal_ip(token: bytes) -> str | None:
    try:
        return str(ipaddress.ip_address(token.decode()))
    except ValueError:
        return None


@dataclass
class Template:
    """One corpus mail and what identifies its reports: addresses, report ids, URL hosts."""

    name: str
    data: bytes
    parser: str | None
    events: int
    ips: list[str] = field(default_factory=list)
    report_ids: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    mime: bool = False  # rewrite inside base64/quoted-printable parts and zip members too

    def render(self, index: int, pool: AddressPool, run: str) -> bytes:
        ip_map = {ip: pool.next(ipaddress.ip_address(ip).version) for ip in self.ips}
        rid_map = {rid: _new_report_id(rid, index) for rid in self.report_ids}
        host_map = {h: f"{h}.m{index}.{HOST_SUFFIX}" for h in self.hosts}

        def rewrite(text: bytes) -> bytes:
            if ip_map:
                text = _V4_TOKEN.sub(lambda m: _mapped(m, ip_map), text)
                text = _V6_TOKEN.sub(lambda m: _mapped(m, ip_map), text)
            for old, new in rid_map.items():
                text = text.replace(old.encode(), new.encode())
            for old, new in host_map.items():
                text = re.sub(rb"(?<![\w.-])" + re.escape(old.encode()) + rb"(?![\w-])", new.encode(), text, flags=re.I)
            return text

        data = _rewrite_mime(self.data, rewrite) if self.mime else rewrite(self.data)
        return _set_message_id(data, f"<bench-{run}-{index}@pipeline.bench.example>")


def _mapped(m: re.Match[bytes], ip_map: dict[str, str]) -> bytes:
    ip = _normal_ip(m.group(0))
    return ip_map[ip].encode() if ip in ip_map else m.group(0)


def _new_report_id(rid: str, index: int) -> str:
    if re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", rid):
        return rid[:24] + f"{index:012x}"
    if rid.isdigit():
        return rid + f"{index:07d}"
    return f"{rid}-b{index}"


def _split_headers(data: bytes) -> tuple[bytes, bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = data.find(sep)
        if at >= 0:
            return data[:at], sep, data[at + len(sep) :]
    return data, b"", b""


def _set_message_id(data: bytes, message_id: str) -> bytes:
    head, sep, body = _split_headers(data)
    nl = b"\r\n" if sep.startswith(b"\r") else b"\n"
    pattern = re.compile(rb"^Message-ID:[ \t]*.*(?:\r?\n[ \t].*)*", re.I | re.M)
    line = b"Message-ID: " + message_id.encode()
    new_head, n = pattern.subn(lambda _m: line, head, count=1)
    if n == 0:
        new_head = line + nl + head
    return new_head + sep + body


def _rewrite_mime(data: bytes, rewrite: Callable[[bytes], bytes]) -> bytes:
    """Rewrite every decoded leaf part (a zip attachment member by member), then the whole text."""
    msg = email.message_from_bytes(data, policy=email_policy.compat32)
    for part in msg.walk():
        if part.is_multipart():
            continue
        cte = str(part.get("Content-Transfer-Encoding", "")).lower()
        if cte not in ("base64", "quoted-printable"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if payload.startswith(b"PK\x03\x04"):
            out = io.BytesIO()
            with zipfile.ZipFile(io.BytesIO(payload)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zo:
                for info in zin.infolist():
                    zo.writestr(info.filename, rewrite(zin.read(info)))
            new = out.getvalue()
        else:
            new = rewrite(payload)
        if cte == "base64":
            part.set_payload(base64.encodebytes(new).decode("ascii"))
        else:
            import quopri

            part.set_payload(quopri.encodestring(new).decode("ascii"))
    buf = io.BytesIO()
    email.generator.BytesGenerator(buf, mangle_from_=False, policy=email_policy.compat32).flatten(msg)
    return rewrite(buf.getvalue())


def corpus_mails() -> list[Path]:
    paths = []
    for name in MAIL_SETS:
        for p in sorted((CORPUS / name).rglob("*")):
            if p.is_file() and not p.name.startswith(("README", ".")) and not p.name.endswith(".license"):
                paths.append(p)
    return paths


def _parse_in_process(data: bytes, name: str) -> tuple[str | None, list[Any], str | None]:
    """What the intake's sniffing and parse make of a mail (to learn what identifies its reports)."""
    from abusedesk.domain.records import Event, RawInput
    from abusedesk.parsers.base import Report
    from abusedesk.plugins import load_parsers

    raw = RawInput(id="bench", size=len(data), channel="file", received_at=datetime.now(UTC), meta={"filename": name})
    report = Report(raw, data)
    for parser in load_parsers():
        try:
            if not parser.recognises(report):
                continue
        except Exception:  # the intake logs and skips a failing sniffer too
            continue
        try:
            return parser.name, [e for e in parser.parse(report) if isinstance(e, Event)], None
        except Exception as exc:
            return parser.name, [], f"{type(exc).__name__}"
    return None, [], "no parser"


def build_mix() -> tuple[list[Template], list[str]]:
    """Every corpus mail as a template whose copies are distinct; the names of those left out, with why."""
    templates: list[Template] = []
    left_out: list[str] = []
    for path in corpus_mails():
        data = path.read_bytes()
        name = str(path.relative_to(CORPUS))
        parser, events, _err = _parse_in_process(data, path.name)
        t = Template(name, data, parser, len(events))
        t.ips = sorted({e.source_ip for e in events if e.source_ip})
        t.report_ids = sorted({e.report_id for e in events if e.report_id and e.report_id.encode() in data})
        for e in events:
            if e.source_ip:
                continue
            host = None
            if e.source_url:
                with contextlib.suppress(ValueError):
                    host = urlsplit(e.source_url).hostname
            host = host or e.source_fqdn
            if host and host not in t.hosts:
                t.hosts.append(host)
        if not events:
            templates.append(t)  # quarantined: its end is the quarantine, a new Message-ID makes it distinct
            continue
        # plain text first, then inside encoded parts; then without touching report ids (a Shadowserver report id
        # is its file name, which names the report type: the addresses alone make those copies distinct)
        rids, why = t.report_ids, None
        for t.mime, t.report_ids in ((False, rids), (True, rids), (True, []), (False, [])):
            why = _distinct(t, path.name)
            if why is None:
                break
        if why is None:
            templates.append(t)
        else:
            left_out.append(f"{name}: {why}")
    return templates, left_out


def _distinct(t: Template, filename: str) -> str | None:
    """None when two copies parse to as many events as the original, with new ids, all ours; else why not."""
    seen: set[str] = set()
    for index in (1, 2):
        try:
            _, events, err = _parse_in_process(t.render(index, AddressPool(index * 1000), "check"), filename)
        except Exception as exc:
            return f"copy cannot be made: {type(exc).__name__}: {exc}"
        if err or len(events) != t.events:
            return f"copy parses to {len(events)} events, the original to {t.events} ({err or 'ok'})"
        ids = {e.id for e in events}
        if ids & seen:
            return "copies share event ids (the reported subject is not in a form this benchmark rewrites)"
        seen |= ids
        for e in events:
            host = urlsplit(e.source_url).hostname if e.source_url and not e.source_ip else None
            ours = (
                e.source_ip and ipaddress.ip_address(e.source_ip) in (MAIL_V4 if ":" not in e.source_ip else V6_POOL)
            ) or (host and host.endswith(HOST_SUFFIX))
            if not ours:
                return f"a copy still reports {e.source_ip or e.source_url or e.source_fqdn}"
    return None


@dataclass
class MailSet:
    templates: list[Template]
    pool: AddressPool
    run: str
    made: int = 0

    def take(self, n: int) -> Iterator[bytes]:
        for _ in range(n):
            t = self.templates[self.made % len(self.templates)]
            yield t.render(self.made, self.pool, self.run)
            self.made += 1


def write_maildir(path: Path, mails: list[bytes]) -> Path:
    box = mailbox.Maildir(path, create=True)
    for data in mails:
        box.add(data)
    box.close()
    return path


# ------------------------------------------------------------------------------------------------ abusedesk


def inventory_json(path: Path) -> Path:
    customers, projects, services, allocations = [], [], [], []
    # 8 services holding a /11 of the mail pool each, 4 more a /12 of the feed pool
    subnets = list(MAIL_V4.subnets(new_prefix=11)) + list(FEED_V4.subnets(new_prefix=12))
    for i, net in enumerate(subnets):
        cus, prj, svc = f"cus-bench-{i % 4}", f"prj-bench-{i % 4}", f"svc-bench-{i}"
        if i < 4:
            customers.append({"id": cus, "name": f"Bench customer {i}", "contact_email": f"ops{i}@customer.example"})
            projects.append({"id": prj, "customer_id": cus, "name": f"project {i}"})
        services.append({"id": svc, "project_id": prj, "kind": "vm", "name": f"vm-{i}"})
        allocations.append({"prefix": str(net), "service_id": svc, "valid_from": "1990-01-01T00:00:00Z"})
    services.append({"id": "svc-bench-v6", "project_id": "prj-bench-0", "kind": "vm", "name": "vm-v6"})
    allocations.append({"prefix": str(V6_POOL), "service_id": "svc-bench-v6", "valid_from": "1990-01-01T00:00:00Z"})
    services.append(
        {"id": "svc-bench-web", "project_id": "prj-bench-1", "kind": "web", "name": "web", "hostnames": [HOST_SUFFIX]}
    )
    doc = {"customers": customers, "projects": projects, "services": services, "allocations": allocations}
    path.write_text(json.dumps(doc, indent=1))
    return path


class Desk:
    """One fresh abusedesk data dir, driven through its command line."""

    def __init__(self, root: Path, name: str, env: dict[str, str]) -> None:
        self.dir = root / name
        self.dir.mkdir(parents=True)
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT / "src"), "ABUSEDESK_DATA_DIR": str(self.dir)}
        # abusedesk as installed keeps its compiled modules (pip byte-compiles, a checkout writes __pycache__ on
        # first run); a session's PYTHONDONTWRITEBYTECODE would recompile ~1,000 modules (~1 s) every command
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.db = self.dir / "abusedesk.sqlite3"

    def cmd(self, *args: str) -> list[str]:
        return [str(BIN / "abusedesk"), *args]

    def run(self, *args: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([*(prefix or []), *self.cmd(*args)], env=self.env, capture_output=True, check=False)
        if proc.returncode not in (0, 1):  # intake file exits 1 when it refused an input; that is reported
            sys.stderr.write(proc.stderr.decode(errors="replace")[-3000:])
            raise RuntimeError(f"abusedesk {' '.join(args)} exited {proc.returncode}")
        return proc

    #: what reading the database raises while its tables are not there yet
    not_ready: tuple[type[Exception], ...] = (sqlite3.OperationalError,)

    def connect(self) -> Any:
        """A read-only DB-API connection to the desk's database (None while there is none)."""
        if not self.db.exists():
            return None
        return sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)

    #: sign the audit checkpoints as a production desk does (``--unsigned-audit`` leaves the key out, to compare)
    sign_audit = True

    def import_inventory(self, inventory: Path) -> None:
        if self.sign_audit:
            self.run("audit", "keygen")
        self.run("inventory", "import", "--quiet", str(inventory))

    def state(self) -> dict[str, int]:
        """Counts that say how far the pipeline is (read-only, while the desk may be writing)."""
        con = self.connect()
        if con is None:
            return {}
        try:
            out: dict[str, int] = {}
            for status, n in con.execute("SELECT status, count(*) FROM raw_inputs GROUP BY status"):
                out[f"raw_{status}"] = n
            for disposition, n in con.execute("SELECT disposition, count(*) FROM events GROUP BY disposition"):
                out[f"events_{disposition}"] = n
            out["findings"], out["findings_with_case"] = con.execute(
                "SELECT count(*), count(case_id) FROM findings"
            ).fetchone()
            out["cases"] = con.execute("SELECT count(*) FROM cases").fetchone()[0]
            out["raw"] = sum(v for k, v in out.items() if k.startswith("raw_"))
            return out
        except self.not_ready:  # tables not there yet (the desk is still migrating)
            return {}
        finally:
            con.close()

    def ends(self) -> dict[str, int]:
        """Every raw input at its end, by kind of end; ``unfinished`` counts those that are not (and why)."""
        con = self.connect()
        if con is None:
            raise RuntimeError(f"the desk's database {self.db} does not exist")
        try:
            in_case: set[str] = set()
            for (data,) in con.execute("SELECT data FROM findings WHERE case_id IS NOT NULL"):
                doc = data if isinstance(data, dict) else json.loads(data)  # a JSON column comes back parsed
                in_case.update(doc.get("event_ids") or [])
            by_raw: dict[str, list[tuple[str, str]]] = {}
            for raw_id, event_id, disposition in con.execute("SELECT raw_id, id, disposition FROM events"):
                by_raw.setdefault(raw_id, []).append((event_id, disposition))
            ends = dict.fromkeys(
                ("case", "not-ours", "triage", "quarantine", "duplicate", "no-finding", "unfinished"), 0
            )
            for raw_id, status in con.execute("SELECT id, status FROM raw_inputs"):
                if status in ("quarantined", "duplicate"):
                    ends["quarantine" if status == "quarantined" else "duplicate"] += 1
                    continue
                events = by_raw.get(raw_id, [])
                if status != "parsed" or not events or any(d == "new" for _, d in events):
                    ends["unfinished"] += 1
                elif any(eid in in_case for eid, _ in events):
                    ends["case"] += 1
                elif any(d == "attributed" for _, d in events):
                    # ours, but the detectors made no finding of it (below the reported detector's confidence
                    # threshold): it rests as "attributed", which is none of the ends the issue names
                    ends["no-finding"] += 1
                else:
                    ends["triage" if any(d == "triage" for _, d in events) else "not-ours"] += 1
            return ends
        finally:
            con.close()


def settled(state: dict[str, int], raw_expected: int, findings_expected: int | None) -> bool:
    if state.get("raw", 0) < raw_expected or state.get("raw_stored", 0) or state.get("events_new", 0):
        return False
    if state.get("findings", 0) != state.get("findings_with_case", 0):
        return False
    if findings_expected is not None:
        return state.get("findings", 0) >= findings_expected
    return True


def wait_settled(
    desk: Desk, raw_expected: int, findings_expected: int | None, stall: float = 60.0, poll: float = 0.2
) -> tuple[float, dict[str, int], bool]:
    """Poll the database until the pipeline is done; (time it was, last state, done?). Gives up after a stall."""
    last, since = None, time.perf_counter()
    while True:
        state = desk.state()
        now = time.perf_counter()
        if settled(state, raw_expected, findings_expected):
            return now, state, True
        if state != last:
            last, since = state, now
        elif now - since > stall:
            return now, state, False
        time.sleep(poll)


def run_intake_file(
    desk: Desk, path: Path, expected: int, prefix: list[str] | None = None, findings_expected: int | None = None
) -> dict[str, Any]:
    """``abusedesk intake file PATH``, timed from the start until it exited and the database shows the end.

    (Today the command drains the pipeline before it exits; should it hand over to workers one day, the poll
    waits for them.)
    """
    t0 = time.perf_counter()
    proc = desk.run("intake", "file", "--json", str(path), prefix=prefix)
    t_cmd = time.perf_counter()
    t_end, state, done = wait_settled(desk, expected, findings_expected, stall=30.0)
    rows = json.loads(proc.stdout or b"[]") if proc.stdout.strip().startswith(b"[") else []
    return {
        "seconds": t_end - t0,
        "command_seconds": t_cmd - t0,
        "accepted": sum(1 for r in rows if r.get("raw_id")),
        "refused": sum(1 for r in rows if r.get("status") == "rejected"),
        "settled": done,
        "state": state,
    }


# ------------------------------------------------------------------------------------------------ SMTP door


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


class AckSink:
    """The SMTP server the desk's acknowledgements and notices go to (counts them, keeps nothing)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received = 0
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.received += 1
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> AckSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def envelope_sender(data: bytes) -> str:
    head, _, _ = _split_headers(data)
    msg = email.message_from_bytes(head + b"\n\n", policy=email_policy.compat32)
    addr = email.utils.parseaddr(str(msg.get("From", "")))[1]
    return addr if "@" in addr else "reporter@bench.example"


def send_all(port: int, mails: list[bytes], connections: int) -> tuple[float, int, list[str]]:
    """Send ``mails`` over ``connections`` SMTP sessions; (time the last reply came, acknowledged, errors)."""
    acked = [0] * connections
    errors: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=300) as smtp:
                for data in mails[i::connections]:
                    try:
                        smtp.sendmail(envelope_sender(data), ["abuse@provider.example"], data)
                        acked[i] += 1
                    except smtplib.SMTPResponseException as exc:
                        with lock:
                            errors.append(f"{exc.smtp_code} {exc.smtp_error[:200]!r}")
        except (OSError, smtplib.SMTPException) as exc:
            with lock:
                errors.append(f"connection {i}: {exc}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter(), sum(acked), errors


def run_smtp(desk: Desk, mails: list[bytes], findings_expected: int, connections: int) -> dict[str, Any]:
    api_port, smtp_port = free_port(), free_port()
    cmd = desk.cmd("serve", "--port", str(api_port), "--smtp", f"127.0.0.1:{smtp_port}", "--tick-interval", "5")
    log = (desk.dir / "serve.log").open("wb")
    proc = subprocess.Popen(cmd, env=desk.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(smtp_port)
        t0 = time.perf_counter()
        t_acked, acked, errors = send_all(smtp_port, mails, connections)
        t_end, state, done = wait_settled(desk, acked, findings_expected)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return {
        "seconds": t_end - t0,
        "acked": acked,
        "ack_seconds": t_acked - t0,
        "errors": errors[:5],
        "refused": len(errors),
        "settled": done,
        "state": state,
    }


# ------------------------------------------------------------------------------------------------ Shadowserver


def telnet_csv(rows: int, pool: AddressPool) -> bytes:
    """The corpus's scan_telnet.csv rows, repeated, each row with its own address (and a time a second apart)."""
    with TELNET.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        samples = list(reader)
    ip_col, ts_col = header.index("ip"), header.index("timestamp")
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    w.writerow(header)
    for i in range(rows):
        row: list[Any] = list(samples[i % len(samples)])
        row[ip_col] = pool.next(4)
        row[ts_col] = f"2026-02-28 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        w.writerow([int(v) if isinstance(v, str) and v.isdigit() else v for v in row])
    return out.getvalue().encode()


def run_shadowserver(desk: Desk, inventory: Path, data: bytes, rows: int) -> dict[str, Any]:
    desk.import_inventory(inventory)
    folder = desk.dir.parent / f"{desk.dir.name}-in"
    folder.mkdir()
    path = folder / "2026-02-28-scan_telnet-bench-asn.csv"
    path.write_bytes(data)
    result = run_intake_file(desk, path, 1, findings_expected=rows)  # every telnet row is a finding
    result["rows_per_s"] = rows / result["seconds"] if result["settled"] else 0.0
    return result


# ------------------------------------------------------------------------------------------------ IntelMQ


def run_intelmq(scratch: Path, data: bytes, rows: int, redis_db: int, tag: str) -> dict[str, Any]:
    """File collector -> Shadowserver parser -> file output, each bot its own process, over Redis."""
    import redis
    import yaml

    root = scratch / f"intelmq-{tag}"
    for sub in ("etc", "var/log", "var/run", "var/lib/bots", "in"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    import intelmq

    shutil.copy(Path(intelmq.__file__).parent / "etc" / "harmonization.conf", root / "etc" / "harmonization.conf")
    prefix = f"bench{os.getpid()}{tag}"
    out_file = root / "events.jsonl"
    q = {name: f"{prefix}-{name}-queue" for name in ("parser", "output")}
    runtime = {
        "global": {
            "source_pipeline_host": "127.0.0.1",
            "destination_pipeline_host": "127.0.0.1",
            "source_pipeline_db": redis_db,
            "destination_pipeline_db": redis_db,
            "statistics_host": "127.0.0.1",
            "statistics_database": redis_db,
            "logging_level": "WARNING",
            "logging_path": str(root / "var" / "log"),
            "process_manager": "intelmq",
        },
        f"{prefix}-collector": {
            "bot_id": f"{prefix}-collector",
            "module": "intelmq.bots.collectors.file.collector_file",
            "name": "File",
            "group": "Collector",
            "enabled": True,
            "run_mode": "continuous",
            "parameters": {
                "path": str(root / "in"),
                "postfix": ".csv",
                "delete_file": True,
                "name": "Shadowserver telnet",
                "destination_queues": {"_default": [q["parser"]]},
            },
        },
        f"{prefix}-parser": {
            "bot_id": f"{prefix}-parser",
            "module": "intelmq.bots.parsers.shadowserver.parser",
            "name": "Shadowserver",
            "group": "Parser",
            "enabled": True,
            "run_mode": "continuous",
            "parameters": {"test_mode": True, "destination_queues": {"_default": [q["output"]]}},
        },
        f"{prefix}-output": {
            "bot_id": f"{prefix}-output",
            "module": "intelmq.bots.outputs.file.output",
            "name": "File",
            "group": "Output",
            "enabled": True,
            "run_mode": "continuous",
            "parameters": {"file": str(out_file), "hierarchical_output": False, "single_key": None},
        },
    }
    (root / "etc" / "runtime.yaml").write_text(yaml.safe_dump(runtime))
    (root / "in" / "2026-02-28-test_telnet-bench-asn.csv").write_bytes(data)
    bindir = _intelmq_launchers(root, [str(b["module"]) for k, b in runtime.items() if k != "global"])
    env = {**os.environ, "INTELMQ_ROOT_DIR": str(root), "PATH": f"{bindir}:{BIN}:{os.environ.get('PATH', '')}"}
    ctl = [str(bindir / "intelmqctl"), "--quiet"]
    r = redis.Redis(host="127.0.0.1", port=6379, db=redis_db)
    t0 = time.perf_counter()
    started = subprocess.run([*ctl, "start"], env=env, capture_output=True, check=False)
    seen, offset, last_change = 0, 0, time.perf_counter()
    try:
        while seen < rows:
            if out_file.exists():
                with out_file.open("rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                cut = chunk.rfind(b"\n") + 1
                if cut:
                    seen += chunk[:cut].count(b"\n")
                    offset += cut
                    last_change = time.perf_counter()
            if time.perf_counter() - last_change > 120:
                break
            time.sleep(0.05)
        t_end = time.perf_counter()
    finally:
        subprocess.run([*ctl, "stop"], env=env, capture_output=True, check=False)
        for pidfile in (root / "var" / "run").glob("*.pid"):  # a bot that ignored the stop: only the ones we started
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        keys = list(r.scan_iter(match=f"{prefix}*")) + list(r.scan_iter(match=f"*{prefix}*"))
        if keys:
            r.delete(*set(keys))
    return {
        "seconds": t_end - t0,
        "events": seen,
        "rows_per_s": seen / (t_end - t0) if seen == rows else 0.0,
        "complete": seen == rows,
        "start_output": started.stdout.decode(errors="replace")[-500:] + started.stderr.decode(errors="replace")[-500:],
    }


def _intelmq_launchers(root: Path, modules: list[str]) -> Path:
    """intelmqctl and the bots' console scripts, as installed, but willing to run as root when needed.

    IntelMQ refuses to run as root unless it can switch to an ``intelmq`` user. Where the benchmark runs as root
    and no such user exists (and the interpreter is not readable by another user), the launchers make its
    privilege check pass; nothing else differs from the installed scripts (``from <module> import BOT;
    BOT.run()``), and intelmqctl still starts each bot as its own process.
    """
    bindir = root / "bin"
    bindir.mkdir(exist_ok=True)
    patch = "import intelmq.lib.utils as _u\n_u.drop_privileges = lambda: True\n" if os.geteuid() == 0 else ""
    scripts = {"intelmqctl": "from intelmq.bin.intelmqctl import main as run"}
    scripts |= {m: f"from {m} import BOT\nrun = BOT.run" for m in modules}
    for name, body in scripts.items():
        path = bindir / name
        path.write_text(f"#!{sys.executable}\nimport sys\n{patch}{body}\nsys.exit(run())\n")
        path.chmod(0o755)
    return bindir


def redis_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 6379), timeout=2):
        return True
    return False


# ------------------------------------------------------------------------------------------------ profile

STAGES = (
    ("door: MailDoor.receive (headers, accept, reporter)", "intake/channels.py", "receive"),
    ("  IntakeService.accept (raw store, row, audit)", "intake/service.py", "accept"),
    ("    raw store put (write, fsync, rename)", "intake/rawstore.py", "put"),
    ("  reporter count (ReporterDesk.note_report)", "intake/reporters.py", "note_report"),
    ("parse: IntakeService.parse", "intake/service.py", "parse"),
    ("  sniffing", "intake/service.py", "_sniff"),
    ("  recording events + audit", "intake/service.py", "_record"),
    ("attribute: AttributeStage.handle", "abusedesk/pipeline.py", "handle"),
    ("detect: DetectStage.handle", "abusedesk/pipeline.py", "handle"),
    ("cases: CaseEngine.handle", "cases/engine.py", "handle"),
    ("reporters: handle_parsed", "intake/reporters.py", "handle_parsed"),
    ("reporters: handle_attributed", "intake/reporters.py", "handle_attributed"),
    ("audit.append (all callers)", "evidence/audit.py", "append"),
    ("audit checkpoint after each commit (check, sign, append + fsync)", "evidence/audit.py", "record"),
    ("os.fsync (all callers)", "~", "<built-in method posix.fsync>"),
    ("SQLAlchemy Session.commit (all callers)", "orm/session.py", "commit"),
    ("sqlite3 execute (all callers)", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("Event.from_dict (bus hand-offs)", "domain/records.py", "from_dict"),
)


def profile_report(path: Path, total: float) -> list[dict[str, Any]]:
    import pstats

    stats = pstats.Stats(str(path))
    table: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    out = []
    # handle() exists in two stages of pipeline.py: tell them apart by line order (attribute first)
    seen_handles: dict[str, list[tuple[int, float]]] = {}
    for (fname, line, func), (_cc, _nc, _tt, ct, _callers) in table.items():
        for label, suffix, name in STAGES:
            if func == name and (fname.endswith(suffix) or suffix == "~"):
                seen_handles.setdefault(label, []).append((line, ct))
    for label, suffix, _name in STAGES:
        hits = sorted(seen_handles.get(label, []))
        if suffix == "abusedesk/pipeline.py" and len(hits) >= 2:
            hits = [hits[0]] if label.startswith("attribute") else [hits[1]]
        if hits:
            ct = sum(c for _, c in hits)
            out.append({"stage": label, "seconds": round(ct, 2), "share": round(ct / total, 3)})
    return out


# ------------------------------------------------------------------------------------------------ main


def rate(n: int, r: dict[str, Any]) -> float:
    return round(n / r["seconds"], 1) if r.get("settled", r.get("complete")) and r["seconds"] > 0 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="small N (under 2 minutes)")
    ap.add_argument("--mails", type=int, default=None, help="complaint mails per run (default 5,000; quick 200)")
    ap.add_argument("--preload", type=int, default=None, help="mails in the database before (default 2,000; quick 100)")
    ap.add_argument("--rows", default=None, help="Shadowserver report sizes (default 20000,200000; quick 2000)")
    ap.add_argument("--connections", type=int, default=4, help="SMTP client connections")
    ap.add_argument("--redis-db", type=int, default=13, help="Redis database for IntelMQ (only this run's keys go)")
    ap.add_argument(
        "--skip", default="", help="comma list of workloads to leave out: smtp,preload,shadowserver,intelmq"
    )
    ap.add_argument("--profile", type=Path, default=None, help="also profile the mail case; write pstats here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (data dirs, logs)")
    ap.add_argument("--unsigned-audit", action="store_true", help="no audit signing key (checkpoints unsigned)")
    args = ap.parse_args()
    Desk.sign_audit = not args.unsigned_audit
    mails_n = args.mails or (200 if args.quick else 5_000)
    preload_n = args.preload if args.preload is not None else (100 if args.quick else 2_000)
    sizes = [int(x) for x in (args.rows or ("2000" if args.quick else "20000,200000")).split(",")]
    skip = set(filter(None, args.skip.split(",")))
    if "intelmq" not in skip and not redis_up():
        print("Redis is not reachable on 127.0.0.1:6379: IntelMQ left out", file=sys.stderr)
        skip.add("intelmq")

    run_in_scratch(
        "abusedesk-pipeline-bench-",
        lambda scratch, env: _run(args, scratch, env, mails_n, preload_n, sizes, skip),
        keep=args.keep,
    )


def run_in_scratch(
    prefix: str,
    run: Callable[[Path, dict[str, str]], dict[str, Any]],
    *,
    keep: bool,
    cleanup: Callable[[], None] | None = None,
) -> None:
    """Run a benchmark in a scratch directory with an acknowledgement sink on loopback, then print its JSON line.

    ``run(scratch, env)`` gets the environment that points abusedesk's mail at the sink; ``cleanup`` runs after
    it whatever happened (servers, databases a failed run left behind)."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    started = datetime.now(UTC)
    try:
        with AckSink() as sink:
            env = {"ABUSEDESK_SMTP__HOST": "127.0.0.1", "ABUSEDESK_SMTP__PORT": str(sink.port)}
            result = run(scratch, env)
            result["acks_and_notices_received"] = sink.received
    finally:
        if cleanup is not None:
            cleanup()
        if keep:
            print(f"scratch kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    result["started"] = started.isoformat(timespec="seconds")
    print(json.dumps(result))


def _run(
    args: argparse.Namespace,
    scratch: Path,
    env: dict[str, str],
    mails_n: int,
    preload_n: int,
    sizes: list[int],
    skip: set[str],
) -> dict[str, Any]:
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; scratch {scratch}")
    inventory = inventory_json(scratch / "inventory.json")
    templates, left_out = build_mix()
    quarantined = sum(1 for t in templates if t.events == 0)
    print(f"mail mix: {len(templates)} corpus mails ({quarantined} end in quarantine); left out {len(left_out)}")
    for why in left_out:
        print(f"  left out {why}")
    mix = MailSet(templates, AddressPool(), "r")
    mails = list(mix.take(mails_n))
    mdir = write_maildir(scratch / "mail-a", mails)
    workloads: dict[str, Any] = {}

    # (a) intake file, maildir
    desk = Desk(scratch, "desk-file", env)
    desk.import_inventory(inventory)
    a = run_intake_file(desk, mdir, mails_n)
    a["ends"] = desk.ends()
    a["mails"] = mails_n
    a["mail_per_s"] = rate(mails_n, a)
    workloads["mail_file"] = a
    findings_expected = a["state"].get("findings", 0)
    print(
        f"mail, intake file:  {mails_n:,} mails in {a['seconds']:.1f} s = {a['mail_per_s']:,.1f} mails/s "
        f"(command {a['command_seconds']:.1f} s); ends {a['ends']}; {a['state'].get('cases', 0):,} cases"
    )

    # (b) SMTP door, serve --smtp
    if "smtp" not in skip:
        desk_b = Desk(scratch, "desk-smtp", env)
        desk_b.import_inventory(inventory)
        b = run_smtp(desk_b, mails, findings_expected, args.connections)
        b["ends"] = desk_b.ends()
        b["mails"] = mails_n
        b["mail_per_s"] = round(b["acked"] / b["seconds"], 1) if b["settled"] else 0.0
        b["ack_per_s"] = round(b["acked"] / b["ack_seconds"], 1)
        workloads["mail_smtp"] = b
        print(
            f"mail, SMTP door:    {b['acked']:,} acknowledged in {b['ack_seconds']:.1f} s ({b['ack_per_s']:,.1f}/s), "
            f"at their end after {b['seconds']:.1f} s = {b['mail_per_s']:,.1f} mails/s; ends {b['ends']}"
            + (f"; refused {b['refused']}: {b['errors']}" if b["refused"] else "")
        )

    # (a) again, into a database that already holds preload_n mails
    if "preload" not in skip and preload_n > 0:
        desk_p = Desk(scratch, "desk-preload", env)
        desk_p.import_inventory(inventory)
        pre = run_intake_file(desk_p, write_maildir(scratch / "mail-pre", list(mix.take(preload_n))), preload_n)
        more = write_maildir(scratch / "mail-post", list(mix.take(mails_n)))
        p = run_intake_file(desk_p, more, preload_n + mails_n)
        p["ends"] = desk_p.ends()
        p["preload"] = preload_n
        p["preload_seconds"] = round(pre["seconds"], 1)
        p["mail_per_s"] = rate(mails_n, p)
        workloads["mail_preloaded"] = p
        print(
            f"mail, preloaded:    {preload_n:,} mails first ({pre['seconds']:.1f} s), then {mails_n:,} in "
            f"{p['seconds']:.1f} s = {p['mail_per_s']:,.1f} mails/s; ends {p['ends']}"
        )

    # Shadowserver rows, ours and IntelMQ on the same bytes
    ss: dict[int, dict[str, Any]] = {}
    peer: dict[int, dict[str, Any]] = {}
    ss_env = {**env, "ABUSEDESK_INTAKE__MAX_INPUT_BYTES": str(256 * 1024 * 1024)}
    for rows in sizes:
        data = telnet_csv(rows, AddressPool(v4=FEED_V4))
        if "shadowserver" not in skip:
            r = run_shadowserver(Desk(scratch, f"desk-ss-{rows}", ss_env), inventory, data, rows)
            ss[rows] = r
            print(
                f"shadowserver {rows:>7,} rows: ours {r['rows_per_s']:>9,.1f} rows/s ({r['seconds']:.1f} s, "
                f"{r['state'].get('findings', 0):,} findings, {r['state'].get('cases', 0):,} cases)"
            )
        if "intelmq" not in skip:
            q = run_intelmq(scratch, data, rows, args.redis_db, str(rows))
            peer[rows] = q
            print(
                f"shadowserver {rows:>7,} rows: IntelMQ {q['rows_per_s']:>9,.1f} rows/s ({q['seconds']:.1f} s, "
                f"{q['events']:,} events in the output file)"
            )
    workloads["shadowserver"] = {str(k): v for k, v in ss.items()}
    workloads["intelmq"] = {str(k): v for k, v in peer.items()}

    if args.profile is not None:
        desk_x = Desk(scratch, "desk-profile", env)
        desk_x.import_inventory(inventory)
        prof = run_intake_file(
            desk_x, mdir, mails_n, prefix=[sys.executable, "-m", "cProfile", "-o", str(args.profile.resolve())]
        )
        stages = profile_report(args.profile, prof["command_seconds"])
        workloads["profile"] = {"seconds": round(prof["command_seconds"], 1), "stages": stages}
        print(f"profile (cProfile, mail case, {mails_n:,} mails, {prof['command_seconds']:.1f} s under the profiler):")
        for s in stages:
            print(f"  {s['stage']:55s} {s['seconds']:>8.2f} s {s['share']:>6.1%}")

    head = max(sizes) if ss or peer else None
    ours_rows = ss[head]["rows_per_s"] if head in ss else None
    peer_rows = peer[head]["rows_per_s"] if head in peer else None
    ratio = round(ours_rows / peer_rows, 2) if ours_rows and peer_rows else None
    figures = {
        "mail_per_s": workloads["mail_file"]["mail_per_s"],
        "smtp_mail_per_s": workloads.get("mail_smtp", {}).get("mail_per_s"),
        "preloaded_mail_per_s": workloads.get("mail_preloaded", {}).get("mail_per_s"),
        "shadowserver_rows_per_s": round(ours_rows, 1) if ours_rows is not None else None,
        "intelmq_rows_per_s": round(peer_rows, 1) if peer_rows is not None else None,
        "ratio": ratio,
    }
    print()
    print(f"{'figure':28s} {'measured':>12s}   goal")
    for key, goal in (
        ("mail_per_s", f">= {GOALS['mail_per_s']:,} mails/s"),
        ("smtp_mail_per_s", f">= {GOALS['mail_per_s']:,} mails/s"),
        ("preloaded_mail_per_s", f">= {GOALS['mail_per_s']:,} mails/s"),
        ("shadowserver_rows_per_s", f">= {GOALS['shadowserver_rows_per_s']:,} rows/s ({head or 0:,} rows)"),
        ("intelmq_rows_per_s", "(peer)"),
        ("ratio", f">= {GOALS['ratio']}x IntelMQ"),
    ):
        value = figures[key]
        print(f"{key:28s} {'-' if value is None else f'{value:,.1f}':>12s}   {goal}")
    unfinished = sum(w.get("ends", {}).get("unfinished", 0) for w in workloads.values() if isinstance(w, dict))
    return {
        "benchmark": "pipeline",
        **figures,
        "mails": mails_n,
        "preload": preload_n,
        "rows": head,
        "unfinished": unfinished,
        "goals": GOALS,
        "mix": {"templates": len(templates), "quarantined_templates": quarantined, "left_out": left_out},
        "workloads": workloads,
        "load_average": [round(x, 2) for x in load],
        "peer_name": "IntelMQ 3.5.0: file collector -> Shadowserver parser -> file output, over Redis",
        "machine": f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {platform.platform()}",
    }


if __name__ == "__main__":
    main()
