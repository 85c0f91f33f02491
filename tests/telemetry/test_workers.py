"""Two flows workers at once (issue 12): files that hold the same services, handled by two transactions that
overlap, make the findings one worker makes, because each (detector, service) state is locked before it is read.

The files are taken in their order here (the second worker starts once the first holds its states): workers that
take them the other way round make as many findings, but a finding that one file alone crossed names that file's
flows (its first and last flow, so its id), see docs/dev/telemetry.md."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from abusedesk.bus.base import StageBatch
from abusedesk.runtime import Runtime
from abusedesk.stages import FINDINGS_NEW
from abusedesk.store.tables.bus import DetectorStateRow
from abusedesk.telemetry.files import read_flow_file
from abusedesk.telemetry.stage import FlowStage

pytestmark = [pytest.mark.integration, pytest.mark.corpus]

RENDEZVOUS_WAIT = 2.0  # seconds a worker waits, after its detection and before its commit, for the other one


def split_recording(corpus: Path, into: Path, parts: int) -> list[Path]:
    """The recorded flows in time order, cut into ``parts`` files: every file holds flows of every service."""
    table = read_flow_file(corpus / "flows" / "flows_v9.csv.gz").replace_schema_metadata(None)
    table = table.take(pc.sort_indices(table, [("time_start", "ascending")]))
    step = -(-table.num_rows // parts)
    paths = []
    for i in range(parts):
        paths.append(into / f"part-{i}.parquet")
        pq.write_table(table.slice(i * step, step), paths[-1])
    return paths


def handle(rt: Runtime, stage: FlowStage, path: Path, before_commit: Any = None) -> set[str]:
    """One file through the stage in one transaction, as a worker runs it; the ids of the findings it made."""
    with rt.sessions() as s, s.begin():
        batch = StageBatch(s, [{"path": str(path)}], bus=rt.bus, stage="flows")
        stage.handle(batch)
        if before_commit is not None:
            before_commit()
    return {f["id"] for o in batch.outputs if o.subject == FINDINGS_NEW for f in o.payload["findings"]}


def states(rt: Runtime) -> dict[tuple[str, str], Any]:
    with rt.sessions() as s:
        return {(r.detector, r.partition_key): r.state for r in s.scalars(select(DetectorStateRow))}


def clear_states(rt: Runtime) -> None:
    with rt.sessions() as s, s.begin():
        s.query(DetectorStateRow).delete()


def test_two_flows_workers_make_the_findings_of_one(lab_rt: Runtime, corpus: Path, tmp_path: Path) -> None:
    files = split_recording(corpus, tmp_path, 2)
    one = FlowStage(lab_rt)
    alone = set().union(*(handle(lab_rt, one, f) for f in files))
    alone_states = states(lab_rt)
    assert alone, "the recording makes findings"
    assert {p for _, p in alone_states} >= {"svc-vscan", "svc-hscan"}, "the files share services with state"
    clear_states(lab_rt)

    # two workers, each with its own stage and transaction: the second takes the next file once the first has
    # detected on its file (read and updated the states) but not committed; the first waits for the second's
    # detection (at most RENDEZVOUS_WAIT) before it commits. Without the state lock the second reads the states
    # the first has not committed, and its commit overwrites the first one's windows.
    first_detected, second_detected = threading.Event(), threading.Event()
    made: dict[int, set[str]] = {}
    errors: list[BaseException] = []

    def first() -> None:
        first_detected.set()
        second_detected.wait(RENDEZVOUS_WAIT)  # with the lock it never comes: the second waits for this commit

    def worker(i: int) -> None:
        try:
            if i == 0:
                made[i] = handle(lab_rt, FlowStage(lab_rt), files[0], first)
            else:
                assert first_detected.wait(120)
                made[i] = handle(lab_rt, FlowStage(lab_rt), files[1], second_detected.set)
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert made[0] | made[1] == alone
    assert not made[0] & made[1], "a finding made twice"
    assert states(lab_rt).keys() == alone_states.keys()


class Died(Exception):
    """A worker dying mid-file: after its detection, before its commit."""


def test_a_worker_dying_mid_file_leaves_the_states_and_releases_them(
    lab_rt: Runtime, corpus: Path, tmp_path: Path
) -> None:
    files = split_recording(corpus, tmp_path, 2)
    alone = set().union(*(handle(lab_rt, FlowStage(lab_rt), f) for f in files))
    clear_states(lab_rt)

    def die() -> None:
        raise Died

    with pytest.raises(Died):
        handle(lab_rt, FlowStage(lab_rt), files[0], die)
    assert states(lab_rt) == {}, "the dead worker's windows were rolled back"
    # the redelivered file on another worker: the locks went with the dead transaction, the findings are made once
    again = FlowStage(lab_rt)
    assert set().union(*(handle(lab_rt, again, f) for f in files)) == alone
