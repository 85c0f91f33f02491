"""Scale-out benchmark: complaint mail door to case over NATS JetStream and PostgreSQL, 1, 2 and 4 workers a stage.

The mail mix, the inventory, the SMTP sink and the end-state checks are ``benchmarks/pipeline.py``'s (imported,
not copied); what differs is the shape of the desk:

- ``inprocess`` (the baseline): ``abusedesk intake file MAILDIR`` with ``bus = "inprocess"`` on a PostgreSQL
  database: the command stores each mail and drains every stage in its own process.
- ``nats`` with W workers: a private ``nats-server -js`` (its own port, store dir, stream and subject prefix), W
  ``abusedesk worker`` processes for each message stage (``parse``, ``attribute``, ``replies``, ``cases``, and
  ``detect``, with ``--partition I/W`` when W > 1), then ``abusedesk intake file MAILDIR`` with ``bus = "nats"``,
  which stores each mail and hands it on; the workers do the rest. No ``actions`` or ``scheduler`` worker: they
  act on cases after their end, which is not part of this path.

Every run gets its own scratch database (``abusedesk_bench_<pid>_<run>`` on 127.0.0.1:5432, user postgres, trust
auth; dropped after) with the small benchmark inventory imported by ``abusedesk inventory import``. A run is
timed from the start of ``intake file`` (the first byte of the door) until every accepted mail is at its end
(case, not ours, triage, quarantine; the database is polled read-only) and ``abusedesk pipeline status --json``
shows nothing waiting and nothing unrelayed. The workers are started, and their consumers exist, before the
clock starts. Each run also records the CPU seconds of the door and of each stage's workers (their start-up left
out). The curve is said to flatten at the first worker count that is less than 1.2 times as fast as the count
before it. Every process this script starts is stopped at the end, and every scratch database dropped, on
failure too.

Run: ``.venv/bin/python benchmarks/pipeline_nats.py [--quick] [--mails 2000] [--workers 1,2,4]``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

# benchmarks/ is not a package: this script's directory is put on the path above
from pipeline import (
    AddressPool,
    Desk,
    MailSet,
    build_mix,
    free_port,
    inventory_json,
    rate,
    run_in_scratch,
    run_intake_file,
    settled,
    write_maildir,
)

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
MESSAGE_STAGES = ("parse", "attribute", "detect", "replies", "cases")
STALL = 60.0  # seconds without progress before a run is given up
DATABASES: list[str] = []  # every scratch database made, in order (each is dropped after its run, and at exit)


# ------------------------------------------------------------------------------------------------ PostgreSQL


def _pg(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


class PgDesk(Desk):
    """A desk whose database is a scratch PostgreSQL database, created here and dropped by ``drop()``."""

    def __init__(self, root: Path, name: str, env: dict[str, str]) -> None:
        self.dbname = f"abusedesk_bench_{os.getpid()}_{name.replace('-', '_')}"
        DATABASES.append(self.dbname)
        with _pg(PG_ADMIN) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.dbname}"')
            admin.execute(f'CREATE DATABASE "{self.dbname}"')
        self.url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.dbname}"
        super().__init__(root, name, {**env, "ABUSEDESK_DATABASE_URL": self.url.replace("://", "+psycopg://", 1)})

    not_ready = (psycopg.errors.UndefinedTable,)

    def connect(self) -> Any:
        return _pg(self.url)

    def drop(self) -> None:
        drop_database(self.dbname)


def drop_database(name: str) -> None:
    with _pg(PG_ADMIN) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------------------------------------ NATS


class NatsServer:
    """A private ``nats-server -js`` on a free loopback port with its own store dir; ``stop()`` ends it."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.store.mkdir(parents=True)
        self.port, self.monitor = free_port(), free_port()
        self.log = store / "server.log"
        cmd = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor)]
        cmd += ["-sd", str(store / "js"), "-l", str(self.log)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while "Server is ready" not in (self.log.read_text(errors="replace") if self.log.exists() else ""):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nats-server on 127.0.0.1:{self.port} did not start; see {self.log}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc)

    def monitoring(self, endpoint: str) -> dict[str, Any]:
        """One of the server's monitoring documents (``connz``, ``jsz``), from its loopback monitoring port."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}/{endpoint}", timeout=10) as resp:
            doc: dict[str, Any] = json.load(resp)
        return doc


def stop_process(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def args_of(proc: subprocess.Popen[bytes]) -> list[str]:
    """A process's command line (``abusedesk worker --stage NAME ...``) as strings."""
    args = proc.args
    return [str(a) for a in args] if isinstance(args, list) else [str(args)]


def worker_commands(workers: int) -> list[list[str]]:
    """The ``abusedesk worker`` argument lists for ``workers`` processes a message stage."""
    out = []
    for stage in MESSAGE_STAGES:
        for i in range(workers):
            part = ["--partition", f"{i}/{workers}"] if stage == "detect" and workers > 1 else []
            out.append(["worker", "--stage", stage, *part])
    return out


@contextlib.contextmanager
def running_workers(desk: Desk, workers: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n, args in enumerate(worker_commands(workers)):
            log = (desk.dir / f"worker-{n}-{'-'.join(args[2:]).replace('/', 'of')}.log").open("wb")
            procs.append(subprocess.Popen(desk.cmd(*args), env=desk.env, stdout=log, stderr=subprocess.STDOUT))
            log.close()
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            stop_process(proc)


def wait_workers(
    server: NatsServer, procs: list[subprocess.Popen[bytes]], workers: int, timeout: float = 300.0
) -> float:
    """Wait until every worker is connected and every stage's durable consumers exist, so that the clock does not
    run while the workers import and connect; the seconds it took. A worker that exits fails the run."""
    consumers = len(MESSAGE_STAGES) - 1 + (16 if workers > 1 else 1)  # detect: one consumer a slot when partitioned
    t0 = time.perf_counter()
    while True:
        dead = [" ".join(args_of(p)[1:]) for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"worker(s) exited before the run: {dead}")
        conns = server.monitoring("connz").get("num_connections", 0)
        made = server.monitoring("jsz").get("consumers", 0)
        if conns >= len(procs) and made >= consumers:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{conns} of {len(procs)} workers connected, {made} of {consumers} consumers made")
        time.sleep(0.25)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc; 0.0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stage_cpu(procs: list[subprocess.Popen[bytes]], before: dict[int, float]) -> dict[str, float]:
    """CPU seconds each stage's workers used since ``before`` (their start-up left out)."""
    out: dict[str, float] = {}
    for p in procs:
        name = args_of(p)[3]
        out[name] = round(out.get(name, 0.0) + cpu_seconds(p.pid) - before[p.pid], 1)
    return out


def pipeline_status(desk: Desk) -> dict[str, Any]:
    proc = desk.run("pipeline", "status", "--json")
    status: dict[str, Any] = json.loads(proc.stdout)
    return status


def wait_finished(
    desk: Desk, procs: list[subprocess.Popen[bytes]], expected: int, findings: int | None
) -> tuple[float, dict[str, int], dict[str, Any], bool]:
    """Poll the database until every mail is at its end, then ask ``pipeline status`` whether anything waits.

    Returns (the time the status command that showed nothing waiting was started, the database counts, that
    status, done?). Gives up after STALL seconds without progress, or when a worker has exited.
    """
    last: dict[str, int] | None = None
    since = time.perf_counter()
    status: dict[str, Any] = {}
    while True:
        state = desk.state()
        now = time.perf_counter()
        if settled(state, expected, findings):
            status = pipeline_status(desk)
            if status["waiting"] == 0 and status["unrelayed"] == 0:
                final = desk.state()
                if final == state:
                    return now, state, status, True
        if state != last:
            last, since = state, now
        elif now - since > STALL or any(p.poll() is not None for p in procs):
            return now, state, status or pipeline_status(desk), False
        time.sleep(0.2)


def run_nats(
    scratch: Path, env: dict[str, str], inventory: Path, mdir: Path, mails: int, workers: int, findings: int | None
) -> dict[str, Any]:
    """One measurement: a fresh database and nats-server, ``workers`` workers a stage, ``intake file`` at the door."""
    name = f"nats-{workers}w"
    run = f"B{os.getpid()}W{workers}"
    server = NatsServer(scratch / f"{name}-nats")
    desk: PgDesk | None = None
    try:
        nats_env = {
            **env,
            "ABUSEDESK_BUS": "nats",
            "ABUSEDESK_NATS_URL": server.url,
            "ABUSEDESK_NATS_STREAM": run,
            "ABUSEDESK_NATS_SUBJECT_PREFIX": run.lower(),
        }
        desk = PgDesk(scratch, name, nats_env)
        desk.import_inventory(inventory)
        with running_workers(desk, workers) as procs:
            startup = wait_workers(server, procs, workers)
            pids = ", ".join(f"{' '.join(args_of(p)[3:])} {p.pid}" for p in procs)
            print(f"  {len(procs)} workers up in {startup:.1f} s (pids: {pids})", flush=True)
            before = {p.pid: cpu_seconds(p.pid) for p in procs}
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            door = desk.run("intake", "file", "--json", str(mdir))
            t_door = time.perf_counter()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the door is the only child reaped meanwhile
            door_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
            t_end, state, status, done = wait_finished(desk, procs, mails, findings)
            cpu = {"door": round(door_cpu, 1), **stage_cpu(procs, before)}
        rows = json.loads(door.stdout or b"[]") if door.stdout.strip().startswith(b"[") else []
        result: dict[str, Any] = {
            "workers": workers,
            "processes": len(procs),
            "seconds": t_end - t0,
            "door_seconds": t_door - t0,
            "cpu_seconds": cpu,
            "startup_seconds": round(startup, 1),
            "accepted": sum(1 for r in rows if r.get("raw_id")),
            "door_exit": door.returncode,
            "door_stderr": door.stderr.decode(errors="replace")[-1500:] if door.returncode else "",
            "settled": done,
            "state": state,
            "status": {k: status.get(k) for k in ("waiting", "unrelayed", "dead_letters", "stranded_inputs")},
            "ends": desk.ends(),
        }
        result["mail_per_s"] = rate(mails, result)
        return result
    finally:
        server.stop()
        if desk is not None:
            desk.drop()


def run_inprocess(scratch: Path, env: dict[str, str], inventory: Path, mdir: Path, mails: int) -> dict[str, Any]:
    """The baseline: ``intake file`` with the in-process bus, on a PostgreSQL database of its own."""
    desk = PgDesk(scratch, "inprocess", {**env, "ABUSEDESK_BUS": "inprocess"})
    try:
        desk.import_inventory(inventory)
        result = run_intake_file(desk, mdir, mails)
        result["ends"] = desk.ends()
        result["mail_per_s"] = rate(mails, result)
        return result
    finally:
        desk.drop()


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="300 mails, 1 and 2 workers (under 3 minutes)")
    ap.add_argument("--mails", type=int, default=None, help="complaint mails per run (default 2,000; quick 300)")
    ap.add_argument("--workers", default=None, help="worker counts a stage (default 1,2,4; quick 1,2)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (worker and server logs)")
    args = ap.parse_args()
    mails_n = args.mails or (300 if args.quick else 2_000)
    counts = [int(x) for x in (args.workers or ("1,2" if args.quick else "1,2,4")).split(",")]

    def drop_left_behind() -> None:
        for name in DATABASES:  # those a failed run left behind
            drop_database(name)

    run_in_scratch(
        "abusedesk-pipeline-nats-bench-",
        lambda scratch, env: _run(scratch, env, mails_n, counts),
        keep=args.keep,
        cleanup=drop_left_behind,
    )


def _run(scratch: Path, env: dict[str, str], mails_n: int, counts: list[int]) -> dict[str, Any]:
    load_before = os.getloadavg()
    print(f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; scratch {scratch}")
    inventory = inventory_json(scratch / "inventory.json")
    templates, left_out = build_mix()
    mdir = write_maildir(scratch / "mail", list(MailSet(templates, AddressPool(), "n").take(mails_n)))
    print(f"mail mix: {len(templates)} corpus mails, left out {len(left_out)}; {mails_n:,} mails a run", flush=True)

    base = run_inprocess(scratch, env, inventory, mdir, mails_n)
    findings = base["state"].get("findings") if base["settled"] else None
    print(
        f"in process (PostgreSQL): {base['mail_per_s']:>7,.1f} mails/s ({base['seconds']:.1f} s); ends {base['ends']}",
        flush=True,
    )
    runs: dict[str, Any] = {}
    for w in counts:
        r = run_nats(scratch, env, inventory, mdir, mails_n, w, findings)
        r["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        runs[str(w)] = r
        print(
            f"NATS, {w} worker(s) a stage ({r['processes']} processes): {r['mail_per_s']:>7,.1f} mails/s "
            f"({r['seconds']:.1f} s, door {r['door_seconds']:.1f} s); ends {r['ends']}; status {r['status']}",
            flush=True,
        )
        busy = sum(r["cpu_seconds"].values())
        print(
            f"  CPU seconds: {r['cpu_seconds']}; {busy:.1f} in all = {busy / r['seconds']:.2f} cores busy on average"
            + (f"; the door FAILED (exit {r['door_exit']}): {r['door_stderr'][-300:]}" if r["door_exit"] else ""),
            flush=True,
        )
    figures = {w: r["mail_per_s"] for w, r in runs.items()}
    flattens = None
    previous = None
    for count, run in runs.items():
        if previous is not None and run["mail_per_s"] < previous * 1.2:
            flattens = int(count)
            break
        previous = run["mail_per_s"]
    print()
    print(f"{'shape':34s} {'mails/s':>9s}")
    print(f"{'in process, PostgreSQL':34s} {base['mail_per_s']:>9,.1f}")
    for count, v in figures.items():
        print(f"{f'NATS, {count} worker(s) a stage':34s} {v:>9,.1f}")
    print(
        "curve flattens at "
        + (f"{flattens} workers a stage (less than 1.2x the previous count)" if flattens else "no measured count")
    )
    unfinished = base["ends"]["unfinished"] + sum(r["ends"]["unfinished"] for r in runs.values())
    return {
        "benchmark": "pipeline_nats",
        "mails": mails_n,
        "inprocess_mail_per_s": base["mail_per_s"],
        "nats_mail_per_s": figures,
        "flattens_at": flattens,
        "unfinished": unfinished,
        "inprocess": base,
        "nats": runs,
        "databases": DATABASES,
        "load_average": [round(x, 2) for x in load_before],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {platform.platform()}",
    }


if __name__ == "__main__":
    main()
