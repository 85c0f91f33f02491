"""The flows stage (``telemetry.closed``): one closed flow file → attribution → flow detectors → findings.

Per file, a chunk of ``telemetry.detect_chunk_rows`` rows at a time (memory bounded by the chunk, not the file):

1. **Attribution** with the inventory's batch index: every flow's source and destination address at the flow's
   start time, in one vectorised ``lookup_batch`` each. A flow whose source is a service's is that service's. A flow
   whose source *and* destination are no one's is ``spoofed`` (the provider carries no transit) and is attributed
   by its exporter's ingress interface (``telemetry.interfaces``), else counted as ``unattributed``. A flow whose
   source is not ours but whose destination is (inbound traffic) is no customer's doing: counted, not detected on.
2. **Partitions**: the attributed flows split by service; each partition runs through the detector runner with its
   state (``detector_state``, the same table and transaction as the event detectors'), so open windows survive a
   restart and a partition could run on another worker.
3. **Consent** (clause 1.3): each finding is judged against the consent registry; a consented one is stored at once
   without a case (``data.consent``), one beyond its consent becomes a ``load-test`` finding of its own; the rest go
   on to the cases stage on ``findings.new``.

The stage's message names the file; the stage reads it from the telemetry raw store. A file handled twice makes
the same findings (ids are content hashes), which the case engine counts as duplicates.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite

from abusedesk.bus.base import StageBatch
from abusedesk.consent import ConsentService, Verdict
from abusedesk.detectors.base import Detector
from abusedesk.detectors.flowbase import with_addr_keys, with_ms
from abusedesk.detectors.runner import DetectorRunner
from abusedesk.domain.records import Finding
from abusedesk.runtime import Runtime
from abusedesk.stages import FINDINGS_NEW
from abusedesk.store.tables.cases import FindingRow
from abusedesk.store.tables.inventory import ProjectRow, ServiceRow
from abusedesk.telemetry.schema import key_halves
from abusedesk.telemetry.store import resolve

log = logging.getLogger(__name__)
FINDINGS = cast(Table, FindingRow.__table__)


class Attributor:
    """Columns of ownership for a flow table, from the inventory's index and the interface map."""

    def __init__(self, rt: Runtime) -> None:
        from abusedesk.inventory.service import InventoryService

        self.rt = rt
        self.inventory = InventoryService(rt)
        self.interfaces = dict(rt.settings.telemetry.interfaces)
        self._iface_owner: dict[str, tuple[str, str | None, str | None]] | None = None

    def _owners(self) -> dict[str, tuple[str, str | None, str | None]]:
        if self._iface_owner is None:
            wanted = set(self.interfaces.values())
            owners: dict[str, tuple[str, str | None, str | None]] = {}
            if wanted:
                with self.rt.sessions() as s:
                    for sid, pid, cid in s.execute(
                        select(ServiceRow.id, ServiceRow.project_id, ProjectRow.customer_id)
                        .join(ProjectRow, ProjectRow.id == ServiceRow.project_id, isouter=True)
                        .where(ServiceRow.id.in_(wanted))
                    ):
                        owners[sid] = (sid, pid, cid)
            self._iface_owner = {k: owners[v] for k, v in self.interfaces.items() if v in owners}
        return self._iface_owner

    def _owner_by_interface(self, table: pa.Table, rows: npt.NDArray[np.intp], owner: npt.NDArray[np.int64],
                            lists: tuple[list[str], list[str | None], list[str | None]]) -> None:  # fmt: skip
        """Spoofed flows: their owner by the exporter's ingress interface (``telemetry.interfaces``), looked up
        once per distinct (exporter, interface), not per flow; a service missing from the lists is appended."""
        owners = self._owners()
        if not owners:
            return
        taken = pa.array(rows)
        exporters = pc.dictionary_encode(table["exporter"].take(taken).cast(pa.string())).combine_chunks()
        ifs = table["input_if"].take(taken).to_numpy().astype(np.int64)
        pairs = exporters.indices.to_numpy().astype(np.int64) << 32 | ifs
        uniq, inverse = np.unique(pairs, return_inverse=True)
        names = exporters.dictionary.to_pylist()
        position = {sid: i for i, sid in enumerate(lists[0])}
        found = np.full(len(uniq), -1, np.int64)
        for j, pair in enumerate(uniq.tolist()):
            hit = owners.get(f"{names[pair >> 32]}/{pair & 0xFFFFFFFF}")
            if hit is None:
                continue
            if hit[0] not in position:
                position[hit[0]] = len(lists[0])
                lists[0].append(hit[0])
                lists[1].append(hit[1])
                lists[2].append(hit[2])
            found[j] = position[hit[0]]
        owner[rows] = found[inverse]

    def attribute(self, table: pa.Table, counts: Counter[str]) -> pl.DataFrame:
        """The detectors' frame: flows of ours with service/project/customer and ``spoofed``; others counted."""
        index = self.inventory.index()
        t_us = pc.cast(table["time_start"], pa.int64()).to_numpy() * 1000
        halves = {"src_addr": key_halves(table["src_addr"]), "dst_addr": key_halves(table["dst_addr"])}
        src_rows = index.lookup_batch(halves["src_addr"], t_us)
        src_ours = src_rows >= 0
        # the destination matters only for flows from no one of ours (inbound, or spoofed): looked up for those
        dst_ours = np.zeros(len(src_rows), bool)
        others = np.flatnonzero(~src_ours)
        if len(others):
            dst_ours[others] = index.lookup_batch(halves["dst_addr"][others], t_us[others]) >= 0
        spoofed = ~src_ours & ~dst_ours
        # the owner of each flow as a position in the index's service list (-1: no one), never a Python loop per
        # flow: service, project and customer columns are one ``take`` each from those lists
        services, projects, customers = list(index.service_ids), list(index.project_ids), list(index.customer_ids)
        owner = np.full(len(src_rows), -1, np.int64)
        if len(index.alloc_service):
            owner[src_ours] = index.alloc_service[src_rows[src_ours]]
        if spoofed.any():
            self._owner_by_interface(table, np.flatnonzero(spoofed), owner, (services, projects, customers))
        keep = owner >= 0
        counts["flows"] += table.num_rows
        counts["inbound"] += int((~src_ours & dst_ours).sum())
        counts["unattributed"] += int((spoofed & ~keep).sum())
        counts["spoofed"] += int((spoofed & keep).sum())
        counts["attributed"] += int(keep.sum())
        if not keep.any():
            return pl.DataFrame()
        everyone = bool(keep.all())
        idx = None if everyone else pa.array(np.flatnonzero(keep))
        # the detectors group and test addresses by their integer halves (computed above for attribution) and
        # rebuild the few addresses a finding names from them: the 16-byte columns are not handed over
        sub = table.drop_columns(["src_addr", "dst_addr"])
        if idx is not None:
            sub = sub.take(idx)
        codes = pa.array(owner) if idx is None else pa.array(owner).take(idx)
        for name, values in (("service_id", services), ("project_id", projects), ("customer_id", customers)):
            sub = sub.append_column(name, pa.array(values, pa.string()).take(codes))
        sub = sub.append_column("spoofed", pa.array(spoofed) if idx is None else pa.array(spoofed).take(idx))
        out = pl.from_arrow(sub)
        assert isinstance(out, pl.DataFrame)
        keys = halves if idx is None else {k: v[idx.to_numpy()] for k, v in halves.items()}
        return with_addr_keys(with_ms(out), keys)


def partitions(df: pl.DataFrame) -> dict[str, pl.DataFrame]:
    if df.height == 0:
        return {}
    first = df["service_id"][0]
    if df["service_id"].eq(first).all():  # one service (a chunk of one busy VM's flows): no copy
        return {str(first): df}
    return {str(k[0]): v for k, v in df.partition_by("service_id", as_dict=True, maintain_order=False).items()}


class FlowStage:
    """Runs the flow detectors over each closed flow file (``telemetry.closed``)."""

    def __init__(self, rt: Runtime, detectors: list[Detector] | None = None) -> None:
        self.rt = rt
        if detectors is None:
            from abusedesk.plugins import build_flow_detectors

            detectors = build_flow_detectors(rt.policy, rt.settings)
        self.detectors = detectors
        self.runner = DetectorRunner(rt, detectors)
        self.attributor = Attributor(rt)
        self.consents = ConsentService(rt)
        self.last_counts: Counter[str] = Counter()

    def handle(self, batch: StageBatch) -> None:
        counts: Counter[str] = Counter()
        findings: list[Finding] = []
        for m in batch.messages:
            path = resolve(self.rt.settings.data_dir, m)
            findings.extend(self.detect_file(batch, path, counts))
        self.last_counts = counts
        if not findings:
            return
        version = self.rt.policy.version
        to_cases, consented = self.apply_consent(batch, findings)
        if consented:
            store_consented(batch, consented, version, self.rt.clock.now())
        if to_cases:
            batch.emit(FINDINGS_NEW, {"findings": [f.to_dict() | {"policy_version": version} for f in to_cases]})

    def detect_file(self, batch: StageBatch, path: Any, counts: Counter[str]) -> list[Finding]:
        findings: list[Finding] = []
        pf = pq.ParquetFile(path)
        for rb in pf.iter_batches(batch_size=self.rt.settings.telemetry.detect_chunk_rows):
            df = self.attributor.attribute(pa.Table.from_batches([rb]), counts)
            by_key = partitions(df)
            if by_key:
                findings.extend(self.runner.run(batch.session, by_key))
        counts["files"] += 1
        return findings

    def apply_consent(self, batch: StageBatch, findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
        to_cases: list[Finding] = []
        consented: list[Finding] = []
        for f, verdict in self.consents.judge(batch.session, findings):
            if verdict.consent is None:
                to_cases.append(f)
            elif verdict.consented:
                consented.append(_marked(f, verdict))
            else:
                to_cases.append(_exceeded(f, verdict, self.rt))
        return to_cases, consented


def _marked(f: Finding, v: Verdict) -> Finding:
    from dataclasses import replace

    return replace(f, evidence=(*f.evidence, {"consent": v.consent, "consented": True}))


def _exceeded(f: Finding, v: Verdict, rt: Runtime) -> Finding:
    """A test beyond its consent: a load-test finding of its own (clause 1.3), citing the consent."""
    kind = "load-test"
    what = "above its approved rate" if v.exceeded == "rate" else "outside its approved window"
    return Finding.create(
        detector=f.detector,
        kind=kind,
        clauses=rt.policy.clauses_for_kind(kind),
        group_key=f"consent:{v.consent}",
        window_start=f.window_start,
        window_end=f.window_end,
        severity=rt.policy.severity_for_kind(kind),
        confidence=f.confidence,
        summary=f"consent {v.consent} exceeded ({what}): {f.summary}",
        subject_ip=f.subject_ip,
        customer_id=f.customer_id,
        project_id=f.project_id,
        service_id=f.service_id,
        evidence=(*f.evidence, {"consent": v.consent, "consented": False, "exceeded": v.exceeded}),
    )


def store_consented(batch: StageBatch, findings: list[Finding], version: str | None, now: Any) -> None:
    """Consented findings are kept (the evidence that the test happened) without a case."""
    rows = [
        {
            "id": f.id, "detector": f.detector, "kind": f.kind, "clauses": list(f.clauses), "group_key": f.group_key,
            "window_start": f.window_start, "window_end": f.window_end, "severity": f.severity.value,
            "confidence": f.confidence, "summary": f.summary, "subject_ip": f.subject_ip,
            "customer_id": f.customer_id, "project_id": f.project_id, "service_id": f.service_id, "case_id": None,
            "created_at": now,
            "data": {"event_ids": [], "evidence": list(f.evidence), "policy_version": version,
                     "consent": next((e["consent"] for e in f.evidence if "consent" in e), None)},
        }
        for f in findings
    ]  # fmt: skip
    dialect = batch.session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(FINDINGS)
    batch.session.execute(ins.on_conflict_do_nothing(index_elements=["id"]), rows)
