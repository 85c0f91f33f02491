"""The weblog stage (``weblog.stored``): one stored egress log → columns → attribution → crawler detectors → findings.

A log file (or one batch of lines of ``weblog tail``) is ONE input of the pipeline: the door stored its bytes
first, as for every input; the parse stage recognised it and handed it on whole (``Parser.hands_on``). Here it is
read a chunk of ``chunk_bytes`` at a time (memory bounded by the chunk and the detectors' windows, not the log):

1. **Columns**: the chunk's lines as one Arrow string array (no copy), parsed with one RE2 pass into typed
   columns (``weblog/formats.py``). A line that does not parse is counted and named by its line number in the
   input's issues (the first ``MAX_ISSUES``); an input none of whose lines parse is quarantined.
2. **Attribution** with the inventory's batch index: each distinct client address is looked up at the chunk's
   first and last time; only a client whose allocation changed inside the chunk is looked up line by line.
   Requests of addresses that are no service's are counted, not judged.
3. **Partitions** by service, each through the shared detector runner with its state (``detector_state``), the
   crawler detectors (``consumes = "weblog"``) grouping per (client, user agent, target host) with Polars.
4. **Findings** only — a few per crawler, each with a bounded sample of the offending lines (path, status, line
   number, raw input) — go on to the cases stage on ``findings.new``. No Event is made per line or per crawler.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select

from abusedesk.bus.base import StageBatch
from abusedesk.detectors.base import Detector
from abusedesk.detectors.crawls import with_ids
from abusedesk.detectors.runner import DetectorRunner
from abusedesk.domain.records import Finding
from abusedesk.evidence import audit
from abusedesk.runtime import Runtime
from abusedesk.stages import FINDINGS_NEW
from abusedesk.store.tables.intake import RawInputRow
from abusedesk.weblog.formats import FORMATS, parse_lines, split_lines

log = logging.getLogger(__name__)
MAX_ISSUES = 100
_V4_MAPPED = np.uint64(0xFFFF_0000_0000)


def address_halves(clients: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) uint64 (high, low) halves of each address (IPv4 as ::ffff:a.b.c.d) and whether it is one."""
    halves = np.zeros((len(clients), 2), np.uint64)
    ok = np.zeros(len(clients), bool)
    for i, text in enumerate(clients):
        try:
            ip = ipaddress.ip_address(text.strip("[]"))
        except ValueError:
            continue  # Squid logs a host name when log_fqdn is on: not an address the inventory knows
        ok[i] = True
        if ip.version == 4:
            halves[i, 1] = _V4_MAPPED | np.uint64(int(ip))
        else:
            value = int(ip)
            halves[i] = (value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF)
    return halves, ok


def read_chunks(fh: Any, chunk_bytes: int) -> Iterator[bytes]:
    """Whole lines, about ``chunk_bytes`` at a time; a last line without its newline comes last."""
    rest = b""
    while True:
        block = fh.read(chunk_bytes)
        if not block:
            break
        block = rest + block
        end = block.rfind(b"\n") + 1
        if end == 0:
            rest = block
            continue
        rest = block[end:]
        yield block[:end]
    if rest:
        yield rest


class WeblogStage:
    """Runs the crawler detectors over each stored egress log (``weblog.stored``)."""

    def __init__(self, rt: Runtime, detectors: list[Detector] | None = None) -> None:
        from abusedesk.inventory.service import InventoryService

        self.rt = rt
        if detectors is None:
            from abusedesk.plugins import build_detectors

            detectors = build_detectors(rt.policy, rt.settings, "weblog")
        self.runner = DetectorRunner(rt, detectors)
        self.inventory = InventoryService(rt)
        self.last_counts: Counter[str] = Counter()

    def handle(self, batch: StageBatch) -> None:
        counts: Counter[str] = Counter()
        findings: list[Finding] = []
        formats = {str(m["raw_id"]): m.get("format") for m in batch.messages}
        rows = {r.id: r for r in batch.session.scalars(select(RawInputRow).where(RawInputRow.id.in_(formats)))}
        for raw_id, fmt in formats.items():
            row = rows.get(raw_id)
            if row is None:
                log.warning("weblog stage: raw input %s is not recorded; skipped", raw_id)
                continue
            findings.extend(self.detect_input(batch, row, counts, fmt))
        self.last_counts = counts
        if findings:
            version = self.rt.policy.version
            batch.emit(FINDINGS_NEW, {"findings": [f.to_dict() | {"policy_version": version} for f in findings]})

    def detect_input(self, batch: StageBatch, row: RawInputRow, counts: Counter[str],
                     fmt: str | None = None) -> list[Finding]:  # fmt: skip
        """One stored log: parsed chunk by chunk, attributed, judged; its row records lines, issues, status."""
        from abusedesk.parsers.weblog import WeblogParser

        params = self._params(WeblogParser)
        fmt = fmt or row.meta.get("weblog_format")
        if fmt not in FORMATS:
            raise ValueError(f"raw input {row.id}: weblog format {fmt!r} is not one of {', '.join(FORMATS)}")
        issues: list[dict[str, Any]] = []
        tally = {"first": 1, "parsed": 0, "bad": 0}

        def partitions() -> Iterator[dict[str, pl.DataFrame]]:
            with self.rt.raw_store.open(row.blob or row.id) as fh:
                for data in read_chunks(fh, params.chunk_bytes):
                    lines = split_lines(data)
                    chunk = parse_lines(lines, str(fmt), tally["first"])
                    tally["first"] += len(lines)
                    tally["parsed"] += chunk.table.num_rows
                    tally["bad"] += len(chunk.bad)
                    issues.extend({"reason": r, "line": n, "offset": None}
                                  for n, r in chunk.bad[: MAX_ISSUES - len(issues)])  # fmt: skip
                    frame = self.attribute(chunk.table, row.id, counts)
                    if frame.height:
                        yield {str(k[0]): v for k, v in frame.partition_by("service_id", as_dict=True).items()}

        # the chunks of one log go through the detectors as one stream: their states read and written once
        findings = self.runner.run_stream(batch.session, partitions())
        first, parsed, bad = tally["first"], tally["parsed"], tally["bad"]
        counts["lines"] += first - 1
        counts["requests"] += parsed
        counts["bad_lines"] += bad
        if bad > len(issues):
            issues.append({"reason": f"{bad - len(issues)} more lines did not parse", "line": None, "offset": None})
        row.issues = issues
        row.event_count = 0
        row.parsed_at = self.rt.clock.now()
        if parsed == 0:
            row.status = "quarantined"
            row.error = (f"parser weblog: no line of this input reads as a {fmt} log line ({bad} lines tried)"
                         if bad else "parser weblog: the input holds no log line")  # fmt: skip
        audit.append(batch.session, at=row.parsed_at, actor="stage:weblog", action="weblog.read",
                     subject_type="raw_input", subject_id=row.id,
                     payload={"status": row.status, "format": fmt, "lines": first - 1, "requests": parsed,
                              "bad_lines": bad, "findings": len(findings), "error": row.error})  # fmt: skip
        return findings

    def _params(self, cls: Any) -> Any:
        from abusedesk.plugins import plugin_params

        return plugin_params("parsers", cls, self.rt.settings.parsers.get(cls.name, {}))

    def attribute(self, table: pa.Table, raw_id: str, counts: Counter[str]) -> pl.DataFrame:
        """The detectors' frame: requests of a service's addresses, with service/project/customer; others counted."""
        if table.num_rows == 0:
            return pl.DataFrame()
        index = self.inventory.index()
        encoded = pc.dictionary_encode(table["client"]).combine_chunks()
        clients = encoded.dictionary.to_pylist()
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        halves, is_addr = address_halves(clients)
        t_us = (table["time"].to_numpy(zero_copy_only=False) * 1e6).astype(np.int64)
        valid_t = np.isfinite(table["time"].to_numpy(zero_copy_only=False))
        t_us = np.where(valid_t, t_us, 0)
        lo, hi = int(t_us.min()), int(t_us.max())
        at_lo = index.lookup_batch(halves, np.full(len(clients), lo, np.int64))
        at_hi = index.lookup_batch(halves, np.full(len(clients), hi, np.int64))
        rows = at_lo[codes]
        changed = np.flatnonzero((at_lo != at_hi)[codes])  # an allocation began or ended inside the chunk
        if len(changed):
            rows[changed] = index.lookup_batch(halves[codes[changed]], t_us[changed])
        rows = np.where(is_addr[codes] & valid_t, rows, -1)
        keep = rows >= 0
        counts["unattributed"] += int((~keep).sum())
        counts["attributed"] += int(keep.sum())
        if not keep.any():
            return pl.DataFrame()
        cols = index.columns(rows[keep])
        sub = table.filter(pa.array(keep))
        df = pl.from_arrow(sub)
        assert isinstance(df, pl.DataFrame)
        return with_ids(df).with_columns(
            pl.Series("service_id", cols["service_id"].tolist(), pl.String),
            pl.Series("project_id", cols["project_id"].tolist(), pl.String),
            pl.Series("customer_id", cols["customer_id"].tolist(), pl.String),
            pl.lit(raw_id, pl.String).alias("raw_id"),
        )
