"""Certificates made by the real openssl for tests (STARTTLS servers, S/MIME signing)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.components import require_program


def self_signed_cert(directory: Path, *, cn: str = "127.0.0.1") -> tuple[Path, Path]:
    """A one-day self-signed certificate for ``cn`` (an IP also gets it as subjectAltName); returns (cert, key)."""
    openssl = require_program("openssl")
    cert, key = directory / f"{cn}.cert.pem", directory / f"{cn}.key.pem"
    args = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
            "-days", "1", "-subj", f"/CN={cn}"]  # fmt: skip
    if cn.replace(".", "").isdigit():
        args += ["-addext", f"subjectAltName=IP:{cn}"]
    subprocess.run(args, check=True, capture_output=True)
    return cert, key
