"""GET /api/v1/cases with filters, a page of 50, at 50 concurrent clients over 1M cases in PostgreSQL (issue 10).

The desk: a scratch PostgreSQL database (``abusedesk_bench_api_<pid>`` on 127.0.0.1:5432) migrated by the
desk itself, then filled with ``--cases`` cases (default 1,000,000) by COPY: 2,000 customers, the lifecycle's
states and the policy's clauses spread over them, ``updated_at`` over 90 days. An analyst and a customer's user
get API tokens the way an operator makes them (``IdentityService``).

The server: ``create_app`` served by ``abusedesk.api.serving.serve_api`` as ``abusedesk serve`` runs it, once per
``--api-workers`` count (default 1 and 2 processes), on a loopback port, with two extra routes mounted by this
script only (in every worker): ``/bench/plain`` (a plain FastAPI route returning a fixed page of
50 case-shaped dicts: no token, no database: the floor of this server) and ``/bench/auth`` (the Bearer check and
nothing else: its difference to the floor is what authentication costs per request).

The load: wrk (Debian's ``wrk``; it sends the ``Authorization`` header with ``-H``) with 50 connections and 2
threads on loopback for ``--duration`` seconds per workload; a Lua ``done`` hook prints p50/p95/p99 from wrk's
latency histogram (wrk's own ``--latency`` has no p95). Workloads:

- ``cases_filtered``: an analyst, ``state=awaiting-customer&clause=1.8&limit=50``
- ``cases_customer``: a customer's token (its own cases only; the service adds the filter), ``limit=50``
- ``cases_cursor``: an analyst, the second page of ``state=escalated`` (a cursor from the first page)
- ``auth_only``: ``/bench/auth``; ``floor``: ``/bench/plain``

Goal: p95 < 50 ms for the case list; authentication < 1 ms a request. The machine has 2 cores, shared by the
server, wrk and PostgreSQL (and, in the session, other people's work): the figures say what this box did.

Each workload also gives the server's CPU time per request (its processes' user + system time over the run,
from /proc): a figure that the machine's other load changes far less than latency.

The last line of output is one JSON object with the figures, the floor's, and their ratio (headline: the most
processes measured; ``by_workers`` has every count).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from abusedesk.api.auth import Caller

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
WRK = shutil.which("wrk") or "/usr/bin/wrk"
GOAL_P95_MS = 50.0
GOAL_AUTH_MS = 1.0
STATES = (
    ("awaiting-customer", 30), ("resolved", 25), ("closed", 20), ("notified", 8), ("escalated", 5),
    ("dismissed", 5), ("restricted", 3), ("triaged", 2), ("new", 1), ("reported", 1),
)  # fmt: skip
CLAUSES = ("1.8", "1.7", "1.11", "1.5", "1.2", "1.6", "1.1", "1.14")
KINDS = {"1.8": "scan", "1.7": "brute-force", "1.11": "spam", "1.5": "phishing", "1.2": "copyright",
         "1.6": "malware", "1.1": "illegal-content", "1.14": "crawling"}  # fmt: skip
CUSTOMERS = 2_000

LUA = r"""
done = function(summary, latency, requests)
  local codes = 0
  io.write(string.format('WRKJSON {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p95_ms": %.3f, ' ..
    '"p99_ms": %.3f, "errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status))
end
"""

SERVER = r"""
import sys
sys.path.insert(0, {bench_dir!r})
from pathlib import Path
from abusedesk.api.serving import serve_api
from abusedesk.config import Settings
from abusedesk.runtime import Runtime
rt = Runtime.open(Settings(data_dir=Path({data_dir!r}), database_url={url!r}, log_level="WARNING"), upgrade=False)
serve_api(rt, host="127.0.0.1", port={port}, workers={workers}, app="api:bench_app", log_level="warning")
"""


def bench_app(rt: Any) -> Any:
    """The desk's app plus the floor and auth-only routes (this script's only), in every API worker."""
    from abusedesk.api.app import create_app

    app = create_app(rt)
    page = {"ok": True, "items": [_shape(i) for i in range(50)], "next_cursor": None}

    @app.get("/bench/plain")
    def plain() -> dict[str, Any]:
        return page

    @app.get("/bench/auth")
    def auth(by: Caller) -> dict[str, Any]:
        return {"ok": True, "id": by.id}

    return app


def _shape(i: int) -> dict[str, Any]:
    return {
        "id": f"cs_{i:032x}", "ref": f"AD-{i:010X}", "state": "awaiting-customer", "customer_id": "cust-00001",
        "project_id": "proj-00001", "service_id": "svc-00001", "clause": "1.8", "kind": "scan",
        "group_key": f"ip:192.0.2.{i % 250}", "severity": "medium", "policy_version": "aup@bench",
        "opened_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-01T10:00:00Z", "closed_at": None,
        "notified_at": None, "deadline": None, "last_finding_at": None, "finding_count": 3, "reopen_count": 0,
        "version": 2, "allowed": ["notified", "resolved", "escalated", "dismissed", "appealed"],
    }  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_cases(url: str, n: int) -> float:
    """COPY ``n`` cases into the ``cases`` table; returns the seconds it took (rows built and sent in chunks)."""
    rng = random.Random(10)
    weights = [w for _, w in STATES]
    names = [s for s, _ in STATES]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    cols = (
        "id, ref, case_key, open_key, base_severity, notified_at, customer_id, project_id, service_id, clause, kind, "
        "group_key, state, severity, policy_version, opened_at, updated_at, closed_at, deadline, last_finding_at, "
        "finding_count, reopen_count, version"
    )
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY cases ({cols}) FROM STDIN") as copy:
            for i in range(n):
                cust = rng.randrange(CUSTOMERS)
                clause = CLAUSES[rng.randrange(len(CLAUSES))]
                state = rng.choices(names, weights)[0]
                opened = t0 + timedelta(seconds=rng.randrange(90 * 86400))
                updated = opened + timedelta(seconds=rng.randrange(86400))
                ended = state in ("resolved", "closed", "dismissed")
                key = f"ck_{i:032x}"
                copy.write_row(
                    (
                        f"cs_{i:032x}", f"AD-{i:010X}", key, None if ended else key, "medium", None,
                        f"cust-{cust:05d}", f"proj-{cust:05d}", f"svc-{cust:05d}-{i % 3}", clause, KINDS[clause],
                        f"ip:10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", state, "medium", "aup@bench",
                        opened, updated, updated if ended else None, None, updated, 1 + i % 7, 0, 1,
                    )
                )  # fmt: skip
        conn.commit()
        cur.execute("ANALYZE cases")
        conn.commit()
    return time.perf_counter() - started


def loaded_cases(url: str) -> int | None:
    """How many cases a kept database holds (None: no such database, or not one of this benchmark's)."""
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT to_regclass('bench_admin') IS NOT NULL, count(*) FROM cases").fetchone()
    except psycopg.Error:
        return None
    return int(row[1]) if row and row[0] else None


def admin_token(url: str, ident: Any, reuse: bool) -> str:
    """The bench admin's token: made by bootstrap in a new database, kept in it for a later run (a scratch
    database of this benchmark only)."""
    with psycopg.connect(url) as conn:
        if reuse:
            row = conn.execute("SELECT token FROM bench_admin").fetchone()
            assert row is not None
            return str(row[0])
        token = str(ident.bootstrap("bench-admin")[1].token)
        conn.execute("CREATE TABLE bench_admin (token text NOT NULL)")
        conn.execute("INSERT INTO bench_admin VALUES (%s)", (token,))
        return token


def wrk(base: str, path: str, token: str | None, seconds: int, connections: int, lua: Path) -> dict[str, Any]:
    cmd = [WRK, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(lua)]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run([*cmd, base + path], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    data: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    data["rps"] = round(data["requests"] / data["seconds"], 1) if data["seconds"] else 0.0
    return data


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and its live children: the server's own work, whatever else runs on
    the machine (a figure the load of other work changes far less than latency)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid, *(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()  # SIGTERM: serve_api stops its workers gracefully
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def wait_up(base: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    import httpx

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}) before it answered")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not answer /healthz within 60 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--cases", type=int, default=1_000_000, help="cases to load (default 1,000,000)")
    ap.add_argument("--duration", type=int, default=20, help="seconds of load per workload (default 20)")
    ap.add_argument("--connections", type=int, default=50, help="concurrent clients (default 50)")
    ap.add_argument(
        "--api-workers",
        default="1,2",
        help="API processes (serve --api-workers), one server and run of every workload each (default 1,2)",
    )
    ap.add_argument(
        "--keep-db",
        metavar="NAME",
        help="use (and keep) the database NAME: loaded on the first run, reused while it holds --cases cases",
    )
    args = ap.parse_args()
    if not Path(WRK).exists():
        raise SystemExit("wrk is not installed (Debian package wrk)")
    dbname = args.keep_db or f"abusedesk_bench_api_{os.getpid()}"
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{dbname}"
    kept = Path(tempfile.gettempdir()) / f"abusedesk-api-bench-{dbname}"  # with --keep-db: the token key's home
    reuse = args.keep_db is not None and (kept / "auth.key").exists() and loaded_cases(url) == args.cases
    if not reuse:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{dbname}"')
    sa_url = url.replace("://", "+psycopg://", 1)
    if args.keep_db is not None:  # the data directory holds the token key: kept with the database
        scratch = kept
        if not reuse:
            shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(exist_ok=True)
    else:
        scratch = Path(tempfile.mkdtemp(prefix="abusedesk-api-bench-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        from abusedesk.config import Settings
        from abusedesk.identity.service import IdentityService
        from abusedesk.runtime import Runtime
        from abusedesk.store.tables.inventory import CustomerRow

        rt = Runtime.open(Settings(data_dir=scratch, database_url=sa_url, log_level="WARNING"))
        load_s = 0.0 if reuse else load_cases(url, args.cases)
        ident = IdentityService(rt)
        run = f"{os.getpid()}-{int(time.time())}"  # user names of this run (a kept database has earlier runs')
        admin = ident.authenticate(admin_token(url, ident, reuse))
        if not reuse:
            with rt.sessions() as s, s.begin():
                s.add(CustomerRow(id="cust-00007", name="Customer 7", contact_email="abuse@c7.example"))
        ident.add_user(admin, f"bench-analyst-{run}", "analyst")
        ident.add_user(admin, f"bench-customer-{run}", "customer", "cust-00007")
        analyst = ident.create_token(admin, f"bench-analyst-{run}").token
        customer = ident.create_token(admin, f"bench-customer-{run}").token
        ident.authenticate(analyst)
        n_auth = 2_000
        t_auth = time.perf_counter()
        for _ in range(n_auth):  # the token check alone, in process: one HMAC and one indexed query
            ident.authenticate(analyst)
        auth_in_process_ms = (time.perf_counter() - t_auth) * 1000 / n_auth
        rt.close()

        import httpx

        lua = scratch / "report.lua"
        lua.write_text(LUA)
        by_workers: dict[int, dict[str, Any]] = {}
        for workers in [int(w) for w in args.api_workers.split(",")]:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            code = SERVER.format(bench_dir=str(Path(__file__).parent), url=sa_url, data_dir=str(scratch), port=port,
                                 workers=workers)  # fmt: skip
            server = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
            try:
                wait_up(base, server, time.monotonic() + 60)
                first = httpx.get(
                    base + "/api/v1/cases?state=escalated&limit=50",
                    headers={"Authorization": f"Bearer {analyst}"},
                    timeout=30,
                ).json()
                workloads = {
                    "cases_filtered": ("/api/v1/cases?state=awaiting-customer&clause=1.8&limit=50", analyst),
                    "cases_customer": ("/api/v1/cases?limit=50", customer),
                    "cases_cursor": (f"/api/v1/cases?state=escalated&limit=50&cursor={first['next_cursor']}", analyst),
                    "auth_only": ("/bench/auth", analyst),
                    "floor": ("/bench/plain", None),
                }
                # one short warm-up (connections, plans, caches, every worker), then the measured runs
                wrk(base, workloads["cases_filtered"][0], analyst, 2, args.connections, lua)
                load_before = os.getloadavg()[0]
                runs: dict[str, Any] = {}
                for n, (path, tok) in workloads.items():
                    cpu = cpu_seconds(server.pid)
                    runs[n] = wrk(base, path, tok, args.duration, args.connections, lua)
                    used = cpu_seconds(server.pid) - cpu
                    runs[n]["server_cpu_ms_per_request"] = round(used * 1000 / max(1, runs[n]["requests"]), 3)
                by_workers[workers] = {"load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)], **runs}
            finally:
                stop(server)
                server = None
    finally:
        if server is not None:
            stop(server)
        if args.keep_db is None:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            shutil.rmtree(scratch, ignore_errors=True)

    for workers, runs in by_workers.items():
        print(f"{workers} API process(es), load average {runs['load_average'][0]} -> {runs['load_average'][1]}:")
        for name, r in runs.items():
            if name != "load_average":
                print(f"  {name:<15} {r['rps']:>8} req/s  p50 {r['p50_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms  "
                      f"p99 {r['p99_ms']:.1f} ms  server CPU {r['server_cpu_ms_per_request']} ms/request  "
                      f"errors {r['errors']} non-2xx {r['non2xx']}")  # fmt: skip
    headline = max(by_workers)  # the most processes measured: how serve is meant to run on this box
    results = by_workers[headline]
    ours = results["cases_filtered"]
    floor = results["floor"]
    auth_ms = (
        1000.0 / results["auth_only"]["rps"] - 1000.0 / floor["rps"]
        if floor["rps"] and results["auth_only"]["rps"]
        else None
    )
    print(
        json.dumps(
            {
                "benchmark": "api",
                "cases": args.cases,
                "load_seconds": round(load_s, 1),
                "connections": args.connections,
                "duration_s": args.duration,
                "load_tool": "wrk 4 (Debian), Lua done hook for percentiles",
                "p50_ms": ours["p50_ms"],
                "p95_ms": ours["p95_ms"],
                "p99_ms": ours["p99_ms"],
                "peer_name": "a plain FastAPI route on the same server processes (no token, no database)",
                "peer_p95_ms": floor["p95_ms"],
                "ratio_p95": round(ours["p95_ms"] / floor["p95_ms"], 2) if floor["p95_ms"] else None,
                "auth_ms_per_request": round(auth_ms, 3) if auth_ms is not None else None,
                "auth_ms_in_process": round(auth_in_process_ms, 3),
                "goal_p95_ms": GOAL_P95_MS,
                "goal_auth_ms": GOAL_AUTH_MS,
                "api_workers": headline,
                "ratio_p95_by_workers": {
                    w: round(r["cases_filtered"]["p95_ms"] / r["floor"]["p95_ms"], 2) if r["floor"]["p95_ms"] else None
                    for w, r in by_workers.items()
                },
                "by_workers": by_workers,
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "machine": f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
                f"{os.cpu_count()} CPUs (shared with other work), {platform.platform()}",
            }
        )
    )


if __name__ == "__main__":
    main()
