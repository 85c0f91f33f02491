"""A real Squid (Debian's) on a loopback port with its own config, log and run directories: the egress proxy.

No DNS: crawlers use IP-literal URLs, and ``dns_nameservers`` points at loopback, where nothing answers, so no
lookup leaves the machine. The access log uses ``logformat abusedesk`` (Squid's native line with the agent
appended, docs/admin/weblogs.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.components import free_port, require_program, wait_for_port

LOGFORMAT = r'%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt "%{User-Agent}>h"'

CONFIG = """
http_port 127.0.0.1:{port}
pid_filename {dir}/squid.pid
cache_log {dir}/cache.log
logformat abusedesk {logformat}
access_log stdio:{dir}/access.log abusedesk
buffered_logs off
cache deny all
cache_mem 4 MB
acl loopback src 127.0.0.0/8
http_access allow loopback
http_access deny all
dns_nameservers 127.0.0.1
pinger_enable off
shutdown_lifetime 0 seconds
coredump_dir {dir}
netdb_filename none
via off
forwarded_for delete
"""


@dataclass
class Squid:
    port: int
    dir: Path

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.dir / "access.log"


@contextmanager
def squid() -> Iterator[Squid]:
    """A Squid on a free loopback port until the block ends; stopped (and its log flushed) on the way out.

    Its directory is a fresh one directly under /tmp: Squid drops to its own user (``proxy``), which must reach
    it, and pytest's own temporary directories are private to root.
    """
    binary = require_program("squid")
    with tempfile.TemporaryDirectory(prefix="abusedesk-squid-") as name:
        workdir = Path(name)
        os.chmod(workdir, 0o777)
        yield from _run(binary, workdir)


def _run(binary: str, workdir: Path) -> Iterator[Squid]:
    port = free_port()
    conf = workdir / "squid.conf"
    conf.write_text(CONFIG.format(port=port, dir=workdir, logformat=LOGFORMAT))
    proc = subprocess.Popen([binary, "-N", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        try:
            wait_for_port("127.0.0.1", port, timeout=20)
        except TimeoutError:
            log = (
                (workdir / "cache.log").read_text(errors="replace")[-2000:] if (workdir / "cache.log").exists() else ""
            )
            raise AssertionError(f"squid did not start on 127.0.0.1:{port}: {log}") from None
        yield Squid(port, workdir)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        time.sleep(0.1)
