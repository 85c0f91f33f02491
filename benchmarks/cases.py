"""Findings into cases: our batched CaseEngine against the per-finding ORM loop (AbuseIO-style), same data.

For each backend (SQLite file, local PostgreSQL):

- **ours**: ``CaseEngine.ingest`` in batches (several batch sizes), with everything it does in production: duplicate
  check, grouping, case creation, playbook actions (request to cease), repetition counting, transitions and the
  hash-chained audit entries.
- **peer**: the straightforward implementation, one finding at a time in its own transaction: look up the open
  case for (customer, service, clause, group key), insert it if missing, insert the finding, update the case's
  counters (what AbuseIO's ``FindContact``/``Incident`` → ``Ticket`` loop does). It writes no audit log and runs no
  playbook, so it does *less* work than ours.

Rounds alternate ours and the peer on fresh, disjoint customers; the figures are medians. Each batch of the rounds
holds whole cases (``--per-case`` findings each, in order). Two more shapes, ours only, show the other ends:

- ``interleaved``: the same findings shuffled, so every batch adds to hundreds of cases that already exist (the
  steady state of a busy desk: the same subjects keep being reported);
- ``small cases``: 10 findings per case, so a batch opens ~500 cases, each with its playbook (notice, request to
  cease with a deadline) and audit entries.

Then one large run of ours (up to ``--total`` findings, 1M by default) measures sustained throughput, bounded by
``--budget`` seconds per backend (what was measured is printed). The last line is one JSON object.

    .venv/bin/python benchmarks/cases.py [--total 1000000] [--budget 45] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from abusedesk.cases.engine import CaseEngine
from abusedesk.cases.lifecycle import case_key, case_ref
from abusedesk.clock import ManualClock
from abusedesk.config import Settings
from abusedesk.domain.ids import stable_id
from abusedesk.domain.records import Finding, Severity
from abusedesk.runtime import Runtime
from abusedesk.store.db import make_engine, migrate
from abusedesk.store.tables.cases import CaseRow, FindingRow

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
KINDS = (("scan", "1.8"), ("brute-force", "1.7"), ("spam", "1.11"), ("phishing", "1.5"))


def make_findings(start: int, count: int, *, per_case: int, tag: str) -> list[Finding]:
    """``count`` findings, ``per_case`` of them per (customer, service, clause, key); ids unique per tag+index."""
    out = []
    for i in range(start, start + count):
        group = i // per_case
        kind, clause = KINDS[group % len(KINDS)]
        customer = f"{tag}-cust-{group // 8}"
        ip = f"198.51.{(group >> 8) & 255}.{group & 255}"
        ws = T0 + timedelta(minutes=(i % per_case) * 30)
        out.append(
            Finding(
                id=f"fd_{tag}_{i:012d}",
                detector="bench",
                kind=kind,
                clauses=(clause,),
                group_key=f"ip:{ip}",
                window_start=ws,
                window_end=ws + timedelta(minutes=5),
                severity=Severity.MEDIUM,
                confidence=0.9,
                summary=f"{kind} from {ip}",
                subject_ip=ip,
                customer_id=customer,
                project_id=f"{customer}-p",
                service_id=f"{customer}-svc-{group % 8}",
            )
        )
    return out


def ours(rt: Runtime, findings: list[Finding], batch: int) -> float:
    engine = CaseEngine(rt)
    t = time.perf_counter()
    for i in range(0, len(findings), batch):
        engine.ingest(findings[i : i + batch])
    return len(findings) / (time.perf_counter() - t)


def peer(rt: Runtime, findings: list[Finding]) -> float:
    """One finding per transaction: find the open case, create it if missing, insert the finding, bump counters."""
    version = rt.policy.version
    t = time.perf_counter()
    for f in findings:
        with rt.sessions() as s, s.begin():
            key = case_key(f.customer_id, f.service_id, f.clauses[0], f.group_key)
            case = s.scalar(select(CaseRow).where(CaseRow.open_key == key))
            if case is None:
                cid = stable_id("cp", key, f.id)
                case = CaseRow(
                    id=cid, ref=case_ref(cid), case_key=key, open_key=key, customer_id=f.customer_id,
                    project_id=f.project_id, service_id=f.service_id, clause=f.clauses[0], kind=f.kind,
                    group_key=f.group_key, state="new", severity=f.severity.value, base_severity=f.severity.value,
                    policy_version=version, opened_at=T0, updated_at=T0, last_finding_at=f.window_end,
                    finding_count=0, reopen_count=0,
                )  # fmt: skip
                s.add(case)
                s.flush()
            if s.get(FindingRow, f.id) is not None:
                continue
            s.add(
                FindingRow(
                    id=f.id, detector=f.detector, kind=f.kind, clauses=list(f.clauses), group_key=f.group_key,
                    window_start=f.window_start, window_end=f.window_end, severity=f.severity.value,
                    confidence=f.confidence, summary=f.summary, subject_ip=f.subject_ip, customer_id=f.customer_id,
                    project_id=f.project_id, service_id=f.service_id, case_id=case.id, created_at=T0, data={},
                )
            )  # fmt: skip
            case.finding_count += 1
            case.last_finding_at = max(case.last_finding_at or f.window_end, f.window_end)
    return len(findings) / (time.perf_counter() - t)


class Backend:
    def __init__(self, name: str, tmp: Path) -> None:
        self.name, self.tmp = name, tmp
        self.admin: Any = None

    def runtime(self, label: str) -> Runtime:
        data = self.tmp / f"{self.name}-{label}"
        if self.name == "sqlite":
            return Runtime.open(Settings(data_dir=data), clock=ManualClock(T0))
        db = f"abusedesk_bench_cases_{label}"
        if self.admin is None:
            self.admin = make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
        with self.admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{db}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{db}"
        engine = make_engine(url)
        migrate(engine)
        return Runtime.open(
            Settings(data_dir=data, database_url=url), clock=ManualClock(T0), engine=engine, upgrade=False
        )

    def drop(self, rt: Runtime, label: str) -> None:
        rt.close()
        if self.name == "postgresql":
            with self.admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "abusedesk_bench_cases_{label}" WITH (FORCE)'))


def bench_backend(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    be = Backend(name, tmp)
    out: dict[str, Any] = {"backend": name}
    # alternating rounds: ours and the peer on fresh customers of the same shape
    ours_rates, peer_rates = [], []
    for r in range(args.rounds):
        rt = be.runtime(f"round{r}")
        ours_rates.append(ours(rt, make_findings(0, args.round_size, per_case=args.per_case, tag=f"o{r}"), args.batch))
        peer_rates.append(peer(rt, make_findings(0, args.peer_size, per_case=args.per_case, tag=f"p{r}")))
        be.drop(rt, f"round{r}")
    out["ours_round_fps"] = round(statistics.median(ours_rates))
    out["peer_round_fps"] = round(statistics.median(peer_rates))
    # batch sizes
    sizes = {}
    rt = be.runtime("batches")
    for j, b in enumerate(args.batch_sizes):
        sizes[str(b)] = round(ours(rt, make_findings(0, args.round_size, per_case=args.per_case, tag=f"b{j}"), b))
    be.drop(rt, "batches")
    out["batch_sizes_fps"] = sizes
    # the other shapes: findings of many existing cases in every batch; many small new cases per batch
    rt = be.runtime("shapes")
    mixed = make_findings(0, args.shape_size, per_case=args.per_case, tag="mix")
    random.Random(7).shuffle(mixed)
    out["interleaved_fps"] = round(ours(rt, mixed, args.batch))
    out["small_cases_fps"] = round(ours(rt, make_findings(0, args.shape_size, per_case=10, tag="small"), args.batch))
    be.drop(rt, "shapes")
    # sustained: up to --total findings within --budget seconds
    rt = be.runtime("big")
    engine = CaseEngine(rt)
    done, chunk, elapsed = 0, args.batch * 4, 0.0
    start = time.perf_counter()
    while done < args.total and time.perf_counter() - start < args.budget:
        part = make_findings(done, min(chunk, args.total - done), per_case=args.per_case, tag="big")
        t = time.perf_counter()  # generating the test data is inside the budget, outside the rate
        for i in range(0, len(part), args.batch):
            engine.ingest(part[i : i + args.batch])
            done += len(part[i : i + args.batch])
            if time.perf_counter() - start >= args.budget:
                break
        elapsed += time.perf_counter() - t
    with rt.sessions() as s:
        cases = s.scalar(text("SELECT count(*) FROM cases"))
        stored = s.scalar(text("SELECT count(*) FROM findings"))
    be.drop(rt, "big")
    out.update(sustained_findings=done, sustained_seconds=round(elapsed, 1), sustained_fps=round(done / elapsed),
               sustained_cases=cases, sustained_stored=stored)  # fmt: skip
    if be.admin is not None:
        be.admin.dispose()
    print(json.dumps(out), file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--total", type=int, default=1_000_000)
    ap.add_argument("--budget", type=float, default=25.0, help="seconds per backend for the sustained run")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--round-size", type=int, default=20_000, help="findings per round of ours (batches of --batch)")
    ap.add_argument("--peer-size", type=int, default=400)
    ap.add_argument("--shape-size", type=int, default=40_000, help="findings in the interleaved and small-case runs")
    ap.add_argument("--per-case", type=int, default=100, help="findings per case")
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--batch-sizes", default="1000,5000")
    args = ap.parse_args()
    args.batch_sizes = [int(x) for x in args.batch_sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.backends.split(","):
            results[name] = bench_backend(name, args, Path(tmp))
    main_be = "postgresql" if "postgresql" in results else next(iter(results))
    r = results[main_be]
    print(
        json.dumps(
            {
                "benchmark": "cases",
                "ours": r["ours_round_fps"],
                "peer": r["peer_round_fps"],
                "peer_name": "per-finding ORM loop (AbuseIO-style: look up open case, insert, update, commit)",
                "unit": "findings/s",
                "ratio": round(r["ours_round_fps"] / r["peer_round_fps"], 1),
                "backend": main_be,
                "goal_fps_postgresql": 20_000,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
