"""Start-up time of the ``abusedesk`` command (issue 11, item 5: under 0.5 s for ``--help`` and read-only commands).

Each command is run as a new process ``--repeats`` times, one after another, and the median wall time is kept.
The peer, measured in the same run, is the floor every Python command line pays: the interpreter starting and
importing Typer and SQLAlchemy's ORM (``python -c "import typer, sqlalchemy.orm"``), i.e. what any
Typer-over-SQLAlchemy tool needs before it does anything. The last line is one JSON object with our figures, the
peer's and the ratio of our slowest read-only command to the peer.

    .venv/bin/python benchmarks/cli_startup.py [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _time(argv: list[str], env: dict[str, str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=120)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{argv} failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="2 repeats (the smoke test)")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("ABUSEDESK_LOG_LEVEL", None)
    py = sys.executable
    cli = [py, "-c", "import sys; from abusedesk.cli.main import main; sys.argv[0] = 'abusedesk'; main()"]
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "desk")
        for setup in (["init"], ["audit", "keygen"]):  # a new desk: its database, and the key that signs the audit head
            subprocess.run([*cli, "--data-dir", data, *setup], env=env, check=True, capture_output=True, timeout=120)
        ours = {
            "--help": _time([*cli, "--help"], env, repeats),
            "version": _time([*cli, "version"], env, repeats),
            "kinds": _time([*cli, "kinds"], env, repeats),
            "policy show": _time([*cli, "policy", "show"], env, repeats),
            "inventory whois": _time([*cli, "--data-dir", data, "inventory", "whois", "192.0.2.1"], env, repeats),
            "pipeline status": _time([*cli, "--data-dir", data, "pipeline", "status"], env, repeats),
            "audit verify": _time([*cli, "--data-dir", data, "audit", "verify"], env, repeats),
        }
    peer = _time([py, "-c", "import typer, sqlalchemy.orm"], env, repeats)
    bare = _time([py, "-c", "pass"], env, repeats)
    for name, seconds in ours.items():
        print(f"abusedesk {name:<14} {seconds * 1000:7.0f} ms")
    print(f"peer: python + typer + sqlalchemy.orm {peer * 1000:7.0f} ms (bare interpreter {bare * 1000:.0f} ms)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    slowest_read = max(v for k, v in ours.items() if k not in ("--help", "version", "kinds"))
    print(
        json.dumps(
            {
                "benchmark": "cli_startup",
                "repeats": repeats,
                "ours_s": {k: round(v, 3) for k, v in ours.items()},
                "peer": "python -c 'import typer, sqlalchemy.orm'",
                "peer_s": round(peer, 3),
                "bare_python_s": round(bare, 3),
                "ratio_help_to_peer": round(ours["--help"] / peer, 2),
                "ratio_slowest_read_to_peer": round(slowest_read / peer, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
