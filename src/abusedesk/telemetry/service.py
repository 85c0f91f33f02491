"""Flow files into the pipeline (``abusedesk telemetry file``), and replaying a recorded export stream.

Raw first: each file's bytes are kept under ``telemetry/originals/<sha256>`` before it is parsed; a file that
fails to parse goes to ``telemetry/quarantine/`` with the reason beside it and nothing of it is taken. A parsed
file is written to the telemetry raw store as one closed flow file and handed to the pipeline like a collector's.
The same bytes imported again are a duplicate (``originals/<sha256>.done``): their flows would count twice in the
detectors' summed windows.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abusedesk.domain.errors import ParseError
from abusedesk.telemetry.files import read_flow_file
from abusedesk.telemetry.pcap import read_pcap
from abusedesk.telemetry.store import FlowStore, hand_on

if TYPE_CHECKING:
    from abusedesk.runtime import Runtime


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_flow_files(rt: Runtime, paths: list[Path], fmt: str | None = None) -> list[dict[str, Any]]:
    """Each file: kept, parsed, stored as a closed flow file, handed on; returns one outcome per file."""
    root = rt.settings.data_dir / "telemetry"
    store = FlowStore(root, source="file")
    originals = root / "originals"
    quarantine = root / "quarantine"
    originals.mkdir(parents=True, exist_ok=True)
    out: list[dict[str, Any]] = []
    for path in paths:
        sha = _sha256(path)
        kept = originals / sha
        done = originals / f"{sha}.done"
        if done.exists():  # the same bytes again: their flows are counted in the windows already
            out.append({"source": str(path), "status": "duplicate", "sha256": sha, "file": done.read_text().strip()})
            continue
        if not kept.exists():
            shutil.copyfile(path, kept)
        try:
            table = read_flow_file(path, fmt)
        except ParseError as exc:
            quarantine.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, quarantine / sha)
            (quarantine / f"{sha}.reason").write_text(exc.message + "\n")
            out.append({"source": str(path), "status": "quarantined", "error": exc.message, "sha256": sha})
            continue
        skipped = int((table.schema.metadata or {}).get(b"skipped", b"0"))
        closed = store.write(table.replace_schema_metadata(None))
        hand_on(rt, [closed])
        done.write_text(closed.path.name + "\n")
        out.append({"source": str(path), "status": "stored", "rows": closed.rows, "skipped": skipped,
                    "file": closed.path.name, "sha256": sha})  # fmt: skip
    rt.drain()
    return out


def replay_pcap(path: Path, host: str, port: int, *, rate: float | None = None) -> int:
    """Send a capture's UDP payloads (a recorded export stream) to ``host:port``; returns how many.

    ``rate``: datagrams per second (None: as fast as the socket takes them, with a short pause every 200 so a
    collector on the same machine keeps up)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sent = 0
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        for d in read_pcap(path):
            s.sendto(d.payload, (host, port))
            sent += 1
            if rate:
                time.sleep(1.0 / rate)
            elif sent % 200 == 0:
                time.sleep(0.002)
    return sent
