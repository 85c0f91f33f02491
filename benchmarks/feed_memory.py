"""Feed memory benchmark: peak RSS and time of parsing one large Shadowserver CSV, streamed vs. held whole.

A CSV of ``--size-mb`` is generated in a temporary directory from a real corpus sample (its header, and its rows
repeated with the address column varied over 198.18.0.0/15, the benchmarking range of RFC 2544), then parsed in a
fresh subprocess per side, consuming and discarding the events; the file is deleted afterwards.

- **ours** (``stream``): the parse stage's way since issue 9 item 3: ``Report(raw, opener=...)`` over the file,
  rows read from a text stream, Events yielded one at a time.
- **peer** (``whole``): the same parser given the input whole as bytes, ``Report(raw, data)``, the way the parse
  stage called every parser before. ``--src DIR`` runs the peer from another source tree instead, e.g. an export
  of the commit before this change (``git archive 35e4bba src | tar -x -C /tmp/old``), which also decoded the
  whole text and read it through ``io.StringIO``. ``--peer-max-mb`` skips the peer for larger files.

``--pack gzip`` (or ``zip``) packs the CSV first, as a ``.csv.gz`` (``.csv.zip``) feed file: ours then unpacks it
as it reads, within a budget of ``--max-unpacked-mb`` (the setting ``intake.max_unpacked_bytes`` an operator
would raise for such feeds).

Peak RSS is the child's ``VmHWM`` (``/proc/self/status``), which includes the interpreter and imports (the
``baseline`` figure: the same child that parses nothing). Run:
``.venv/bin/python benchmarks/feed_memory.py [--size-mb 1024] [--sample PATH]``. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT.parent / "shared" / "corpus" / "reports" / "intelmq-shadowserver-testdata" / "scan_dns.csv"
FILENAME = "2026-03-01-scan_dns-example-asn.csv"
_BENCH_NET = int(ipaddress.IPv4Address("198.18.0.0"))  # 198.18.0.0/15: 131,072 addresses


def generate(sample: Path, out: Path, size: int) -> int:
    """Write a CSV of about ``size`` bytes: ``sample``'s header, then its rows again and again, each with another
    address in the ``ip`` column. Returns the number of rows."""
    lines = sample.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [r for r in lines[1:] if r.strip()]
    ip_col = [c.strip('"') for c in header.split(",")].index("ip")
    split_rows = [r.split(",") for r in rows]  # the sample's fields hold no commas inside quotes before "ip"
    n = 0
    written = 0
    with out.open("w", encoding="utf-8", newline="") as fh:
        fh.write(header + "\n")
        chunk: list[str] = []
        while written < size:
            fields = list(split_rows[n % len(split_rows)])
            fields[ip_col] = f'"{ipaddress.IPv4Address(_BENCH_NET + n % 131072)}"'
            line = ",".join(fields) + "\n"
            chunk.append(line)
            written += len(line)
            n += 1
            if len(chunk) >= 10000:
                fh.write("".join(chunk))
                chunk.clear()
        fh.write("".join(chunk))
    return n


def vmhwm_mb() -> float:
    """This process's peak resident set (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(path: Path, mode: str, max_unpacked: int) -> dict[str, Any]:
    """Parse ``path`` in this process (the subprocess side) and report events, issues, seconds and peak RSS."""
    from abusedesk.domain.records import Event, RawInput
    from abusedesk.parsers import mime
    from abusedesk.parsers.base import Report
    from abusedesk.parsers.shadowserver import ShadowserverParser

    raw = RawInput(
        id="0" * 64,
        size=path.stat().st_size,
        channel="file",
        received_at=datetime(2026, 3, 1, tzinfo=UTC),
        meta={"filename": path.name},
    )
    limits = mime.Limits(max_unpacked=max_unpacked)
    events = issues = 0
    t0 = time.perf_counter()
    if mode == "baseline":
        pass
    elif mode == "stream":
        report = Report(raw, opener=lambda: path.open("rb"), limits=limits)
    else:
        report = Report(raw, path.read_bytes(), limits=limits)
    if mode != "baseline":
        for item in ShadowserverParser().parse(report):
            if isinstance(item, Event):
                events += 1
            else:
                issues += 1
    seconds = time.perf_counter() - t0
    return {"mode": mode, "events": events, "issues": issues, "seconds": round(seconds, 2), "vmhwm_mb": vmhwm_mb()}


def pack(path: Path, how: str) -> Path:
    """``path`` gzipped or zipped beside it (the CSV itself removed)."""
    if how == "gzip":
        out = path.with_name(path.name + ".gz")
        with path.open("rb") as src, gzip.open(out, "wb", compresslevel=1) as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    else:
        out = path.with_name(path.name + ".zip")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.write(path, path.name)
    path.unlink()
    return out


def run_child(path: Path, mode: str, src: Path, max_unpacked: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path), "--mode", mode]
    cmd += ["--max-unpacked", str(max_unpacked)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--size-mb", type=float, default=1024.0, help="size of the generated CSV (MB, 10^6 bytes)")
    ap.add_argument("--sample", type=Path, default=SAMPLE, help="the corpus CSV whose header and rows are used")
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="source tree the peer runs from")
    ap.add_argument("--peer-max-mb", type=float, default=200.0, help="skip the peer above this size (0: never run)")
    ap.add_argument("--pack", choices=("none", "gzip", "zip"), default="none", help="pack the CSV first")
    ap.add_argument("--max-unpacked-mb", type=float, default=4096.0, help="the unpacked-bytes budget (MB)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--max-unpacked", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=("stream", "whole", "baseline"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.mode, args.max_unpacked)))
        return
    with tempfile.TemporaryDirectory(prefix="feed-memory-") as tmp:
        path = Path(tmp) / FILENAME
        t0 = time.perf_counter()
        rows = generate(args.sample, path, int(args.size_mb * 1_000_000))
        size = path.stat().st_size
        packed = None
        if args.pack != "none":
            path = pack(path, args.pack)
            packed = path.stat().st_size
        print(f"generated {size / 1e6:.0f} MB, {rows:,} rows in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        ours_src = ROOT / "src"
        budget = int(args.max_unpacked_mb * 1_000_000)
        baseline = run_child(path, "baseline", ours_src, budget)
        ours = run_child(path, "stream", ours_src, budget)
        print(f"ours (stream): {ours}", file=sys.stderr)
        peer = None
        if args.peer_max_mb and args.size_mb <= args.peer_max_mb:
            peer = run_child(path, "whole", args.src, budget)
            print(f"peer (whole, {args.src}): {peer}", file=sys.stderr)
    print(
        json.dumps(
            {
                "benchmark": "feed_memory",
                "file_mb": round(size / 1e6, 1),
                "pack": args.pack,
                "packed_mb": round(packed / 1e6, 1) if packed is not None else None,
                "rows": rows,
                "baseline_vmhwm_mb": baseline["vmhwm_mb"],
                "ours": ours,
                "peer": peer,
                "peer_src": str(args.src) if peer else None,
                "rows_per_s": round(ours["events"] / ours["seconds"]) if ours["seconds"] else None,
            }
        )
    )


if __name__ == "__main__":
    main()
