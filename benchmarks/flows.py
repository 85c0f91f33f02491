"""Flow telemetry: decode, detection and door-to-finding throughput, each against a named peer in the same run.

1. **Decode** IPFIX datagrams (softflowd's record layout, 30 records a datagram, templates resent every 16
   datagrams) into Arrow: ours (``FlowDecoder``) against the pure-Python ``netflow`` package (PyPI) on the same
   datagrams, and nfdump reading the same flows from its own nfcapd file (made by nfcapd from these datagrams on
   loopback): a filter (``'dst port 23'``) and an aggregation (``-s srcip``).
2. **Detection**: N synthetic flow rows (a background of benign flows plus scans, floods, brute force and spam) in
   chunks through every flow detector with its state; rows/s and the process's peak RSS growth, against a bare
   Polars group-by of the scan aggregate over the same rows.
3. **End to end**: the datagrams sent to ``abusedesk telemetry collect``'s collector on loopback by another
   process, paced at each of ``--e2e-rates`` flows/s for ``--e2e-seconds``, through the flow file, attribution,
   every detector, findings stored (SQLite, the embedded default): per rate the socket's drops, flows/s from the
   first datagram to the drained pipeline, and flows per CPU-second of the collector's process (all its threads;
   the sender is not in it). The figure is the highest rate with no datagram lost at it and every lower rate.
4. **Over NATS** (``--nats-workers 1,2,4``, at ``--nats-rate``): the same path with a private nats-server, W
   ``abusedesk worker --stage flows`` processes and one ``--stage cases``; the collector only writes the files
   and hands them on. Timed until both stages' backlogs are empty; the workers' CPU is counted (start-up left
   out), and the findings are compared: W workers take turns on each service's detector state, so W > 1 must
   make the findings of 1 (docs/dev/telemetry.md).

    .venv/bin/python benchmarks/flows.py [--datagrams N] [--rows N] [--e2e-rates R,R,...] [--nats-workers W,W,...]
        [--parts decode,detection,e2e,nats] [--quick]

The last line is one JSON object with our figures, the peers' and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # pipeline_nats's NATS server and process helpers

from abusedesk.detectors.flowbase import with_addr_keys, with_ms
from abusedesk.telemetry.decoder import FlowDecoder
from abusedesk.telemetry.schema import FLOW_SCHEMA, binary16, v4_keys

T0_MS = 1_795_814_900_000
FIELDS = [(8, 4), (12, 4), (152, 8), (153, 8), (1, 4), (2, 4), (10, 4), (14, 4), (61, 1), (136, 1), (7, 2),
          (11, 2), (4, 1), (6, 1), (60, 1), (5, 1)]  # fmt: skip  # softflowd's IPFIX IPv4 layout
PER = 30  # records per datagram
REC = struct.Struct("!4s4sQQIIIIBBHHBBBB")


def make_datagrams(n: int, per: int = PER, seed: int = 1) -> list[bytes]:
    rnd = np.random.default_rng(seed)
    tmpl_body = struct.pack("!HH", 1024, len(FIELDS)) + b"".join(struct.pack("!HH", *f) for f in FIELDS)
    tmpl_set = struct.pack("!HH", 2, 4 + len(tmpl_body)) + tmpl_body
    out = []
    seq = 0
    for i in range(n):
        recs = []
        for j in range(per):
            t = T0_MS + i
            if (i * per + j) % 200 == 0:  # 0.5 %: 20 sources scanning the ports of one host each (failed SYNs)
                scanner = int(rnd.integers(0, 20))
                src, dst, dport, flags = (
                    (10 << 24) | scanner,
                    (198 << 24) | (51 << 16) | scanner,
                    int(rnd.integers(1, 1024)),
                    2,
                )
            else:  # completed TCP to web ports of random hosts
                src = (10 << 24) | int(rnd.integers(0, 1 << 16))
                dst = (198 << 24) | (51 << 16) | int(rnd.integers(0, 1 << 16))
                dport, flags = (80, 443, 8080)[j % 3], 0x1B
            recs.append(REC.pack(src.to_bytes(4, "big"), dst.to_bytes(4, "big"), t, t + 20, 60 * 3, 3, 1, 2, 0, 0,
                                 int(rnd.integers(1024, 65535)), dport, 6, flags, 4, 0))  # fmt: skip
        data = b"".join(recs)
        sets = (tmpl_set if i % 16 == 0 else b"") + struct.pack("!HH", 1024, 4 + len(data)) + data
        out.append(struct.pack("!HHIII", 10, 16 + len(sets), T0_MS // 1000, seq, 0) + sets)
        seq += per
    return out


def bench_decode(datagrams: list[bytes]) -> dict[str, float]:
    best = 0.0
    for _ in range(3):
        dec = FlowDecoder()
        t = time.perf_counter()
        for i, d in enumerate(datagrams):
            dec.feed(d, "127.0.0.1")
            if i & 511 == 511:
                dec.take()
        dec.take()
        dt = time.perf_counter() - t
        best = max(best, dec.stats.flows / dt)
    return {"flows_per_s": best}


def bench_netflow_pkg(datagrams: list[bytes]) -> float | None:
    try:
        from netflow.utils import parse_packet
    except ImportError:  # the peer is part of the measurement: without it the run is not the benchmark
        raise SystemExit(
            "benchmarks/flows.py: the peer package `netflow` is not installed (the dev extra has it)"
        ) from None
    sample = datagrams[: max(16, min(len(datagrams), 2000))]
    templates: dict[str, dict[Any, Any]] = {"netflow": {}, "ipfix": {}}
    t = time.perf_counter()
    n = 0
    for d in sample:
        pkt = parse_packet(d, templates)
        n += len(pkt.flows)
    return n / (time.perf_counter() - t)


def bench_nfdump(datagrams: list[bytes], work: Path) -> dict[str, float] | None:
    nfcapd, nfdump = shutil.which("nfcapd"), shutil.which("nfdump")
    if not nfcapd or not nfdump:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = work / "nfcapd"
    d.mkdir()
    proc = subprocess.Popen([nfcapd, "-w", str(d), "-b", "127.0.0.1", "-p", str(port), "-t", "3600"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, dg in enumerate(datagrams):
            s.sendto(dg, ("127.0.0.1", port))
            if i % 100 == 99:
                time.sleep(0.001)
    time.sleep(1.0)
    proc.terminate()
    proc.wait(20)
    files = sorted(p for p in d.rglob("nfcapd.*") if p.is_file())
    if not files:
        return None
    f = str(files[-1])
    out: dict[str, float] = {}
    stat = subprocess.run([nfdump, "-r", f, "-I"], capture_output=True, text=True, check=False)
    flows = next((int(line.split(":")[1]) for line in stat.stdout.splitlines() if line.startswith("Flows:")), 0)
    out["flows_in_file"] = flows
    for name, args in (
        ("filter", ["-q", "dst port 23 and src port 1"]),
        ("aggregate", ["-q", "-s", "srcip", "-n", "10"]),
    ):
        t = time.perf_counter()
        subprocess.run([nfdump, "-r", f, *args], capture_output=True, check=True)
        out[f"{name}_flows_per_s"] = flows / (time.perf_counter() - t)
    return out


def synthetic_rows(n: int, seed: int = 2) -> pa.Table:
    """Benign background (completed TCP to 80/443/...) plus abuse: ~0.5 % of rows are failed SYNs from 40 of the
    2,000 services' sources, half of them scanning one host's ports, half port 23 across hosts."""
    rnd = np.random.default_rng(seed)
    services = 2000
    src_i = rnd.integers(0, services, n)
    dst = rnd.integers(0, 1 << 24, n)
    dport = rnd.choice(np.array([80, 443, 53, 123, 8080], np.uint16), n)
    flags = np.full(n, 0x1B, np.uint8)
    proto = np.full(n, 6, np.uint8)
    bad = rnd.random(n) < 0.005
    k = int(bad.sum())
    src_i[bad] = rnd.integers(0, 40, k)
    dport[bad] = rnd.integers(1, 1024, k)
    flags[bad] = 0x02
    # even abusive sources scan one host's ports (vertical), odd ones port 23 across hosts (horizontal)
    vertical = bad & (src_i % 2 == 0)
    dst[vertical] = src_i[vertical] * 7919
    dport[bad & (src_i % 2 == 1)] = 23
    ts = T0_MS + np.sort(rnd.integers(0, 3_600_000, n))
    octets = np.zeros((n, 4), np.uint8)
    octets[:, 0] = 10
    octets[:, 2] = (src_i >> 8) & 0xFF
    octets[:, 3] = src_i & 0xFF
    doct = np.zeros((n, 4), np.uint8)
    doct[:, 0] = 203
    doct[:, 1] = (dst >> 16) & 0xFF
    doct[:, 2] = (dst >> 8) & 0xFF
    doct[:, 3] = dst & 0xFF
    cols = {
        "time_start": pa.array(ts, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "time_end": pa.array(ts + 50, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "proto": pa.array(proto),
        "src_addr": binary16(v4_keys(octets)).cast(pa.binary()),
        "dst_addr": binary16(v4_keys(doct)).cast(pa.binary()),
        "src_port": pa.array(rnd.integers(1024, 65535, n).astype(np.uint16)),
        "dst_port": pa.array(dport),
        "tcp_flags": pa.array(flags),
        "packets": pa.array(rnd.integers(1, 20, n).astype(np.uint64)),
        "bytes": pa.array(rnd.integers(60, 20000, n).astype(np.uint64)),
        "input_if": pa.array(np.zeros(n, np.uint32)),
        "exporter": pa.array(np.full(n, "bench", object), pa.string()),
        "service_id": pa.array([f"svc-{i}" for i in range(services)], pa.string()).take(pa.array(src_i)),
        "project_id": pa.array(np.full(n, "prj", object), pa.string()),
        "customer_id": pa.array(np.full(n, "cus", object), pa.string()),
        "spoofed": pa.array(np.zeros(n, bool)),
    }
    assert set(FLOW_SCHEMA.names) <= set(cols)
    return pa.table(cols)


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"benchmarks/flows.py: no {field} in /proc/self/status")


def peak_reset_mb() -> float:
    """The resident size now, with the peak (VmHWM) reset to it (Linux: ``echo 5 > /proc/self/clear_refs``), so
    that the peak read after a part is that part's own, not the input's making before it."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def peak_mb() -> float:
    return _status_mb("VmHWM")


def bench_detection(rows: int, chunk: int) -> dict[str, Any]:
    from abusedesk.config import Settings
    from abusedesk.plugins import build_flow_detectors
    from abusedesk.policy.loader import load_policy

    s = Settings(detectors={"load_test": {"provider_ranges": ["203.0.0.0/16"]}})
    detectors = build_flow_detectors(load_policy(None), s)
    table = synthetic_rows(rows)
    df_all = pl.from_arrow(table)
    assert isinstance(df_all, pl.DataFrame)
    df_all = with_addr_keys(with_ms(df_all))  # as the flows stage hands it over
    rss0 = peak_reset_mb()
    states = {d.name: d.new_state() for d in detectors}
    findings = 0
    t = time.perf_counter()
    for off in range(0, rows, chunk):
        part = df_all.slice(off, chunk)
        wm = part["time_end"].max()
        for d in detectors:
            findings += len(d.detect(part, states[d.name]))
            d.flush(states[d.name], wm)  # type: ignore[arg-type]
    dt = time.perf_counter() - t
    # the peer: a bare Polars group-by of the horizontal-scan aggregate over the same rows, nothing else
    t = time.perf_counter()
    (
        df_all.filter((pl.col("tcp_flags") & 0x12) == 0x02)
        .group_by([(pl.col("time_start").dt.epoch("ms") // 300_000).alias("w"), "src_addr", "dst_port"])
        .agg(pl.col("dst_addr").n_unique())
        .filter(pl.col("dst_addr") >= 25)
    )
    bare = rows / (time.perf_counter() - t)
    # one detector partition of state: the largest dumped state, as JSON bytes
    state_bytes = max(len(json.dumps(d.dump_state(states[d.name]))) for d in detectors)
    return {"rows": rows, "rows_per_s": rows / dt, "findings": findings, "peak_rss_growth_mb": peak_mb() - rss0,
            "largest_state_json_bytes": state_bytes, "bare_polars_group_by_rows_per_s": bare}  # fmt: skip


SENDER = """
import socket, struct, sys, time
data = open(sys.argv[1], "rb").read()
port, rate = int(sys.argv[2]), float(sys.argv[3])  # datagrams per second (0: as fast as it can)
msgs = []
off = 0
while off < len(data):
    (n,) = struct.unpack_from("!H", data, off)
    msgs.append(data[off + 2 : off + 2 + n])
    off += 2 + n
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
addr = ("127.0.0.1", port)
t0 = time.perf_counter()
i = 0
while i < len(msgs):  # paced: each moment, what is due by then (bursts of a fraction of a millisecond)
    due = len(msgs) if rate <= 0 else min(len(msgs), int((time.perf_counter() - t0) * rate) + 1)
    while i < due:
        s.sendto(msgs[i], addr)
        i += 1
    if i < len(msgs):
        time.sleep(0.0002)
print(time.perf_counter() - t0)
"""


def write_inventory(path: Path) -> Path:
    """The end-to-end inventory: one service owning 10.0.0.0/16, the datagrams' sources."""
    path.write_text(json.dumps({
        "customers": [{"id": "cus", "name": "Bench", "contact_email": "abuse@example.com"}],
        "projects": [{"id": "prj", "customer_id": "cus", "name": "p"}],
        "services": [{"id": "svc", "project_id": "prj", "kind": "vm", "name": "s", "hostnames": []}],
        "accounts": [],
        "allocations": [{"prefix": "10.0.0.0/16", "service_id": "svc", "valid_from": "2020-01-01T00:00:00Z",
                         "valid_to": ""}],
    }))  # fmt: skip
    return path


def bench_end_to_end(datagrams: list[bytes], work: Path, rate: float, nats_workers: int = 0) -> dict[str, Any]:
    """The datagrams sent at ``rate`` flows/s (0: unpaced) by another process to a collector on loopback, through
    every stage to findings on SQLite. Wall time from the first datagram to the last finding stored; CPU time of
    this process (collector, hand-off and, in-process, pipeline threads; the sender is not in it) and of the
    workers; the socket's drops.

    ``nats_workers`` 0: the embedded default (the in-process bus, the collector's process runs the stages).
    W > 0: a private nats-server, W ``abusedesk worker --stage flows`` processes and one ``--stage cases``; the
    collector only hands closed files on."""
    from pipeline_nats import NatsServer, cpu_seconds, stop_process
    from sqlalchemy import func, select

    from abusedesk.config import Settings
    from abusedesk.inventory.service import InventoryService
    from abusedesk.runtime import Runtime
    from abusedesk.stages import FINDINGS_NEW, TELEMETRY_CLOSED
    from abusedesk.store.tables.cases import FindingRow
    from abusedesk.telemetry.collector import Collector

    work.mkdir(parents=True)
    data_dir = work / "e2e"
    with contextlib.ExitStack() as stack:
        procs: list[subprocess.Popen[bytes]] = []
        env: dict[str, Any] = {"data_dir": data_dir, "notify_backend": "null", "control_backend": "null"}
        if nats_workers:
            server = NatsServer(work / "nats")
            stack.callback(server.stop)
            env |= {"bus": "nats", "nats_url": server.url}
        rt = Runtime.open(Settings(**env))
        stack.callback(rt.close)
        InventoryService(rt).import_file(write_inventory(work / "inventory.json"))
        # in process: files of 500k flows; over NATS smaller ones, so that several workers have files to share
        rt.settings.telemetry.rotate_rows = 100_000 if nats_workers else 500_000
        if nats_workers:
            worker_env = {**os.environ, **{f"ABUSEDESK_{k.upper()}": str(v) for k, v in env.items()}}
            for n, stage in enumerate(["flows"] * nats_workers + ["cases"]):
                with (work / f"worker-{n}-{stage}.log").open("wb") as log:
                    procs.append(subprocess.Popen([str(Path(sys.executable).parent / "abusedesk"), "worker",
                                                   "--stage", stage], env=worker_env, stdout=log,
                                                  stderr=subprocess.STDOUT))  # fmt: skip
                stack.callback(stop_process, procs[-1])
            t0 = time.perf_counter()  # the clock starts once every worker is connected and its consumer made
            while (server.monitoring("jsz").get("consumers", 0) < 2
                   or server.monitoring("connz").get("num_connections", 0) < len(procs)):  # fmt: skip
                if any(p.poll() is not None for p in procs) or time.perf_counter() - t0 > 300:
                    raise SystemExit(f"benchmarks/flows.py: the workers did not start; see {work}/worker-*.log")
                time.sleep(0.25)
        before = {p.pid: cpu_seconds(p.pid) for p in procs}
        c = Collector(rt, "127.0.0.1:0", take_every=1024, drain=not nats_workers)
        result: dict[str, Any] = {}
        th = threading.Thread(target=lambda: result.update(stats=c.run(idle_exit=1.0, duration=600)))
        th.start()
        c.ready.wait(30)
        # the sender is another process, so it takes no time from the collector's interpreter
        blob = work / "datagrams.bin"
        blob.write_bytes(b"".join(struct.pack("!H", len(d)) + d for d in datagrams))
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        sent = subprocess.run([sys.executable, "-c", SENDER, str(blob), str(c.port), str(rate / PER)], check=True,
                              capture_output=True, text=True)  # fmt: skip
        th.join()
        rt.drain()
        while nats_workers and (
            rt.bus.stage_backlog(TELEMETRY_CLOSED, "flows") or rt.bus.stage_backlog(FINDINGS_NEW, "cases")
        ):
            if time.perf_counter() - t > 900:
                raise SystemExit(f"benchmarks/flows.py: the workers did not finish; see {work}/worker-*.log")
            time.sleep(0.05)
        dt = time.perf_counter() - t - 1.0  # the idle second before the collector gives up
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        workers_cpu = sum(cpu_seconds(p.pid) - before[p.pid] for p in procs)
        with rt.sessions() as sess:
            n_findings = sess.scalar(select(func.count()).select_from(FindingRow))
    cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    stats = result["stats"].to_dict()
    flows = stats["decode"]["flows"]
    return {"rate": rate, "nats_workers": nats_workers, "sent_flows": len(datagrams) * PER,
            "send_seconds": float(sent.stdout.strip()), "flows": flows, "flows_per_s": flows / dt, "seconds": dt,
            "cpu_seconds": cpu, "workers_cpu_seconds": workers_cpu,
            "flows_per_cpu_s": flows / (cpu + workers_cpu) if cpu + workers_cpu else 0.0,
            "socket_drops": stats["socket_drops"], "lost_records": stats["decode"]["lost_records"],
            "findings": n_findings}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datagrams", type=int, default=40_000)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--chunk", type=int, default=2_000_000)
    ap.add_argument("--e2e-rates", type=floats, default=[250_000.0, 500_000.0, 750_000.0, 1_000_000.0],
                    help="Paced send rates in flows/s, comma-separated (0: unpaced).")  # fmt: skip
    ap.add_argument("--e2e-seconds", type=float, default=4.0, help="Seconds of sending at each rate.")
    ap.add_argument("--e2e-min-datagrams", type=int, default=2000)
    ap.add_argument("--nats-workers", type=lambda v: [int(x) for x in v.split(",") if x], default=[1, 2, 4],
                    help="Flows workers over NATS, comma-separated (empty: no NATS runs).")  # fmt: skip
    ap.add_argument("--nats-rate", type=float, default=500_000.0, help="Paced send rate of the NATS runs.")
    ap.add_argument("--parts", type=lambda v: set(v.split(",")), default={"decode", "detection", "e2e", "nats"},
                    help="Which parts to run: decode,detection,e2e,nats.")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="Tiny sizes (the smoke test; no NATS runs).")
    a = ap.parse_args()
    if a.quick:
        a.datagrams, a.rows, a.chunk, a.e2e_rates, a.e2e_min_datagrams = 300, 20_000, 5_000, [20_000.0], 200
        a.e2e_seconds, a.nats_workers = 0.5, []
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "decode" in a.parts:
            out |= run_decode(a, work)
        if "detection" in a.parts:
            det = bench_detection(a.rows, a.chunk)
            print(f"detection: {det}", flush=True)
            out |= {
                "detection_rows": det["rows"],
                "detection_rows_per_s": round(det["rows_per_s"]),
                "bare_polars_group_by_rows_per_s": round(det["bare_polars_group_by_rows_per_s"]),
                "detection_ratio_vs_bare_group_by": round(det["rows_per_s"] / det["bare_polars_group_by_rows_per_s"],
                                                          2),
                "detection_peak_rss_growth_mb": round(det["peak_rss_growth_mb"]),
            }  # fmt: skip
        if "e2e" in a.parts:
            out |= run_e2e(a, work)
        if "nats" in a.parts and a.nats_workers:
            runs = {}
            for w in a.nats_workers:
                n = max(a.e2e_min_datagrams, int(a.nats_rate * a.e2e_seconds / PER))
                run = bench_end_to_end(make_datagrams(n, seed=3), work / f"nats-{w}", a.nats_rate, nats_workers=w)
                print(f"end to end over NATS, {w} flows worker(s), at {a.nats_rate:,.0f} flows/s: {run}", flush=True)
                runs[str(w)] = {"drops": run["socket_drops"], "flows": run["flows"], "findings": run["findings"],
                                "flows_per_s": round(run["flows_per_s"]), "seconds": round(run["seconds"], 2),
                                "flows_per_cpu_s": round(run["flows_per_cpu_s"])}  # fmt: skip
            out["nats_rate_flows_per_s"] = round(a.nats_rate)
            out["nats_runs"] = runs
    print(json.dumps(out))


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def run_decode(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    datagrams = make_datagrams(a.datagrams)
    ours = bench_decode(datagrams)
    print(f"decode (ours, into Arrow): {ours['flows_per_s']:,.0f} flows/s", flush=True)
    peer = bench_netflow_pkg(datagrams)
    print(f"decode (netflow package, Python objects): {peer or 0:,.0f} flows/s", flush=True)
    nf = bench_nfdump(datagrams, work)
    print(f"nfdump on its own file: {nf}", flush=True)
    return {
        "decode_flows_per_s": round(ours["flows_per_s"]),
        "netflow_pkg_flows_per_s": round(peer) if peer else None,
        "decode_ratio_vs_netflow_pkg": round(ours["flows_per_s"] / peer, 1) if peer else None,
        "nfdump_filter_flows_per_s": round(nf["filter_flows_per_s"]) if nf else None,
        "nfdump_aggregate_flows_per_s": round(nf["aggregate_flows_per_s"]) if nf else None,
    }


def run_e2e(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Door to finding at paced rates, in process: the highest with no datagram lost is the figure."""
    runs = []
    for i, rate in enumerate(a.e2e_rates):
        n = max(a.e2e_min_datagrams, int(rate * a.e2e_seconds / PER))
        run = bench_end_to_end(make_datagrams(n, seed=3), work / f"e2e-{i}", rate)
        runs.append(run)
        print(f"end to end at {rate:,.0f} flows/s: {run}", flush=True)
    # conservative on a shared machine: the highest rate with no loss at it and at every lower rate
    lossless = []
    for r in sorted(runs, key=lambda r: r["rate"]):
        if r["socket_drops"] != 0 or r["flows"] != r["sent_flows"]:
            break
        lossless.append(r)
    e2e = lossless[-1] if lossless else min(runs, key=lambda r: r["rate"])
    return {
        "e2e_lossless_rate_flows_per_s": round(e2e["rate"]) if lossless else None,
        "e2e_flows_per_s": round(e2e["flows_per_s"]),
        "e2e_flows_per_cpu_s": round(e2e["flows_per_cpu_s"]),
        "e2e_socket_drops": e2e["socket_drops"],
        "e2e_findings": e2e["findings"],
        "e2e_runs": {str(round(r["rate"])): {"drops": r["socket_drops"], "flows": r["flows"],
                                             "flows_per_s": round(r["flows_per_s"]),
                                             "flows_per_cpu_s": round(r["flows_per_cpu_s"])} for r in runs},
    }  # fmt: skip


if __name__ == "__main__":
    main()
