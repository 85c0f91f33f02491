"""benchmarks/pipeline_nats.py in --quick mode with a few mails: every run takes every mail to its end.

A smoke test of the benchmark, not of speed: no figure is compared with a goal or a bound. It runs the real
thing: the abusedesk CLI as processes (``intake file``, ``abusedesk worker`` for each message stage), a private
nats-server with JetStream, and scratch databases on the local PostgreSQL.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.benchmarks.support import run_benchmark
from tests.conftest import CORPUS
from tests.support.components import is_listening, missing

MAILS = 40


@pytest.mark.slow
@pytest.mark.corpus
@pytest.mark.integration
def test_quick_run_takes_every_mail_to_its_end_with_each_worker_count(tmp_path: Path) -> None:
    if not (CORPUS / "reports").is_dir():
        missing("the shared corpus (../shared/corpus/reports) is not beside this checkout")
    if not is_listening(5432):
        missing("PostgreSQL is not running on 127.0.0.1:5432 (the benchmark makes scratch databases there)")
    if not (shutil.which("nats-server") or Path("/usr/sbin/nats-server").exists()):
        missing("nats-server is not installed (Debian package nats-server)")
    result = run_benchmark("pipeline_nats.py", ["--quick", "--mails", str(MAILS)], tmp_path)
    assert result["benchmark"] == "pipeline_nats"
    assert result["mails"] == MAILS
    assert isinstance(result["machine"], str) and result["machine"]
    assert len(result["load_average"]) == 3
    # a rate is 0.0 when its run did not finish: each must have finished
    assert isinstance(result["inprocess_mail_per_s"], float) and result["inprocess_mail_per_s"] > 0
    assert set(result["nats_mail_per_s"]) == {"1", "2"}
    for workers, figure in result["nats_mail_per_s"].items():
        assert isinstance(figure, float) and figure > 0, (workers, figure)
    assert result["unfinished"] == 0

    base = result["inprocess"]
    assert base["accepted"] == MAILS
    runs = [("inprocess", base)] + [(f"nats {w}", r) for w, r in result["nats"].items()]
    for name, run in runs:
        ends = run["ends"]
        assert ends["unfinished"] == 0 and ends["duplicate"] == 0, (name, ends)
        assert sum(ends.values()) == MAILS, (name, ends)
        assert ends["case"] > 0, (name, ends)
        # the same mails end the same way whatever carries them between the stages
        assert ends == base["ends"], (name, ends)
        assert run["state"]["findings"] == base["state"]["findings"] == run["state"]["findings_with_case"]
    for w, run in result["nats"].items():
        assert run["accepted"] == MAILS
        assert run["processes"] == 5 * int(w)
        assert run["status"] == {"waiting": 0, "unrelayed": 0, "dead_letters": 0, "stranded_inputs": 0}
    # every process it started is gone (each had this test's TMPDIR in its environment), and so are its scratch
    # directory and databases
    assert _processes_with(f"TMPDIR={tmp_path}".encode()) == []
    assert not list(tmp_path.glob("abusedesk-pipeline-nats-bench-*"))
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as con:
        left = con.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (result["databases"],)).fetchall()
    assert len(result["databases"]) == 3 and left == []


def _processes_with(needle: bytes) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                environ = (proc / "environ").read_bytes()
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if needle in environ.split(b"\0"):
                pids.append(int(proc.name))
    return pids
