"""`abusedesk weblog tail`: a growing log, read a batch of complete lines at a time, each batch one raw input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.weblog.sample import squid_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_tail_takes_new_complete_lines_as_inputs(tmp_path: Path) -> None:
    lines = squid_log().splitlines(keepends=True)
    log = tmp_path / "access.log"
    log.write_bytes(b"".join(lines[:50]))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "ABUSEDESK_DATA_DIR": str(tmp_path / "data"),
           "ABUSEDESK_NOTIFY_BACKEND": "null", "ABUSEDESK_CONTROL_BACKEND": "null"}  # fmt: skip
    env.pop("ABUSEDESK_DATABASE_URL", None)
    cmd = [sys.executable, "-c", "from abusedesk.cli.main import main; main()", "weblog", "tail", str(log),
           "--format", "squid", "--interval", "0.3", "--max-seconds", "120", "--max-inputs", "2",
           "--from-start", "--json"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the first batch is reported before more lines come
        line = proc.stdout.readline()
        first.append(line)
        if line.rstrip() == "]" or not line:
            break
    with log.open("ab") as fh:
        fh.write(b"".join(lines[50:]))
        fh.write(lines[0][:40])  # half a line: waits for its end
    rest, err = proc.communicate(timeout=90)
    out = "".join(first) + rest
    assert proc.returncode == 0, err[-2000:]
    rows = [r for chunk in out.split("\n]\n") if chunk.strip() for r in json.loads(chunk + "\n]")]
    assert [r["status"] for r in rows] == ["parsed", "parsed"]
    assert rows[0]["source"].endswith("access.log@0")
    assert rows[1]["source"].endswith(f"access.log@{len(b''.join(lines[:50]))}")
