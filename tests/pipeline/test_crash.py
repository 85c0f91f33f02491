"""kill -9 at random points of the pipeline: every acknowledged input reaches its end exactly once.

Real processes, real signals: ``abusedesk intake file`` and ``abusedesk pipeline resume`` (the in-process bus) or
``abusedesk worker --stage ...`` processes over a private nats-server (scale-out) are killed with SIGKILL at
random moments, on the test's database (SQLite or PostgreSQL, as the suite runs), then started again. At the end
the counts must be those of a run without kills: each report one event and one finding, one case per reported
address, nothing waiting, nothing dead-lettered, no audit entry twice (parse batches aside) and an intact chain.

The rounds are bounded (``ROUNDS`` kills, each within a few seconds); ``make crash`` runs many more.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from abusedesk.runtime import Runtime
from abusedesk.store.tables.bus import DeadLetterRow, OutboxRow
from abusedesk.store.tables.intake import RawInputRow
from tests.pipeline.spine import arf_report, assert_no_duplicate_audit, counts

ROUNDS = int(os.environ.get("ABUSEDESK_CRASH_ROUNDS", "4"))
REPORTS = int(os.environ.get("ABUSEDESK_CRASH_REPORTS", "800"))
NATS_REPORTS = int(os.environ.get("ABUSEDESK_CRASH_NATS_REPORTS", "90"))
ADDRESSES = 30  # 198.51.100.1 .. .30, inside the customer's /27
ABUSEDESK = str(Path(sys.executable).with_name("abusedesk"))

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def report(k: int) -> bytes:
    """A distinct RFC 5965 feedback report: its own Message-ID and time, about one of ``ADDRESSES`` addresses."""
    hour, minute = 8 + (k // 60) % 12, k % 60
    arrival = f"Sun, 01 Mar 2026 {hour:02d}:{minute:02d}:{k % 50:02d} +0000"
    return arf_report(k, f"198.51.100.{1 + k % ADDRESSES}", arrival=arrival, tag="crash")


def write_reports(folder: Path, n: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(start, start + n):
        (folder / f"r{k:05d}.eml").write_bytes(report(k))


def cli_env(rt: Runtime, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABUSEDESK_")}
    env |= {
        "ABUSEDESK_DATA_DIR": str(rt.settings.data_dir),
        "ABUSEDESK_DATABASE_URL": rt.settings.sqlalchemy_url,
        "ABUSEDESK_NOTIFY_BACKEND": "null",
        "ABUSEDESK_CONTROL_BACKEND": "null",
    }
    return env | extra


def run_and_kill(args: list[str], env: dict[str, str], after: float) -> int | None:
    """Start ``abusedesk ARGS``; SIGKILL it ``after`` seconds in, unless it ended first (its exit code)."""
    proc = subprocess.Popen([ABUSEDESK, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(after)
        return proc.returncode
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        return None


def assert_exactly_once(rt: Runtime, n: int) -> None:
    c = counts(rt)
    assert (c["raw_inputs"], c["events"], c["findings"], c["cases"]) == (n, n, n, ADDRESSES), c
    with rt.sessions() as s:
        statuses = dict(s.execute(select(RawInputRow.status, func.count()).group_by(RawInputRow.status)).all())
        assert statuses == {"parsed": n}, statuses
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == 0
        assert s.scalar(select(func.count()).select_from(DeadLetterRow)) == 0
    assert_no_duplicate_audit(rt)
    from abusedesk.evidence import audit

    with rt.sessions() as s:
        result: Any = audit.verify(s)
    assert result.ok, result


@pytest.fixture
def crash_rt(spine_rt: Runtime) -> Runtime:
    return spine_rt


def test_kill_9_in_process_reaches_every_end_exactly_once(crash_rt: Runtime, tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    write_reports(folder, REPORTS)
    env = cli_env(crash_rt)
    rng = random.Random(int(os.environ.get("ABUSEDESK_CRASH_SEED", "0")) or None)
    killed = 0
    rounds = 0
    total = REPORTS
    # ROUNDS rounds, and more (bounded) until at least one kill landed mid-way: on a loaded machine start-up alone
    # can outlast a delay; on a quiet one the work can end before it, and then nothing is left to cut short, so
    # each extra round brings fresh reports and kills sooner
    while rounds < ROUNDS or (killed == 0 and rounds < ROUNDS + 8):
        rounds += 1
        if rounds <= ROUNDS:
            args = ["intake", "file", str(folder), "--json"] if rng.random() < 0.6 else ["pipeline", "resume", "--json"]
            delay = rng.uniform(0.8, 4.0)
        else:
            write_reports(folder, REPORTS // 4, start=total)
            total += REPORTS // 4
            args = ["intake", "file", str(folder), "--json"]
            delay = rng.uniform(0.3, 1.5) * 0.85 ** (rounds - ROUNDS - 1)
        if run_and_kill(args, env, after=delay) is None:
            killed += 1
    # the survivors: one more import (what was acknowledged before is a duplicate now), then finish the pipeline
    done = subprocess.run([ABUSEDESK, "intake", "file", str(folder)], env=env, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    resumed = subprocess.run([ABUSEDESK, "pipeline", "resume"], env=env, capture_output=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout.decode() + resumed.stderr.decode()[-2000:]
    assert killed >= 1, "no round was killed mid-way: raise the report count or shorten the delays"
    assert_exactly_once(crash_rt, total)


def test_kill_9_of_nats_workers_reaches_every_end_exactly_once(
    crash_rt: Runtime, tmp_path: Path, nats_url: str
) -> None:
    folder = tmp_path / "reports"
    write_reports(folder, NATS_REPORTS)
    stream = f"CRASH{time.monotonic_ns()}"
    env = cli_env(
        crash_rt,
        ABUSEDESK_BUS="nats",
        ABUSEDESK_NATS_URL=nats_url,
        ABUSEDESK_NATS_STREAM=stream,
        ABUSEDESK_NATS_SUBJECT_PREFIX=stream.lower(),
        ABUSEDESK_NATS_ACK_WAIT="5",  # a killed worker's unacked messages go to its replacement within seconds
    )
    rng = random.Random(int(os.environ.get("ABUSEDESK_CRASH_SEED", "0")) or None)
    stages = ["parse", "attribute", "detect", "replies", "cases"]
    workers: dict[str, subprocess.Popen[bytes]] = {}

    def start(stage: str) -> None:
        workers[stage] = subprocess.Popen(
            [ABUSEDESK, "worker", "--stage", stage], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    try:
        for stage in stages:
            start(stage)
        door = subprocess.Popen([ABUSEDESK, "intake", "file", str(folder)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)  # fmt: skip
        for _ in range(ROUNDS):
            time.sleep(rng.uniform(1.0, 4.0))
            victim = rng.choice(stages)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait(30)
            start(victim)
        assert door.wait(600) == 0, (door.stderr.read() if door.stderr else b"").decode()[-2000:]
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status = subprocess.run([ABUSEDESK, "pipeline", "status", "--json"], env=env, capture_output=True,
                                    timeout=60)  # fmt: skip
            waiting = json.loads(status.stdout)["waiting"] if status.returncode == 0 else -1
            if waiting == 0 and counts(crash_rt)["findings"] >= NATS_REPORTS:
                break
            time.sleep(1.0)
        else:
            raise AssertionError(
                f"the pipeline did not settle in 240 s: {counts(crash_rt)}; status {status.stdout.decode()[-1500:]}"
                f"{status.stderr.decode()[-1500:]}"
            )
    finally:
        for proc in workers.values():
            proc.send_signal(signal.SIGTERM)
        for proc in workers.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert_exactly_once(crash_rt, NATS_REPORTS)
