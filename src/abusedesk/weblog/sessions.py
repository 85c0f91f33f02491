"""Requests → one summary a (client, user agent, target host, time window): what the 1.14 detectors judge.

An egress log is telemetry: it never becomes one Event per request. A chunk of lines is grouped (pyarrow
``group_by``) into summaries, each one ``crawling`` Event whose ``extra["weblog"]`` holds what the detectors need,
bounded: the request times (up to ``max_times``), the distinct paths with their count, first time and status (up
to ``max_paths``), the times robots.txt was fetched, and the status counts. Memory is bounded by the chunk and the
caps, not by the log.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from abusedesk.domain.records import Event

UNKNOWN_UA = "\x00"  # the log did not record an agent (Squid's native format): not the same as an empty one
KEYS = ["client", "ua", "host", "scheme", "win"]


@dataclass(frozen=True, slots=True)
class Caps:
    window_seconds: int = 600
    max_times: int = 20_000
    max_paths: int = 2_000


def summarise(table: pa.Table, caps: Caps) -> list[dict[str, Any]]:
    """One summary dict per (client, agent, host, scheme, window) of ``table`` (formats.Chunk columns)."""
    if table.num_rows == 0:
        return []
    ua = pc.fill_null(table["ua"], UNKNOWN_UA)
    scheme = pc.fill_null(table["scheme"], "http")
    win = pc.cast(pc.floor(pc.divide(table["time"], float(caps.window_seconds))), pa.int64())
    t = pa.table({"client": table["client"], "ua": ua, "host": table["host"], "scheme": scheme, "win": win,
                  "time": table["time"], "path": table["path"], "status": table["status"]})  # fmt: skip
    groups = t.group_by(KEYS).aggregate([("time", "min"), ("time", "max"), ("time", "count"), ("time", "list")])
    paths = t.group_by([*KEYS, "path"]).aggregate([("time", "count"), ("time", "min"), ("status", "max")])
    statuses = t.group_by([*KEYS, "status"]).aggregate([("time", "count")])
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    cols = {name: groups[name].to_pylist() for name in KEYS}
    firsts, lasts, counts = groups["time_min"].to_pylist(), groups["time_max"].to_pylist(), groups["time_count"]
    times = groups["time_list"]
    for i in range(groups.num_rows):
        key = tuple(cols[name][i] for name in KEYS)
        ts = np.sort(times[i].values.to_numpy())
        out[key] = {
            "client": key[0], "ua": None if key[1] == UNKNOWN_UA else key[1], "host": key[2], "scheme": key[3],
            "window_start": key[4] * caps.window_seconds, "window_seconds": caps.window_seconds,
            "requests": counts[i].as_py(), "first": firsts[i], "last": lasts[i],
            "times": [round(float(x), 3) for x in ts[: caps.max_times]],
            "times_dropped": max(0, len(ts) - caps.max_times),
            "paths": [], "paths_total": 0, "robots": [], "statuses": {},
        }  # fmt: skip
    pcols = {name: paths[name].to_pylist() for name in [*KEYS, "path"]}
    pcount, pfirst, pstatus = (paths[c].to_pylist() for c in ("time_count", "time_min", "status_max"))
    per: dict[tuple[Any, ...], list[list[Any]]] = defaultdict(list)
    for i in range(paths.num_rows):
        key = tuple(pcols[name][i] for name in KEYS)
        path = pcols["path"][i]
        per[key].append([path, pcount[i], round(pfirst[i], 3), pstatus[i]])
        if path == "/robots.txt" or path.startswith("/robots.txt?"):
            out[key]["robots"].append(round(pfirst[i], 3))
    for key, rows in per.items():
        rows.sort(key=lambda r: r[2])
        out[key]["paths"] = rows[: caps.max_paths]
        out[key]["paths_total"] = len(rows)
    scols = {name: statuses[name].to_pylist() for name in [*KEYS, "status"]}
    scount = statuses["time_count"].to_pylist()
    for i in range(statuses.num_rows):
        key = tuple(scols[name][i] for name in KEYS)
        out[key]["statuses"][str(scols["status"][i])] = scount[i]
    return sorted(out.values(), key=lambda s: (s["first"], s["client"], s["host"]))


def to_event(summary: dict[str, Any], *, feed: str, raw_id: str | None, chunk: int) -> Event:
    """The summary as a ``crawling`` Event of the client address (the attribute stage finds its service)."""
    ua = summary["ua"]
    who = "an unrecorded agent" if ua is None else repr(ua) if ua else "an empty user agent"
    return Event.create(
        kind="crawling",
        time=datetime.fromtimestamp(summary["first"], UTC),
        feed=feed,
        raw_id=raw_id,
        source_ip=summary["client"],
        source_url=f"{summary['scheme']}://{summary['host']}/",
        application="http",
        description=f"{summary['requests']} requests to {summary['host']} by {who}",
        extra={"weblog": summary, "observation": True,
               "identity": f"{raw_id}|{chunk}|{summary['client']}|{ua}|{summary['host']}|{summary['window_start']}"},
    )  # fmt: skip
