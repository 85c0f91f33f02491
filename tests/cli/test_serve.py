"""`abusedesk serve` as a process: API up, ARF reports by SMTP and drop folder become findings, SIGTERM ends it."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import httpx

from abusedesk.runtime import Runtime
from tests.pipeline.spine import arf_report, counts
from tests.support.components import free_port, wait_for_port


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
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
