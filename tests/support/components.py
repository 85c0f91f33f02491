"""A test that needs an outside program calls ``require``: with CI=true a missing one fails, it never skips."""

from __future__ import annotations

import os
import shutil
import socket

import pytest


def is_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Fail under CI, skip elsewhere (a developer machine may lack a Debian package)."""
    if is_ci():
        pytest.fail(f"required component missing under CI: {reason}")
    pytest.skip(reason)


def require_program(*names: str) -> str:
    """The path of the first program found on PATH (or in /usr/sbin), else fail/skip."""
    for name in names:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/lib/dovecot:/usr/bin")
        if path:
            return path
    missing(f"none of the programs {', '.join(names)} is installed (make test installs them)")
    raise AssertionError("unreachable")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server answers on ``host:port`` now (a service this machine kind starts: PostgreSQL, Redis)."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False
