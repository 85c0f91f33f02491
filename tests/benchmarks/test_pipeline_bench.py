"""benchmarks/pipeline.py in --quick mode with tiny numbers: every workload runs, every mail reaches an end.

A smoke test of the benchmark, not of speed: no figure is compared with a goal or a bound. It runs the real
thing (the abusedesk CLI as processes, SMTP on loopback, IntelMQ's bots over the local Redis).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks.support import run_benchmark
from tests.conftest import CORPUS
from tests.support.components import is_listening, missing

MAILS, PRELOAD, ROWS = 30, 10, 200


@pytest.mark.slow
@pytest.mark.corpus
@pytest.mark.integration
def test_quick_run_takes_every_mail_to_its_end_and_ends_with_the_json_line(tmp_path: Path) -> None:
    if not (CORPUS / "reports").is_dir():
        missing("the shared corpus (../shared/corpus/reports) is not beside this checkout")
    if not is_listening(6379):
        missing("Redis is not running on 127.0.0.1:6379 (IntelMQ's bots need it)")
    args = ["--quick", "--mails", str(MAILS), "--preload", str(PRELOAD), "--rows", str(ROWS), "--connections", "2"]
    result = run_benchmark("pipeline.py", args, tmp_path)
    figures = ("mail_per_s", "smtp_mail_per_s", "shadowserver_rows_per_s", "intelmq_rows_per_s", "ratio")
    assert result["benchmark"] == "pipeline"
    assert isinstance(result["machine"], str) and result["machine"]
    for key in figures:  # a rate is 0.0 when its run did not finish: each must have finished
        assert isinstance(result[key], int | float) and result[key] > 0, (key, result[key])

    w = result["workloads"]
    assert w["mail_file"]["accepted"] == MAILS
    assert w["mail_smtp"]["acked"] == MAILS and w["mail_smtp"]["refused"] == 0
    for name, total in (("mail_file", MAILS), ("mail_smtp", MAILS), ("mail_preloaded", MAILS + PRELOAD)):
        ends = w[name]["ends"]
        assert ends["unfinished"] == 0, (name, ends)
        assert ends["duplicate"] == 0, (name, ends)  # every copy is distinct
        assert sum(ends.values()) == total, (name, ends)
        assert ends["case"] > 0, (name, ends)
    assert result["unfinished"] == 0
    # the same mails through both doors end the same way
    assert w["mail_file"]["ends"] == w["mail_smtp"]["ends"]
    assert w["shadowserver"][str(ROWS)]["state"]["cases"] == ROWS
    assert w["intelmq"][str(ROWS)]["events"] == ROWS
    assert not result["mix"]["left_out"] or len(result["mix"]["left_out"]) < result["mix"]["templates"]
