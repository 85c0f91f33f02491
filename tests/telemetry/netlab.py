"""A lab of network namespaces joined by veth, real tools between them, and a capture of what crossed.

Topology (all addresses inside the two namespaces this module creates; nothing leaves them):

    <ns>-c  "customer": veth c0 with 10.99.0.10–.18/24          <ns>-v  "victim": veth v0 10.99.0.1/24,
            (one address per scenario, lab.SERVICES)                     10.99.1.20/24 (the provider's own
            route 10.99.1.0/24, 10.99.2.0/24 via 10.99.0.1                range), 10.99.2.0/24 answered on every
                                                                         address (a local route), TCP listeners
                                                                         on 22, 23?, 25, 80, 3389 (23: none → RST)

tcpdump in the customer namespace writes c0's packets to a pcap; ``export`` then runs softflowd over the capture
(``-r``) and sends NetFlow v5, v9 or IPFIX to a collector on the host's loopback. Every scenario is bounded in
count and time (``SCENARIOS``). veth's GSO is limited to single segments (``gso_max_segs 1``) so each packet the
tools send is one packet in the capture (the corpus README's pitfall).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER = r"""
import socket, selectors, sys
sel = selectors.DefaultSelector()
for port in (22, 25, 80, 3389):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(512); s.setblocking(False); sel.register(s, selectors.EVENT_READ, port)
print("ready", flush=True)
while True:
    for key, _ in sel.select(1):
        try:
            conn, _ = key.fileobj.accept()
        except OSError:
            continue
        port = key.data
        try:
            conn.settimeout(2)
            if port == 25:
                conn.sendall(b"220 lab ESMTP\r\n")
                while True:
                    line = conn.recv(4096)
                    if not line or line.upper().startswith(b"QUIT"):
                        conn.sendall(b"221 bye\r\n"); break
                    conn.sendall(b"354 go\r\n" if line.upper().startswith(b"DATA") else b"250 ok\r\n")
            elif port == 80:
                conn.recv(4096); conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            else:
                conn.sendall(b"SSH-2.0-lab\r\n" if port == 22 else b"\x03\x00\x00\x0b\x06\xd0\x00\x00\x12\x34\x00")
                conn.recv(4096)
        except OSError:
            pass
        finally:
            conn.close()
"""

CLIENT = r"""
import socket, sys, time
kind, src, dst, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def connect(addr, port):
    s = socket.socket(); s.settimeout(3); s.bind((src, 0)); s.connect((addr, port)); return s
for i in range(count):
    if kind == "smtp":
        base = dst.rsplit(".", 1)
        addr = f"{base[0]}.{int(base[1]) + i % 30}"
        s = connect(addr, 25); s.recv(100)
        for line in (b"EHLO x\r\n", b"MAIL FROM:<a@example.net>\r\n", b"RCPT TO:<b@example.com>\r\n", b"DATA\r\n",
                     b"Subject: hi\r\n\r\n" + b"x" * 800 + b"\r\n.\r\n", b"QUIT\r\n"):
            s.sendall(line); s.recv(100)
        s.close()
    elif kind == "tick":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((src, 0)); u.sendto(b"tick", (dst, 9)); u.close()
        time.sleep(0.5)
    elif kind == "load":
        s = connect(dst, 80); s.sendall(b"GET / HTTP/1.0\r\n\r\n"); s.recv(100); s.close()
    elif kind == "http":
        s = connect(dst, 80); s.sendall(b"GET / HTTP/1.0\r\n\r\n"); s.recv(100); s.close(); time.sleep(0.2)
    elif kind in ("ssh", "rdp"):
        s = connect(dst, 22 if kind == "ssh" else 3389); s.recv(100); s.sendall(b"x" * 40); s.close()
        time.sleep(0.02)
print("done", kind, count)
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str
    argv: tuple[str, ...]


def scenarios(py: str, client: str) -> list[Scenario]:
    """The lab's traffic: each bounded by count (and run under ``timeout``)."""
    return [
        Scenario("benign_http", "10.99.0.10", (py, client, "http", "10.99.0.10", "10.99.1.20", "5")),
        Scenario("vscan", "10.99.0.11", ("nmap", "-sS", "-n", "-Pn", "-T4", "--max-retries", "1", "-p", "1-200",
                                         "-S", "10.99.0.11", "-e", "c0", "10.99.1.20")),
        Scenario("hscan", "10.99.0.12", ("nmap", "-sS", "-n", "-Pn", "-T4", "--max-retries", "1", "-p", "23",
                                         "-S", "10.99.0.12", "-e", "c0", "10.99.2.1-40")),
        Scenario("synflood", "10.99.0.13", ("hping3", "-q", "-S", "-p", "80", "-a", "10.99.0.13", "-i", "u200",
                                            "-c", "4000", "10.99.1.20")),
        Scenario("udpflood", "10.99.0.18", ("hping3", "-q", "--udp", "-p", "9999", "-s", "40000", "-k", "-d", "200",
                                            "-a", "10.99.0.18", "-i", "u250", "-c", "3000", "10.99.1.20")),
        Scenario("ssh_brute", "10.99.0.14", (py, client, "ssh", "10.99.0.14", "10.99.1.20", "8")),
        Scenario("rdp_brute", "10.99.0.15", (py, client, "rdp", "10.99.0.15", "10.99.1.20", "24")),
        Scenario("smtp_spam", "10.99.0.16", (py, client, "smtp", "10.99.0.16", "10.99.2.100", "30")),
        Scenario("loadtest", "10.99.0.17", (py, client, "load", "10.99.0.17", "10.99.1.20", "1500")),
        Scenario("smtp_benign", "10.99.0.10", (py, client, "smtp", "10.99.0.10", "10.99.1.20", "1")),
        # softflowd -r exports a flow only when packet time passes its timeout; it does not flush at the end of the
        # capture, so the capture ends with a few seconds of ticks (one datagram each half second)
        Scenario("tick", "10.99.0.10", (py, client, "tick", "10.99.0.10", "10.99.1.20", "8")),
    ]  # fmt: skip


def missing_tools() -> list[str]:
    return [t for t in ("ip", "tcpdump", "softflowd", "nmap", "hping3") if shutil.which(t) is None]


def _run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout)


class Lab:
    def __init__(self, workdir: Path, tag: str | None = None) -> None:
        self.tag = tag or f"adl{os.getpid() % 100000}"
        self.cust = f"{self.tag}c"
        self.victim = f"{self.tag}v"
        self.workdir = workdir
        self.pcap = workdir / "lab.pcap"
        self._procs: list[subprocess.Popen[str]] = []

    def ns(self, name: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", name, *argv]

    def up(self) -> None:
        c, v = self.cust, self.victim
        _run("ip", "netns", "add", c)
        _run("ip", "netns", "add", v)
        _run("ip", "link", "add", f"{self.tag}a", "netns", c, "type", "veth", "peer", f"{self.tag}b", "netns", v)
        _run(*self.ns(c, "ip", "link", "set", f"{self.tag}a", "name", "c0"))
        _run(*self.ns(v, "ip", "link", "set", f"{self.tag}b", "name", "v0"))
        for name, dev in ((c, "c0"), (v, "v0")):
            _run(*self.ns(name, "ip", "link", "set", "lo", "up"))
            _run(*self.ns(name, "ip", "link", "set", dev, "gso_max_segs", "1"), check=False)
            _run(*self.ns(name, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off"), check=False)
            _run(*self.ns(name, "ip", "link", "set", dev, "up"))
        for i in range(10, 19):
            _run(*self.ns(c, "ip", "addr", "add", f"10.99.0.{i}/24", "dev", "c0"))
        _run(*self.ns(c, "ip", "route", "add", "10.99.1.0/24", "via", "10.99.0.1"))
        _run(*self.ns(c, "ip", "route", "add", "10.99.2.0/24", "via", "10.99.0.1"))
        _run(*self.ns(v, "ip", "addr", "add", "10.99.0.1/24", "dev", "v0"))
        _run(*self.ns(v, "ip", "addr", "add", "10.99.1.20/24", "dev", "v0"))
        _run(*self.ns(v, "ip", "route", "add", "local", "10.99.2.0/24", "dev", "lo"))
        _run(*self.ns(v, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"), check=False)

    def down(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        for name in (self.cust, self.victim):
            _run("ip", "netns", "del", name, check=False)

    def start(self, argv: list[str]) -> subprocess.Popen[str]:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._procs.append(p)
        return p

    def run_traffic(self) -> dict[str, str]:
        """Servers up, capture on, every scenario in turn; returns each scenario's tool output."""
        server = self.workdir / "server.py"
        client = self.workdir / "client.py"
        server.write_text(SERVER)
        client.write_text(CLIENT)
        srv = self.start(self.ns(self.victim, sys.executable, str(server)))
        assert srv.stdout is not None
        assert srv.stdout.readline().strip() == "ready"
        cap = self.start(self.ns(self.cust, "tcpdump", "-i", "c0", "-n", "-U", "-s", "128", "-w", str(self.pcap),
                                 "-c", "200000", "ip or ip6"))  # fmt: skip
        time.sleep(1.0)  # tcpdump attaches
        out: dict[str, str] = {}
        for sc in scenarios(sys.executable, str(client)):
            r = _run(*self.ns(self.cust, "timeout", "30", *sc.argv), check=False, timeout=40)
            out[sc.name] = (r.stdout + r.stderr).strip()[-300:]
        time.sleep(0.5)
        cap.send_signal(signal.SIGINT)
        cap.wait(10)
        srv.send_signal(signal.SIGTERM)
        srv.wait(10)
        return out


def export(pcap: Path, port: int, version: int, workdir: Path) -> None:
    """softflowd over the capture, exporting NetFlow ``version`` (5, 9, 10 = IPFIX) to 127.0.0.1:``port``."""
    args = ["softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", str(version), "-c", "none",
            "-p", str(workdir / f"softflowd{version}.pid"), "-d",
            # short timeouts: flows expire (and are exported) while the capture's time runs on
            "-t", "expint=1", "-t", "tcp=2", "-t", "tcp.rst=1", "-t", "tcp.fin=1", "-t", "udp=2", "-t", "icmp=2",
            "-t", "general=2", "-t", "maxlife=2"]  # fmt: skip
    if version == 10:
        args += ["-A", "milli"]  # the corpus README: nfdump mis-decodes softflowd's default uptime times
    _run(*args, timeout=60)


@contextmanager
def lab(workdir: Path) -> Iterator[Lab]:
    lb = Lab(workdir)
    try:
        lb.up()
        yield lb
    finally:
        lb.down()
