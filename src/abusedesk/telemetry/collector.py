"""The UDP flow collector: datagrams → decoder → rotating flow files → the pipeline.

One thread receives and decodes (``FlowDecoder.feed`` is header walking only; every ``take_every`` datagrams or
``take_seconds`` the queued records are decoded in one vectorised pass and appended to the open interval of the
:class:`FlowStore`). A closed file is handed on (``hand_on``) and the in-process pipeline drained on a second
thread, so detection never holds up the socket. The socket's own drops (the kernel's counter for this socket in
``/proc/net/udp``) are reported beside the decoder's counters: a drop there means the collector was too slow.
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abusedesk.bus.base import InProcessBus
from abusedesk.domain.errors import ConfigError
from abusedesk.telemetry.decoder import FlowDecoder
from abusedesk.telemetry.store import ClosedFile, FlowStore, hand_on

if TYPE_CHECKING:
    from abusedesk.runtime import Runtime

log = logging.getLogger(__name__)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"--listen {text!r} is not HOST:PORT (e.g. 127.0.0.1:2055)", field="telemetry.listen")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an operator's explicit choice of all addresses


def socket_drops(sock: socket.socket) -> int | None:
    """The kernel's count of datagrams dropped on this socket (a full receive buffer), from /proc/net/udp."""
    try:
        inode = str(Path(f"/proc/self/fd/{sock.fileno()}").readlink()).removeprefix("socket:[").rstrip("]")
    except OSError:
        return None
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) >= 13 and parts[9] == inode:
                return int(parts[12])
    return None


@dataclass
class CollectorStats:
    files: int = 0
    rows_written: int = 0
    socket_drops: int | None = None
    decode: dict[str, Any] = field(default_factory=dict)
    exporters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "rows_written": self.rows_written, "socket_drops": self.socket_drops,
                "decode": self.decode, "exporters": self.exporters}  # fmt: skip


class Collector:
    """Receive flow exports on ``listen`` until ``stop`` is set (or a bound is reached)."""

    def __init__(self, rt: Runtime, listen: str | None = None, *, take_every: int = 512,
                 take_seconds: float = 0.25, drain: bool = True) -> None:  # fmt: skip
        self.rt = rt
        cfg = rt.settings.telemetry
        self.host, self.port = parse_listen(listen or cfg.listen)
        self.decoder = FlowDecoder()
        self.store = FlowStore(rt.settings.data_dir / "telemetry", rotate_rows=cfg.rotate_rows,
                               rotate_seconds=cfg.rotate_seconds, retention_hours=cfg.retention_hours)  # fmt: skip
        self.take_every = take_every
        self.take_seconds = take_seconds
        self.drain = drain
        self.stats = CollectorStats()
        self.stop = threading.Event()
        self.ready = threading.Event()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:  # as root, past net.core.rmem_max (for this socket only; the system's limit stays as it is)
            self.sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), cfg.socket_buffer_bytes)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.socket_buffer_bytes)
        self.sock.bind((self.host, self.port))
        self.port = self.sock.getsockname()[1]
        self._handoff: queue.Queue[list[ClosedFile] | None] = queue.Queue()
        self._drops0 = socket_drops(self.sock) or 0

    def _handoff_loop(self) -> None:
        while True:
            files = self._handoff.get()
            if files is None:
                return
            try:
                hand_on(self.rt, files)
                if self.drain:
                    self.rt.drain()
            except Exception:  # the worker-loop edge: a failing hand-off is logged, the files stay on disk
                log.exception("handing on %d flow file(s) failed; they stay in %s", len(files), self.store.closed_dir)

    def _closed(self, files: list[ClosedFile]) -> None:
        if files:
            self.stats.files += len(files)
            self.stats.rows_written += sum(f.rows for f in files)
            self._handoff.put(files)

    def _take(self) -> None:
        table = self.decoder.take()
        if table.num_rows:
            self._closed(self.store.append(table))

    def _warm(self) -> None:
        """Build what the first closed file needs (the in-process pipeline with its stages and detectors, Arrow's
        compute functions) before ``ready``: built lazily, it took the interpreter from the receiving thread for
        over a second just when the first datagrams arrived."""
        import pyarrow.compute  # noqa: F401 - loaded now, not on the first cast

        if self.drain and isinstance(self.rt.bus, InProcessBus):
            _ = self.rt.pipeline

    def run(self, *, duration: float | None = None, max_datagrams: int | None = None,
            idle_exit: float | None = None) -> CollectorStats:  # fmt: skip
        """Collect until ``stop``, ``duration`` seconds, ``max_datagrams``, or ``idle_exit`` seconds of silence.

        The socket is non-blocking and read in a tight loop while datagrams wait (up to ``take_every`` at a time,
        one system call each, no poll before each), the clocks and bounds checked once per burst; only an empty
        socket waits, in ``select``, for at most 50 ms."""
        self._warm()
        worker = threading.Thread(target=self._handoff_loop, name="telemetry-handoff", daemon=True)
        worker.start()
        self.sock.setblocking(False)
        start = last_take = last_rx = time.monotonic()
        since_take = 0
        received = 0
        buf = bytearray(65535)
        view = memoryview(buf)
        recv, feed = self.sock.recvfrom_into, self.decoder.feed
        self.ready.set()
        try:
            while not self.stop.is_set():
                burst = self.take_every - since_take
                if max_datagrams is not None:
                    burst = min(burst, max_datagrams - received)
                got = 0
                try:
                    while got < burst:
                        n, addr = recv(buf)
                        feed(bytes(view[:n]), addr[0])
                        got += 1
                except BlockingIOError:
                    if not got:
                        select.select([self.sock], [], [], 0.05)
                now = time.monotonic()
                if got:
                    received += got
                    since_take += got
                    last_rx = now
                if since_take >= self.take_every or (since_take and now - last_take >= self.take_seconds):
                    self._take()
                    since_take, last_take = 0, now
                if self.store.is_due():
                    self._take()
                    closed = self.store.close()
                    self._closed([closed] if closed else [])
                if duration is not None and now - start >= duration:
                    break
                if max_datagrams is not None and received >= max_datagrams:
                    break
                if idle_exit is not None and received and now - last_rx >= idle_exit:
                    break
        finally:
            self._take()
            closed = self.store.close()
            self._closed([closed] if closed else [])
            self.store.expire()
            self._handoff.put(None)
            worker.join()
            drops = socket_drops(self.sock)
            self.stats.socket_drops = None if drops is None else drops - self._drops0
            self.sock.close()
            self.stats.decode = self.decoder.stats.to_dict()
            self.stats.exporters = {
                f"{k[0]}/{k[2]}/{k[1]}": {"lost": v.lost, "inclusive_sequence": v.inclusive}
                for k, v in self.decoder.exporters.items()
            }
        return self.stats
