"""Record the telemetry demo's export stream: the namespace lab's traffic, exported by softflowd as IPFIX to a
loopback port, captured with tcpdump (root; the tools of the Makefile's DEBS).

    python scripts/record_flow_demo.py src/abusedesk/demo/data/telemetry/lab-ipfix.pcap.gz [LAB_CAPTURE]
"""

from __future__ import annotations

import gzip
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.telemetry.netlab import export, lab


def _drain(sock: socket.socket) -> None:
    """Read the sink until it falls silent (a full receive buffer would cut the recording short)."""
    try:
        while True:
            sock.recv(65535)
    except TimeoutError:
        return


def main(out: Path, capture: Path | None = None) -> None:
    """``capture``: a lab capture made before (``tests/telemetry/netlab.py``); else the lab runs now."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if capture is None:
            with lab(work) as lb:
                lb.run_traffic()
            capture = lb.pcap
        # a socket must take the datagrams: an ICMP port-unreachable makes softflowd's next sends fail
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        sink.settimeout(2.0)
        reader = threading.Thread(target=_drain, args=(sink,))
        raw = work / "export.pcap"
        argv = ["tcpdump", "-i", "lo", "-n", "-U", "-w", str(raw), "udp", "and", "dst", "port", str(port)]
        cap = subprocess.Popen(argv, stderr=subprocess.DEVNULL)  # noqa: S603 - our own argv, no shell
        time.sleep(1.0)
        reader.start()
        export(capture, port, 10, work)
        reader.join()
        time.sleep(0.5)
        cap.send_signal(signal.SIGINT)
        cap.wait(10)
        sink.close()
        out.parent.mkdir(parents=True, exist_ok=True)
        with raw.open("rb") as src, gzip.open(out, "wb", compresslevel=9) as dst:
            shutil.copyfileobj(src, dst)
    print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
