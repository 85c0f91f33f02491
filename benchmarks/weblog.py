"""Egress log benchmark: log lines/s from the file to stored findings, against GoAccess reading the same log.

Data (synthetic, seeded): ``--lines`` Squid access.log lines in the ``abusedesk`` logformat (native line, agent
appended), ``--span`` seconds of traffic (an hour) from ``--clients`` addresses of one customer's /24 to 40
target hosts, with polite crawlers, library agents, robots-ignoring and crawl-delay-ignoring ones mixed.

* ours: ``abusedesk weblog file LOG --format squid`` as a process on a scratch SQLite data directory (the embedded
  default) with the inventory and the targets' robots.txt imported beforehand: the raw input stored, parsed
  (vectorised), attributed, every 1.14/1.5 detector run, findings and cases written. Timed from the command's start
  to its exit; the findings are counted from the database.
* peer: GoAccess (Debian ``goaccess``) reading the same file with the matching ``--log-format`` into a JSON
  report: an established analyser's parse-and-aggregate of the same log (it judges nothing, stores nothing).

CPU seconds (user + system of the child, every thread) are reported beside wall time: on the shared 2-core
session machine they are the steadier figure. Peak RSS is ``resource.getrusage`` of the children: ours is the
largest of the set-up processes and the run
(so at most, not exactly, the run's), the peer's is at most the largest of all before it. The last
line is one JSON object. Run: ``PYTHONPATH=src .venv/bin/python benchmarks/weblog.py [--lines N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOACCESS_FORMAT = '%x.%^ %~%L %h %^/%s %b %m %U %^ %^ %M "%u"'
T0 = 1_780_272_000.0  # 2026-06-01T00:00Z
ROBOTS = b"User-agent: *\nCrawl-delay: 1\nDisallow: /private/\nDisallow: /*?sort=\n"
AGENTS = [
    "ExampleBot/1.0 (+https://crawler.example/bot; bot@crawler.example)",
    "python-requests/2.31.0",
    "Scrapy/2.11.2 (+https://scrapy.org)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Go-http-client/1.1",
    "",
]


def make_log(path: Path, lines: int, clients: int, span: float = 3600.0, seed: int = 5) -> None:
    rng = random.Random(seed)
    hosts = [f"203.0.113.{i}" for i in range(1, 41)]
    with path.open("w") as fh:
        step = span / lines
        for i in range(lines):
            t = T0 + i * step
            c = rng.randrange(clients)
            ua = AGENTS[c % len(AGENTS)]
            host = hosts[(c * 7 + rng.randrange(3)) % len(hosts)]
            r = rng.random()
            path_ = ("/private/x" if r < 0.03 else "/robots.txt" if r < 0.04 else
                     f"/p/{rng.randrange(5000)}?sort=a" if r < 0.1 else f"/p/{rng.randrange(5000)}")  # fmt: skip
            fh.write(f"{t:.3f}     12 198.51.100.{c % 250 + 1} TCP_MISS/200 512 GET http://{host}{path_} - "
                     f'HIER_DIRECT/{host} text/html "{ua}"\n')  # fmt: skip


def machine() -> str:
    load = os.getloadavg()
    return (f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_implementation()} "
            f"{platform.python_version()}, load {load[0]:.1f} at start (shared with other work)")  # fmt: skip


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Seconds, peak RSS (bytes) and CPU seconds (user + system, every thread) of one child process. On a
    machine shared with other work the CPU seconds are the steadier measure: waiting for a core costs none."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}{proc.stdout[-500:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return seconds, max(after.ru_maxrss, before.ru_maxrss) * 1024, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=250)
    ap.add_argument("--span", type=float, default=3600.0, help="Seconds of traffic the log covers.")
    args = ap.parse_args()
    repo = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix="abusedesk-weblog-bench-"))
    try:
        log = work / "access.log"
        make_log(log, args.lines, args.clients, args.span)
        inventory = work / "inventory.json"
        inventory.write_text(json.dumps({
            "customers": [{"id": "c1", "name": "Crawl Co"}],
            "projects": [{"id": "p1", "customer_id": "c1", "name": "crawlers"}],
            "services": [{"id": "s1", "project_id": "p1", "kind": "vm", "name": "crawler"}],
            "allocations": [{"prefix": "198.51.100.0/24", "service_id": "s1", "valid_from": "2026-01-01T00:00:00Z"}],
        }))  # fmt: skip
        (work / "robots.txt").write_bytes(ROBOTS)
        env = {**os.environ, "PYTHONPATH": str(repo / "src"), "ABUSEDESK_DATA_DIR": str(work / "data"),
               "ABUSEDESK_NOTIFY_BACKEND": "null", "ABUSEDESK_CONTROL_BACKEND": "null",
               "ABUSEDESK_LOG_LEVEL": "WARNING"}  # fmt: skip
        env.pop("ABUSEDESK_DATABASE_URL", None)
        cli = [sys.executable, "-c", "from abusedesk.cli.main import main; main()"]
        subprocess.run([*cli, "inventory", "import", str(inventory)], env=env, check=True, capture_output=True)
        setup = (
            "import sys\nfrom abusedesk.config import load_settings\nfrom abusedesk.runtime import Runtime\n"
            "from abusedesk.robots.store import RobotsStore\nrt = Runtime.open(load_settings())\n"
            "store = RobotsStore(rt)\nfor i in range(1, 41):\n"
            "    store.imported(f'203.0.113.{i}', open(sys.argv[1], 'rb').read(), origin='bench')\nrt.close()\n"
        )
        subprocess.run([sys.executable, "-c", setup, str(work / "robots.txt")], env=env, check=True)
        ours_s, ours_rss, ours_cpu = run([*cli, "weblog", "file", str(log), "--format", "squid"], env)
        db = sqlite3.connect(next((work / "data").glob("*.sqlite3")))
        by_detector = dict(db.execute("SELECT detector, count(*) FROM findings GROUP BY detector").fetchall())
        cases = db.execute("SELECT count(*) FROM cases").fetchone()[0]
        db.close()
        if not by_detector:
            raise SystemExit("no finding was stored: the run measured nothing")
        peer: dict[str, Any] = {"peer": "goaccess"}
        goaccess = shutil.which("goaccess")
        if goaccess is None:
            peer["peer_note"] = "goaccess is not installed (Debian goaccess; make debs)"
        else:
            report = work / "goaccess.json"
            g_s, g_rss, g_cpu = run([goaccess, str(log), f"--log-format={GOACCESS_FORMAT}", "--date-format=%s",
                              "--time-format=%s", "-o", str(report), "--no-global-config"],
                             dict(os.environ))  # fmt: skip
            general = json.loads(report.read_text())["general"]
            if general["valid_requests"] != args.lines:
                raise SystemExit(f"goaccess read {general['valid_requests']} of {args.lines} lines")
            peer.update(
                peer_lines_per_s=round(args.lines / g_s),
                peer_seconds=round(g_s, 2),
                peer_cpu_seconds=round(g_cpu, 2),
                peer_lines_per_cpu_s=round(args.lines / max(g_cpu, 1e-6)),
                peer_peak_rss_mb_at_most=round(g_rss / 1e6, 1),
            )
        result = {
            "benchmark": "weblog", "machine": machine(), "lines": args.lines,
            "log_mb": round(log.stat().st_size / 1e6, 1),
            "lines_per_s": round(args.lines / ours_s), "seconds": round(ours_s, 2),
            "cpu_seconds": round(ours_cpu, 2), "lines_per_cpu_s": round(args.lines / max(ours_cpu, 1e-6)),
            "peak_rss_mb": round(ours_rss / 1e6, 1), "findings": by_detector, "cases": cases, **peer,
        }  # fmt: skip
        if "peer_lines_per_s" in peer:
            result["ratio"] = round(result["lines_per_s"] / peer["peer_lines_per_s"], 2)
            result["cpu_ratio"] = round(result["lines_per_cpu_s"] / peer["peer_lines_per_cpu_s"], 2)
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
