"""Attribution benchmark: 1M allocations with time validity, ours against pytricia on the same data, same run.

Data (synthetic, seeded): nested IPv4 prefixes (/16 parents, /24 customers re-assigned up to three times, /32
hosts with short windows) and IPv6 (/48 and nested /64, some re-assigned), about 1M allocations in all.

* ours, batch: ``AttributionIndex.lookup_batch`` over numpy arrays (IPv4 uint32 + int64 epoch-µs).
* ours, single: ``AttributionIndex.lookup(ip_int, at_us)`` in a Python loop (mixed IPv4/IPv6).
* peer: pytricia (a C patricia trie) longest-prefix match, then a walk over that prefix's validity intervals
  (bisect) and up through parent prefixes until one is valid at the time: the natural way to add time to an
  LPM trie. pytricia has no batch form, so its figure is a Python loop over the same queries.

Runs alternate (ours batch, peer, ours single, peer single), medians are reported; both must agree on a sample.
The last line is one JSON object. Run: ``.venv/bin/python benchmarks/attribution.py [--allocations N]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import time
from bisect import bisect_right
from typing import Any

import numpy as np
import pytricia

from abusedesk.domain.ipnet import V4_BASE
from abusedesk.inventory.index import POS_INF_US, AllocationEntry, AttributionIndex

T_BASE = 1_704_067_200_000_000  # 2024-01-01T00:00Z in µs
SPAN = 2 * 365 * 86_400 * 1_000_000  # two years
HOUR = 3_600 * 1_000_000


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _timeline(rng: random.Random, k: int) -> list[tuple[int, int | None]]:
    """``k`` consecutive half-open intervals inside the span; the last may be open."""
    cuts = sorted(rng.randrange(T_BASE, T_BASE + SPAN) for _ in range(k + 1))
    out: list[tuple[int, int | None]] = []
    for i in range(k):
        if cuts[i + 1] > cuts[i]:
            out.append((cuts[i], cuts[i + 1]))
    if out and rng.random() < 0.5:
        out[-1] = (out[-1][0], None)
    return out or [(cuts[0], None)]


def generate(n: int, seed: int = 7) -> tuple[list[AllocationEntry], dict[str, tuple[str, str]]]:
    """About ``n`` allocations: IPv4 /16 > /24 > /32 nesting with re-assignments, and IPv6 /48 > /64."""
    rng = random.Random(seed)
    entries: list[AllocationEntry] = []
    n_services = max(100, n // 10)

    def add(first: int, plen: int, text: str, vf: int, vt: int | None) -> None:
        size = 1 << (128 - plen)
        svc = f"svc-{rng.randrange(n_services)}"
        entries.append(AllocationEntry(len(entries) + 1, text, first, first + size - 1, svc, vf, vt))

    v4_target = int(n * 0.9)
    slash16 = iter(rng.sample(range(1 << 8, 224 << 8), (224 << 8) - (1 << 8)))
    while len(entries) < v4_target:
        p16 = next(slash16)
        base16 = p16 << 16
        add(V4_BASE + base16, 112, f"{p16 >> 8}.{p16 & 255}.0.0/16", T_BASE, None)
        for c in rng.sample(range(256), 100):
            base24 = base16 | (c << 8)
            text24 = f"{p16 >> 8}.{p16 & 255}.{c}.0/24"
            for vf, vt in _timeline(rng, rng.choice((1, 2, 3))):
                add(V4_BASE + base24, 120, text24, vf, vt)
            if rng.random() < 0.5:
                for h in rng.sample(range(256), 3):
                    vf = rng.randrange(T_BASE, T_BASE + SPAN)
                    add(V4_BASE + (base24 | h), 128, f"{p16 >> 8}.{p16 & 255}.{c}.{h}/32", vf, vf + 72 * HOUR)
    v6_root = 0x2001_0DB8 << 96
    slash48 = iter(rng.sample(range(1 << 16), 1 << 16))
    while len(entries) < n:
        p48 = next(slash48)
        first48 = v6_root | (p48 << 80)
        text48 = f"2001:db8:{p48:x}::/48"
        for vf, vt in _timeline(rng, rng.choice((1, 2))):
            add(first48, 48, text48, vf, vt)
        for sub in rng.sample(range(1 << 16), 4):
            for vf, vt in _timeline(rng, 1):
                add(first48 | (sub << 64), 64, f"2001:db8:{p48:x}:{sub:x}::/64", vf, vt)
    services = {f"svc-{i}": (f"prj-{i}", f"cus-{i // 3}") for i in range(n_services)}
    return entries[:n], services


class PeerTrie:
    """pytricia longest-prefix match plus a time walk up through parent prefixes."""

    def __init__(self, entries: list[AllocationEntry]) -> None:
        self.v4 = pytricia.PyTricia(32)
        self.v6 = pytricia.PyTricia(128)
        grouped: dict[str, list[tuple[int, int, int]]] = {}
        for row, e in enumerate(entries):
            grouped.setdefault(e.prefix, []).append(
                (e.valid_from, POS_INF_US if e.valid_to is None else e.valid_to, row)
            )
        for prefix, items in grouped.items():
            items.sort()
            value = (prefix, [i[0] for i in items], [i[1] for i in items], [i[2] for i in items])
            (self.v6 if ":" in prefix else self.v4)[prefix] = value

    def lookup(self, ip: int, t: int) -> int:
        if V4_BASE <= ip <= V4_BASE + 0xFFFF_FFFF:
            trie, key = self.v4, ip - V4_BASE
        else:
            trie, key = self.v6, ip.to_bytes(16, "big")
        value = trie.get(key)
        while value is not None:
            prefix, vfs, vts, rows = value
            i = bisect_right(vfs, t) - 1
            if i >= 0 and t < vts[i]:
                return int(rows[i])
            parent = trie.parent(prefix)
            value = trie[parent] if parent is not None else None
        return -1


def queries(
    entries: list[AllocationEntry], n: int, rng: np.random.Generator, v6_share: float
) -> tuple[list[int], list[int]]:
    """``n`` (address, time) pairs: 80 % inside a random allocation, 20 % random IPv4; times over the span."""
    ips: list[int] = []
    picks = rng.integers(0, len(entries), n)
    inside = rng.random(n) < 0.8
    for k in range(n):
        e = entries[int(picks[k])]
        want_v6 = rng.random() < v6_share
        if inside[k] and (e.first > V4_BASE + 0xFFFF_FFFF) == want_v6:
            ips.append(e.first + int(rng.integers(0, min(e.last - e.first + 1, 1 << 62))))
        elif want_v6:
            ips.append((0x2001_0DB8 << 96) | int(rng.integers(0, 1 << 62)) << 40)
        else:
            ips.append(V4_BASE + int(rng.integers(0, 1 << 32)))
    times = rng.integers(T_BASE - 30 * 86_400_000_000, T_BASE + SPAN + 30 * 86_400_000_000, n).tolist()
    return ips, times


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(), "numpy": np.__version__}


def import_timing(
    entries: list[AllocationEntry], services: dict[str, tuple[str, str]], database_url: str | None
) -> None:
    """Time ``InventoryService.import_file`` of the allocations as CSV on a fresh database (SQLite or PostgreSQL),
    then the index build from that database. Not part of the default run (it is not compared with a peer)."""
    import csv
    import tempfile
    from pathlib import Path

    from sqlalchemy import text

    from abusedesk.config import Settings
    from abusedesk.inventory.index import from_us
    from abusedesk.inventory.service import InventoryService
    from abusedesk.runtime import Runtime
    from abusedesk.store.base import Base

    def stamp(us: int | None) -> str:
        return "" if us is None else from_us(us).isoformat().replace("+00:00", "Z")

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "inv").mkdir()
        with (d / "inv" / "customers.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "name"])
            w.writerows([c, c] for c in sorted({c for _, c in services.values()}))
        with (d / "inv" / "projects.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "customer_id", "name"])
            w.writerows([p, c, p] for p, c in services.values())
        with (d / "inv" / "services.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "project_id", "kind", "name"])
            w.writerows([s, p, "vm", s] for s, (p, _c) in services.items())
        with (d / "inv" / "allocations.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["prefix", "service_id", "valid_from", "valid_to"])
            w.writerows([e.prefix, e.service_id, stamp(e.valid_from), stamp(e.valid_to)] for e in entries)
        rt = Runtime.open(Settings(data_dir=d / "data", database_url=database_url))
        if rt.engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            with rt.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        svc = InventoryService(rt)
        t0, c0 = time.perf_counter(), time.process_time()
        report = svc.import_file(d / "inv", progress=lambda stage, done, total: print(
            f"  {stage} {done:,} at {time.perf_counter() - t0:.1f}s"))  # fmt: skip
        took, took_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        again = svc.import_file(d / "inv" / "allocations.csv")
        took_again = time.perf_counter() - t0
        t0 = time.perf_counter()
        idx = svc.index()
        took_index = time.perf_counter() - t0
        print(json.dumps({
            "benchmark": "attribution-import", "database": rt.engine.dialect.name,
            "allocations": report.counts["allocations"]["added"], "import_s": round(took, 1),
            "import_cpu_s": round(took_cpu, 1),
            "reimport_unchanged_s": round(took_again, 1), "reimport_changed": again.changed,
            "index_from_db_s": round(took_index, 1), "index_allocations": len(idx),
            "loadavg_1m": round(os.getloadavg()[0], 1), "machine": machine(),
        }))  # fmt: skip
        rt.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--allocations", type=int, default=1_000_000)
    ap.add_argument(
        "--import-db",
        metavar="URL",
        help="instead: time importing the allocations into this database ('sqlite' = a fresh SQLite file)",
    )
    ap.add_argument("--batch", type=int, default=1_000_000)
    ap.add_argument("--single", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    t0 = time.perf_counter()
    entries, services = generate(args.allocations)
    gen_s = time.perf_counter() - t0
    print(f"generated {len(entries):,} allocations in {gen_s:.1f}s")
    if args.import_db:
        import_timing(entries, services, None if args.import_db == "sqlite" else args.import_db)
        return

    gc.collect()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    ours = AttributionIndex.build(entries, services)
    build_ours = time.perf_counter() - t0
    gc.collect()
    rss_ours = rss_bytes() - rss0
    st = ours.stats()
    print(f"ours: built in {build_ours:.2f}s; {st}; RSS +{rss_ours / 1e6:.0f} MB")

    gc.collect()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    peer = PeerTrie(entries)
    build_peer = time.perf_counter() - t0
    gc.collect()
    rss_peer = rss_bytes() - rss0
    print(f"pytricia: built in {build_peer:.2f}s; RSS +{rss_peer / 1e6:.0f} MB")

    rng = np.random.default_rng(11)
    b_ips, b_times = queries(entries, args.batch, rng, v6_share=0.0)
    b_ip_arr = np.array([ip - V4_BASE for ip in b_ips], dtype=np.uint32)
    b_t_arr = np.array(b_times, dtype=np.int64)
    s_ips, s_times = queries(entries, args.single, rng, v6_share=0.1)
    peer_batch_n = min(args.batch, args.single)
    pb_ips, pb_times = b_ips[:peer_batch_n], b_times[:peer_batch_n]

    # agreement: batch vs single vs pytricia on samples (IPv4 batch, mixed single, IPv6 batch)
    batch_rows = ours.lookup_batch(b_ip_arr, b_t_arr)
    sample = range(0, args.batch, max(1, args.batch // 20_000))
    for k in sample:
        expect = peer.lookup(b_ips[k], b_times[k])
        assert batch_rows[k] == expect == ours.lookup(b_ips[k], b_times[k]), (k, b_ips[k], b_times[k])
    pairs = np.array([[ip >> 64, ip & ((1 << 64) - 1)] for ip in s_ips], dtype=np.uint64)
    pair_rows = ours.lookup_batch(pairs, np.array(s_times, dtype=np.int64))
    for k in range(0, args.single, max(1, args.single // 20_000)):
        assert pair_rows[k] == peer.lookup(s_ips[k], s_times[k]) == ours.lookup(s_ips[k], s_times[k]), k
    found = float(np.mean(batch_rows >= 0))
    print(
        f"agreement checked on {len(sample):,} + {args.single // max(1, args.single // 20_000):,} lookups; "
        f"{found:.0%} of batch queries are ours"
    )

    ours_batch, ours_single, peer_single, peer_batch, ours_v6 = [], [], [], [], []
    cpu: dict[str, list[float]] = {"ours_batch": [], "ours_single": [], "peer_single": []}
    v6_mask = pairs[:, 0] != 0
    v6_pairs, v6_times = pairs[v6_mask], np.array(s_times, dtype=np.int64)[v6_mask]
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        ours.lookup_batch(b_ip_arr, b_t_arr)
        ours_batch.append(args.batch / (time.perf_counter() - t0))
        cpu["ours_batch"].append(args.batch / (time.process_time() - c0))

        lk = peer.lookup
        t0 = time.perf_counter()
        for ip, t in zip(pb_ips, pb_times, strict=True):
            lk(ip, t)
        peer_batch.append(peer_batch_n / (time.perf_counter() - t0))

        olk = ours.lookup
        t0, c0 = time.perf_counter(), time.process_time()
        for ip, t in zip(s_ips, s_times, strict=True):
            olk(ip, t)
        ours_single.append(args.single / (time.perf_counter() - t0))
        cpu["ours_single"].append(args.single / (time.process_time() - c0))

        t0, c0 = time.perf_counter(), time.process_time()
        for ip, t in zip(s_ips, s_times, strict=True):
            lk(ip, t)
        peer_single.append(args.single / (time.perf_counter() - t0))
        cpu["peer_single"].append(args.single / (time.process_time() - c0))

        t0 = time.perf_counter()
        ours.lookup_batch(v6_pairs, v6_times)
        ours_v6.append(len(v6_pairs) / (time.perf_counter() - t0))

    med = statistics.median
    result = {
        "benchmark": "attribution",
        "allocations": len(entries),
        "ours_batch_per_s": round(med(ours_batch)),
        "ours_batch_v6_per_s": round(med(ours_v6)),
        "ours_single_per_s": round(med(ours_single)),
        "peer": "pytricia",
        "peer_name": "pytricia",
        "peer_per_s": round(med(peer_single)),
        "peer_batch_loop_per_s": round(med(peer_batch)),
        "ratio_batch": round(med(ours_batch) / med(peer_batch), 2),
        "ratio_single": round(med(ours_single) / med(peer_single), 2),
        "ours": round(med(ours_batch)),
        "unit": "lookups/s",
        "ratio": round(med(ours_batch) / med(peer_batch), 2),
        "memory_mb": round(st["memory_bytes"] / 1e6, 1),
        "rss_mb_ours": round(rss_ours / 1e6, 1),
        "rss_mb_peer": round(rss_peer / 1e6, 1),
        "build_s_ours": round(build_ours, 2),
        "build_s_peer": round(build_peer, 2),
        "repeats": args.repeats,
        # per CPU-second of this process: closer to an idle machine's figures when the machine is shared
        "cpu_ours_batch_per_s": round(med(cpu["ours_batch"])),
        "cpu_ours_single_per_s": round(med(cpu["ours_single"])),
        "cpu_peer_per_s": round(med(cpu["peer_single"])),
        "loadavg_1m": round(os.getloadavg()[0], 1),
        "machine": machine(),
    }
    print(
        f"ours batch {result['ours_batch_per_s']:,}/s (IPv6 {result['ours_batch_v6_per_s']:,}/s), "
        f"single {result['ours_single_per_s']:,}/s; pytricia {result['peer_per_s']:,}/s; "
        f"memory ours {result['memory_mb']} MB (RSS +{result['rss_mb_ours']} MB), "
        f"pytricia RSS +{result['rss_mb_peer']} MB"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
