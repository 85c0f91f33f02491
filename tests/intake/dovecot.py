"""A throwaway Dovecot IMAP server on a loopback port: own config in a temp dir, `dovecot -F`, stopped after."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.components import free_port, require_program, wait_for_port

USER = "abuse"
PASSWORD = "imap-test-password"


@dataclass(frozen=True)
class Dovecot:
    host: str
    port: int
    user: str
    password: str
    root: Path


def _config(root: Path, port: int, home: Path, uid: int, gid: int) -> str:
    me = pwd.getpwuid(os.getuid())
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    for sub in ("run", "state"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    root_mode = os.getuid() == 0
    # as root, the login processes must run as an unprivileged user (dovenull), chrooted as Dovecot likes;
    # as an ordinary user everything runs as that user and nothing can chroot
    login_user = "dovenull" if root_mode else me.pw_name
    internal_user = "dovecot" if root_mode else me.pw_name
    chroot = "" if root_mode else "chroot =\n"
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_login_user = {login_user}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Processed {{
    auto = create
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}/%u
}}
service imap-login {{
  {chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  {chroot}}}
service auth {{
  user = {me.pw_name}
}}
service auth-worker {{
  user = {me.pw_name}
}}
"""


def _wait_for_login(port: int, timeout: float) -> None:
    """The port opens before the login and auth processes are ready: wait until a login works."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = imaplib.IMAP4("127.0.0.1", port, timeout=5)
            conn.login(USER, PASSWORD)
            conn.logout()
            return
        except (OSError, imaplib.IMAP4.error) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"dovecot on port {port} accepts no login: {exc}") from exc
            time.sleep(0.2)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    binary = require_program("dovecot")
    # a short path: Dovecot's unix sockets live under base_dir and a socket path may not exceed 107 bytes
    root = Path(tempfile.mkdtemp(prefix="adk-dovecot-"))
    port = free_port()
    conf = root / "dovecot.conf"
    if os.getuid() == 0:
        # mail may not be kept as root: an unprivileged user owns the mail, outside pytest's 0700 temp tree
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
        home = Path(tempfile.mkdtemp(prefix="abusedesk-imap-"))
        os.chown(home, uid, gid)
    else:
        uid, gid = os.getuid(), os.getgid()
        home = root / "home"
        home.mkdir()
    conf.write_text(_config(root, port, home, uid, gid))
    proc = subprocess.Popen([binary, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, timeout=15)
        _wait_for_login(port, timeout=20)
    except TimeoutError:
        proc.kill()
        out = proc.communicate(timeout=5)[0].decode(errors="replace")
        log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
        pytest.fail(f"dovecot did not start: {out}\n{log}")
    yield Dovecot("127.0.0.1", port, USER, PASSWORD, root)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
