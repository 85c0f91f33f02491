"""`abusedesk serve` as a process: API up, ARF reports by SMTP and drop folder become findings, SIGTERM ends it."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from abusedesk.runtime import Runtime
from tests.pipeline.spine import arf_report, counts
from tests.support.components import free_port, is_listening, missing, wait_for_port


def test_serve_runs_api_smtp_intake_and_the_pipeline(runtime: Runtime) -> None:
    from tests.pipeline.spine import add_inventory

    add_inventory(runtime)
    api_port, smtp_port = free_port(), free_port()
    drop = runtime.settings.data_dir.parent / "drop"
    drop.mkdir()
    env = {
        **os.environ,
        "ABUSEDESK_NOTIFY_BACKEND": "null",
        "ABUSEDESK_CONTROL_BACKEND": "null",
        "ABUSEDESK_INTAKE__SEND_ACKS": "false",
        "ABUSEDESK_INTAKE__DROP_FOLDER": str(drop),
    }
    exe = Path(sys.executable).with_name("abusedesk")
    cmd = [
        str(exe),
        "--data-dir",
        str(runtime.settings.data_dir),
        "--database-url",
        runtime.settings.sqlalchemy_url,
        "serve",
        "--port",
        str(api_port),
        "--smtp",
        f"127.0.0.1:{smtp_port}",
        "--tick-interval",
        "1",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", api_port, timeout=30)
        wait_for_port("127.0.0.1", smtp_port, timeout=30)
        assert httpx.get(f"http://127.0.0.1:{api_port}/api/v1/openapi.json", timeout=5).status_code == 200
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.sendmail("fbl@mailbox.example.net", ["abuse@provider.example"], arf_report())
        deadline = time.monotonic() + 30
        while counts(runtime)["findings"] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        c = counts(runtime)
        assert (c["raw_inputs"], c["events"], c["findings"], c["cases"]) == (1, 1, 1, 1)
        # a second report about the same sender through the drop folder: a second finding on the same case
        (drop / ".report-2.eml").write_bytes(arf_report(2))
        (drop / ".report-2.eml").rename(drop / "report-2.eml")
        deadline = time.monotonic() + 30
        while counts(runtime)["findings"] < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        c = counts(runtime)
        assert (c["raw_inputs"], c["events"], c["findings"], c["cases"]) == (2, 2, 2, 1)
        assert (drop / ".done" / "report-2.eml").exists()
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out[-3000:]


#: a serve that sends nothing out and lets a client through 4 times, then one a minute
LIMITED = {
    "ABUSEDESK_NOTIFY_BACKEND": "null",
    "ABUSEDESK_CONTROL_BACKEND": "null",
    "ABUSEDESK_INTAKE__SEND_ACKS": "false",
    "ABUSEDESK_INTAKE__API_SUBMISSIONS_BURST": "4",
    "ABUSEDESK_INTAKE__API_SUBMISSIONS_PER_MINUTE": "1",
}


def _serve(runtime: Runtime, port: int, env: dict[str, str], *options: str) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("abusedesk")
    data = ["--data-dir", str(runtime.settings.data_dir), "--database-url", runtime.settings.sqlalchemy_url]
    return subprocess.Popen(
        [str(exe), *data, "serve", "--port", str(port), "--tick-interval", "5", *options],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


@pytest.mark.parametrize("store", ["database", "redis"])
def test_rate_limit_holds_across_two_serve_processes(runtime: Runtime, store: str) -> None:
    """Two `serve` processes on one database: a client alternating between them gets the burst once (issue 10)."""
    from tests.intake.samples import xarf_bytes

    redis_url = "redis://127.0.0.1:6379/11"
    # this run's own keys: another run of the suite on the same Redis (a second checkout, CI) counts apart
    prefix = f"abusedesk-test-{uuid.uuid4().hex}:"
    if store == "redis" and not is_listening(6379):
        missing("Redis is not running on 127.0.0.1:6379")
    env = {
        **LIMITED,
        "ABUSEDESK_INTAKE__API_RATE_LIMIT_STORE": store,
        "ABUSEDESK_INTAKE__API_RATE_LIMIT_REDIS_URL": redis_url,
        "ABUSEDESK_INTAKE__API_RATE_LIMIT_REDIS_PREFIX": prefix,
    }
    ports = [free_port(), free_port()]
    procs = [_serve(runtime, p, env) for p in ports]
    outs: list[str] = []
    try:
        for p in ports:
            wait_for_port("127.0.0.1", p, timeout=30)
        codes: list[int] = []
        details: list[str] = []
        for i in range(10):
            body = xarf_bytes(report_id=f"5d6f3c2a-9a4e-4f5e-8a1b-0c2d3e4f8{i:03d}")
            r = httpx.post(
                f"http://127.0.0.1:{ports[i % 2]}/api/v1/reports",
                content=body,
                headers={"Content-Type": "application/json", "X-Forwarded-For": f"203.0.113.{i + 1}"},
                timeout=10,
            )
            codes.append(r.status_code)
            details.append(r.text[:300])
    finally:
        outs = [_stop(p) for p in procs]
    assert codes.count(202) == 4, (codes, details[:2], [o[-2000:] for o in outs])
    assert codes[4:] == [429] * 6


def _answers(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _children(pid: int) -> list[int]:
    """The worker processes of ``pid`` (spawned interpreters; not multiprocessing's resource tracker)."""
    out = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            out.append(int(child))
    return out


def test_api_workers_share_the_port_keep_the_limits_and_stop_together(runtime: Runtime) -> None:
    """`serve --api-workers 2`: two worker processes answer on one port; the rate limit holds across them (a
    client spread over both gets the burst once); an input stored by a worker is taken by the parent's pipeline;
    a worker that dies is replaced; SIGTERM stops them all and serve exits 0 (issue 10)."""
    from tests.intake.samples import xarf_bytes

    port = free_port()
    proc = _serve(runtime, port, LIMITED, "--api-workers", "2", "--json")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        _answers(f"{base}/healthz", timeout=90)  # the port is serve's; a worker answers once it is up
        deadline = time.monotonic() + 30
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        codes, refs = [], []
        for i in range(10):  # a new connection each: the kernel hands them to either worker
            body = xarf_bytes(report_id=f"5d6f3c2a-9a4e-4f5e-8a1b-0c2d3e4f9{i:03d}")
            r = httpx.post(f"{base}/api/v1/reports", content=body, headers={"Content-Type": "application/json"},
                           timeout=30)  # fmt: skip
            codes.append(r.status_code)
            if r.status_code == 202:
                refs.append((r.json()["status_url"], r.json()["status_token"]))
        assert codes.count(202) == 4 and codes[4:] == [429] * 6, codes
        assert httpx.get(f"{base}/api/v1/cases", timeout=30).status_code == 401  # authentication in every worker
        deadline = time.monotonic() + 30
        statuses: list[str] = []
        while time.monotonic() < deadline:
            statuses = [
                httpx.get(url, headers={"X-Report-Token": token}, timeout=30).json()["status"] for url, token in refs
            ]
            if all(st != "stored" for st in statuses):
                break
            time.sleep(0.2)
        assert statuses == ["parsed"] * 4  # the parent's pipeline loop took what the workers stored
        os.kill(workers[0], signal.SIGKILL)
        deadline, now = time.monotonic() + 30, []
        while time.monotonic() < deadline:
            now = _children(proc.pid)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.2)
        assert len(now) == 2 and workers[0] not in now, now
        for _ in range(4):  # the survivor or the new worker (once it is up) answers
            _answers(f"{base}/healthz", timeout=90)
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out[-3000:]
    assert '"workers": 2' in out
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or b"zombie" in Path(f"/proc/{pid}/status").read_bytes().lower()


def test_api_workers_refuse_a_per_process_rate_limit(runtime: Runtime) -> None:
    exe = Path(sys.executable).with_name("abusedesk")
    data = ["--data-dir", str(runtime.settings.data_dir), "--database-url", runtime.settings.sqlalchemy_url]
    proc = subprocess.run(
        [str(exe), *data, "serve", "--port", str(free_port()), "--api-workers", "3"],
        env={**os.environ, "ABUSEDESK_INTAKE__API_RATE_LIMIT_STORE": "memory"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2  # a configuration error, before anything listens
    assert "intake.api_rate_limit_store" in proc.stderr.decode() + proc.stdout.decode()
