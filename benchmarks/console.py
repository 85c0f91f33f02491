"""The analyst console's case queue page and case page at 50 concurrent signed-in users, over many cases in
PostgreSQL (issue 11, Performance), beside a static page served by the same server as the floor.

The desk: a scratch PostgreSQL database (``abusedesk_bench_console_<pid>``) migrated by the desk itself and filled
with ``--cases`` cases (default 1,000,000) by the COPY loader of ``benchmarks/api.py`` (2,000 customers, the
lifecycle's states and the policy's clauses spread over them, 90 days of changes); ``--case-pages`` of those cases
(default 500) get five findings each (COPY too), so a case page reads a real timeline. An analyst with a console
password signs in through ``POST /signin`` as a browser does; its session cookie goes with every request.

The server: ``create_app`` under uvicorn (one process, as ``abusedesk serve`` runs it) on a loopback port, plus one
route of this script's: ``/bench/static``, the bytes of a queue page rendered once, served as fixed HTML (no
session, no database, no template): the floor of this server for a page of that size.

The load: wrk (Debian's ``wrk``) with 50 connections and 2 threads on loopback for ``--duration`` seconds per
workload, the ``Cookie`` header set with ``-H``; a Lua script rotates the case pages through the loaded cases and
prints p50/p95/p99 from wrk's histogram. Workloads:

- ``queue``: ``/console`` (open cases, latest change first, 50 a page)
- ``queue_filtered``: ``/console?state=awaiting-customer&clause=1.8&sort=opened`` (oldest first)
- ``queue_page2``: the second page of ``queue`` (its cursor)
- ``case``: ``/console/cases/<ref>`` over the cases with findings, in turn
- ``floor``: ``/bench/static``

Before the load, the queue's queries are EXPLAINed (ANALYZE, BUFFERS) and their plans printed: each must be an
index scan, not a sort of the cases. Goal: p95 < 100 ms for the queue and the case page. The machine has 2 cores,
shared by the server, wrk and PostgreSQL (and other people's work): the figures say what this box did.

The last line of output is one JSON object with the figures, the floor's, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from api import LUA, PG_ADMIN, WRK, free_port, load_cases, wait_up

GOAL_P95_MS = 100.0
PASSWORD = "bench console password 2026"

ROTATE = r"""
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
"""

SERVER = r"""
import sys, uvicorn
sys.path.insert(0, {bench_dir!r})
from console import make_app
uvicorn.run(make_app({url!r}, {data_dir!r}, {static_page!r}), host="127.0.0.1", port={port}, log_level="warning",
            access_log=False, lifespan="off")
"""


def make_app(url: str, data_dir: str, static_page: str) -> Any:
    """The desk's app plus ``/bench/static`` (this script's only)."""
    from fastapi.responses import HTMLResponse

    from abusedesk.api.app import create_app
    from abusedesk.config import Settings
    from abusedesk.runtime import Runtime

    rt = Runtime.open(Settings(data_dir=Path(data_dir), database_url=url, log_level="WARNING"), upgrade=False)
    app = create_app(rt)
    page = Path(static_page).read_bytes()

    @app.get("/bench/static")
    def static() -> HTMLResponse:
        return HTMLResponse(page)

    return app


def load_findings(url: str, cases: int, n_pages: int) -> list[str]:
    """Five findings for each of ``n_pages`` cases spread over the table; their refs."""
    rng = random.Random(11)
    picked = sorted(rng.sample(range(cases), min(n_pages, cases)))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    cols = (
        "id, detector, kind, clauses, group_key, window_start, window_end, severity, confidence, summary, "
        "subject_ip, customer_id, project_id, service_id, case_id, created_at, data"
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY findings ({cols}) FROM STDIN") as copy:
            for i in picked:
                for k in range(5):
                    at = t0 + timedelta(hours=i % 2000, minutes=10 * k)
                    copy.write_row(
                        (
                            f"fd_{i:030x}{k:02x}", "portscan", "scan", json.dumps(["1.8"]), f"ip:10.0.0.{i % 250}",
                            at, at + timedelta(minutes=5), "medium", 0.9, f"scan of {k + 1}00 ports",
                            f"10.0.0.{i % 250}", None, None, None, f"cs_{i:032x}", at, json.dumps({"event_ids": []}),
                        )
                    )  # fmt: skip
        conn.commit()
        cur.execute("ANALYZE findings")
        conn.commit()
    return [f"AD-{i:010X}" for i in picked]


def explain(url: str) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the queue's queries as CaseService.page builds them; the plans as text."""
    from sqlalchemy import create_engine
    from sqlalchemy.dialects import postgresql

    from abusedesk.cases.service import SORTS
    from abusedesk.domain.casestate import ENDED
    from abusedesk.store.tables.cases import CaseRow

    cases = CaseRow.__table__
    ended = [s.value for s in ENDED]
    base = cases.select().limit(51)
    queries = {
        "queue": base.where(cases.c.state.not_in(ended)).order_by(cases.c.updated_at.desc(), cases.c.id.desc()),
        "queue_filtered": base.where(cases.c.state == "awaiting-customer", cases.c.clause == "1.8").order_by(
            cases.c[SORTS["opened"]].asc(), cases.c.id.asc()
        ),
    }
    engine = create_engine(url.replace("://", "+psycopg://", 1))
    plans: dict[str, str] = {}
    with engine.connect() as conn:
        for name, q in queries.items():
            sql = str(q.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql).all()
            plans[name] = "\n".join(r[0] for r in rows)
    engine.dispose()
    return plans


def wrk(base: str, path: str, cookie: str, seconds: int, connections: int, script: Path, paths: Path | None) -> Any:
    cmd = [WRK, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    env = os.environ | ({"BENCH_PATHS": str(paths)} if paths else {})
    out = subprocess.run(
        [*cmd, base + path], capture_output=True, text=True, timeout=seconds + 60, check=True, env=env
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    data: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    data["rps"] = round(data["requests"] / data["seconds"], 1) if data["seconds"] else 0.0
    return data


def sign_in(base: str, name: str) -> str:
    """Sign in through the form as a browser does; the ``Cookie`` header value of the session."""
    import re

    import httpx

    with httpx.Client(base_url=base, timeout=30) as c:
        page = c.get("/signin")
        token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
        assert token, "the sign-in page has no csrf_token field"
        r = c.post("/signin", data={"name": name, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"})
        assert r.status_code == 303, f"sign-in refused: {r.status_code} {r.text[:300]}"
        session = c.cookies.get("abusedesk_session")
        assert session, "no session cookie after sign-in"
        return f"abusedesk_session={session}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--cases", type=int, default=1_000_000, help="cases to load (default 1,000,000)")
    ap.add_argument("--case-pages", type=int, default=500, help="cases given findings and requested in turn")
    ap.add_argument("--duration", type=int, default=20, help="seconds of load per workload (default 20)")
    ap.add_argument("--connections", type=int, default=50, help="concurrent signed-in users (default 50)")
    args = ap.parse_args()
    if not Path(WRK).exists():
        raise SystemExit("wrk is not installed (Debian package wrk)")
    dbname = f"abusedesk_bench_console_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        admin.execute(f'CREATE DATABASE "{dbname}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{dbname}"
    sa_url = url.replace("://", "+psycopg://", 1)
    scratch = Path(tempfile.mkdtemp(prefix="abusedesk-console-bench-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        from abusedesk.config import Settings
        from abusedesk.identity.service import IdentityService
        from abusedesk.runtime import Runtime

        rt = Runtime.open(Settings(data_dir=scratch, database_url=sa_url, log_level="WARNING"))
        load_s = load_cases(url, args.cases)
        refs = load_findings(url, args.cases, args.case_pages)
        ident = IdentityService(rt)
        _, boot = ident.bootstrap("bench-admin")
        admin = ident.authenticate(boot.token)
        ident.add_user(admin, "bench-analyst", "analyst")
        ident.set_password(admin, "bench-analyst", PASSWORD)
        rt.close()
        plans = explain(url)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        static_page = scratch / "queue.html"
        static_page.write_text("")
        code = SERVER.format(
            bench_dir=str(Path(__file__).parent), url=sa_url, data_dir=str(scratch), port=port,
            static_page=str(static_page),
        )  # fmt: skip
        server = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
        wait_up(base, server, time.monotonic() + 60)
        import httpx

        cookie = sign_in(base, "bench-analyst")
        with httpx.Client(base_url=base, headers={"Cookie": cookie}, timeout=30) as c:
            first = c.get("/console")
            assert first.status_code == 200, first.text[:500]
            import re

            found = re.search(r'href="(/console\?[^"]*cursor=[^"]*)" rel="next"', first.text)
            assert found, "the queue page has no next page link"
            page2 = found.group(1).replace("&amp;", "&")
            # the floor serves the bytes of a real queue page (same size), without session, database or template
            static_page.write_bytes(first.content)
            assert c.get(f"/console/cases/{refs[0]}").status_code == 200
        lua = scratch / "report.lua"
        lua.write_text(LUA)
        rotate = scratch / "rotate.lua"
        rotate.write_text(ROTATE + LUA)
        paths = scratch / "paths.txt"
        paths.write_text("".join(f"/console/cases/{r}\n" for r in refs))
        workloads: dict[str, tuple[str, str, Path, Path | None]] = {
            "queue": ("/console", cookie, lua, None),
            "queue_filtered": ("/console?state=awaiting-customer&clause=1.8&sort=opened", cookie, lua, None),
            "queue_page2": (page2, cookie, lua, None),
            "case": ("/console", cookie, rotate, paths),
            "floor": ("/bench/static", "", lua, None),
        }
        wrk(base, "/console", cookie, 2, args.connections, lua, None)  # warm-up: connections, plans, caches
        results = {
            name: wrk(base, path, tok, args.duration, args.connections, script, p)
            for name, (path, tok, script, p) in workloads.items()
        }
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        shutil.rmtree(scratch, ignore_errors=True)

    for name, plan in plans.items():
        print(f"--- plan of {name}\n{plan}")
    for name, r in results.items():
        print(f"{name:<15} {r['rps']:>8} req/s  p50 {r['p50_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms  "
              f"p99 {r['p99_ms']:.1f} ms  errors {r['errors']} non-2xx {r['non2xx']}")  # fmt: skip
    floor = results["floor"]
    worst = max(results["queue"]["p95_ms"], results["case"]["p95_ms"])
    print(
        json.dumps(
            {
                "benchmark": "console",
                "cases": args.cases,
                "case_pages": len(refs),
                "load_seconds": round(load_s, 1),
                "connections": args.connections,
                "duration_s": args.duration,
                "load_tool": "wrk 4 (Debian), session cookie header, Lua done hook for percentiles",
                "queue_p95_ms": results["queue"]["p95_ms"],
                "case_p95_ms": results["case"]["p95_ms"],
                "p95_ms": worst,
                "peer_name": "a static page (the bytes of a queue page) served by the same uvicorn server",
                "peer_p95_ms": floor["p95_ms"],
                "ratio_p95": round(worst / floor["p95_ms"], 2) if floor["p95_ms"] else None,
                "goal_p95_ms": GOAL_P95_MS,
                "index_scans": {
                    n: "Index Scan" in p and "Sort " not in p.split("Index", 1)[0] for n, p in plans.items()
                },
                "workloads": results,
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "machine": f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
                f"{os.cpu_count()} CPUs (shared with other work), {platform.platform()}",
            }
        )
    )


if __name__ == "__main__":
    main()
