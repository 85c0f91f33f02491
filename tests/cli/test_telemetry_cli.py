"""`abusedesk telemetry collect|file`: the commands over the collector and the flow files."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abusedesk.cli.main import app
from tests.support.components import free_port
from tests.telemetry.exports import V4_FIELDS, data_set, ipfix, ipfix_template_set, v4_record
from tests.telemetry.test_files import VPC_V2

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("ABUSEDESK_DATA_DIR", "ABUSEDESK_DATABASE_URL", "ABUSEDESK_CONFIG", "ABUSEDESK_POLICY_FILE"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_file_stored_duplicate_and_quarantined(cli: CliRunner, tmp_path: Path) -> None:
    data = tmp_path / "desk"
    good = tmp_path / "vpc.log"
    good.write_text(VPC_V2)
    r = cli.invoke(app, ["--data-dir", str(data), "telemetry", "file", str(good), "--json"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)
    assert row["status"] == "stored" and row["rows"] == 3
    assert len(list((data / "telemetry" / "closed").glob("flows-*.parquet"))) == 1
    r = cli.invoke(app, ["--data-dir", str(data), "telemetry", "file", str(good), "--json"])
    assert json.loads(r.stdout)[0]["status"] == "duplicate"
    bad = tmp_path / "bad.log"
    bad.write_text(VPC_V2.replace("198.51.100.8", "not-an-address"))
    r = cli.invoke(app, ["--data-dir", str(data), "telemetry", "file", str(bad), "--format", "vpc", "--json"])
    assert r.exit_code == 1
    (row,) = json.loads(r.stdout)
    assert row["status"] == "quarantined" and "line 2" in row["error"]
    assert (data / "telemetry" / "quarantine" / f"{row['sha256']}.reason").is_file()
    r = cli.invoke(app, ["--data-dir", str(data), "telemetry", "file", str(good), "--format", "pcap"])
    assert r.exit_code == 2


def test_collect_counts_and_drops(cli: CliRunner, tmp_path: Path) -> None:
    import socket

    port = free_port()
    t = 1_795_814_900_000
    good = ipfix([ipfix_template_set(300, V4_FIELDS), data_set(300, [v4_record("192.0.2.1", "198.51.100.7", t, t, 60,
                                                                               1, 1, 22)] * 3)])  # fmt: skip

    def bound() -> bool:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
        return any(line.split()[1].endswith(f":{port:04X}") for line in lines)

    def send() -> None:
        deadline = time.monotonic() + 60
        while not bound() and time.monotonic() < deadline:  # the command is up when its socket is
            time.sleep(0.05)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for d in (good, b"\x00\x0a\x00", good):
                s.sendto(d, ("127.0.0.1", port))

    sender = threading.Thread(target=send)
    sender.start()
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    r = cli.invoke(app, ["--data-dir", str(tmp_path / "desk"), "telemetry", "collect", "--listen",
                         f"127.0.0.1:{port}", "--idle-exit", "1", "--duration", "30", "--json"])  # fmt: skip
    sender.join()
    assert r.exit_code == 0, r.output
    # the collector's stop handlers are gone again: a later test's Ctrl-C (test_smtp's SIGINT test) still works
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    stats = json.loads(r.stdout)
    assert stats["decode"]["datagrams"] == 3 and stats["decode"]["flows"] == 6
    assert stats["decode"]["dropped"] == {"short header": 1}
    assert stats["files"] == 1 and stats["rows_written"] == 6 and stats["socket_drops"] == 0
