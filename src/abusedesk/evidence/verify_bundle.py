#!/usr/bin/env python3
"""Check an abusedesk evidence bundle's audit entries against the desk's signed checkpoint, without its database.

Stand-alone: Python 3.9+ and either the ``cryptography`` package or the ``openssl`` command (3.0+). Copied into
every bundle as ``verify_audit.py``; run it in the unpacked bundle's directory::

    python3 verify_audit.py [--public-key KEY.pem]

It checks, for every entry in ``audit.json``:

1. the entry's hash is SHA-256(its prev_hash + SHA-256 of its canonical content), both as hex text;
2. carried forward through the leaf digests of the entries after it (``inclusion.leaves``) it reaches exactly the
   ``hash`` of a checkpoint in ``audit/``;
3. that checkpoint's Ed25519 signature verifies with the public key (``audit/public-key.pem``, or the copy of the
   desk's key you were given separately: prefer that one, a bundle can bring its own key).

Exit 0 when every entry is shown to be in a signed checkpoint, 1 naming the first that is not.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def iso(text: str) -> str:
    """The time as the desk hashed it: ISO 8601 in UTC with a Z, microseconds only when present."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def leaf(entry: dict[str, Any]) -> str:
    fields = [entry["seq"], iso(entry["at"]), entry["actor"], entry["action"], entry["subject_type"]]
    fields += [entry["subject_id"], entry["payload"]]
    return hashlib.sha256(canonical(fields)).hexdigest()


def link(prev: str, digest: str) -> str:
    return hashlib.sha256((prev + digest).encode()).hexdigest()


def signature_ok(public_pem: bytes, body: bytes, sig: bytes) -> bool:
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
    except ImportError:
        return _openssl_ok(public_pem, body, sig)
    key = load_pem_public_key(public_pem)
    try:
        key.verify(sig, body)  # type: ignore[union-attr, call-arg]
    except InvalidSignature:
        return False
    return True


def _openssl_ok(public_pem: bytes, body: bytes, sig: bytes) -> bool:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("neither the Python package cryptography nor the openssl command is installed")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: Path(tmp, name) for name in ("key.pem", "body", "sig")}
        for name, data in zip(paths, (public_pem, body, sig), strict=True):
            paths[name].write_bytes(data)
        key, data_in, sig_in = (str(p) for p in paths.values())
        done = subprocess.run(  # noqa: S603 - fixed arguments, files we just wrote
            [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", key, "-rawin", "-in", data_in, "-sigfile", sig_in],
            capture_output=True,
            check=False,
        )
    return done.returncode == 0


def check(bundle: Path, public_key: Path | None = None) -> list[str]:
    """Problems found (empty when every entry is in a signed checkpoint)."""
    doc = json.loads((bundle / "audit.json").read_text(encoding="utf-8"))
    public_pem = (public_key or bundle / "audit" / "public-key.pem").read_bytes()
    problems: list[str] = []
    heads: dict[int, str] = {}
    for cp in doc.get("checkpoints", []):
        body = (bundle / cp["body_file"]).read_bytes()
        sig = base64.b64decode(cp["sig"])
        if not signature_ok(public_pem, body, sig):
            problems.append(f"checkpoint {cp['body_file']}: the signature does not verify with the public key")
            continue
        data = json.loads(body)
        heads[int(data["seq"])] = data["hash"]
    entries = {int(e["seq"]): e for e in doc.get("entries", [])}
    leaves = {int(k): v for k, v in doc.get("inclusion", {}).get("leaves", {}).items()}
    for seq, entry in sorted(entries.items()):
        try:
            own = link(entry["prev_hash"], leaf(entry))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"entry {seq}: malformed ({exc})")
            continue
        if own != entry["hash"]:
            problems.append(f"entry {seq}: its content does not hash to its recorded hash")
            continue
        target = min((s for s in heads if s >= seq), default=None)
        if target is None:
            problems.append(f"entry {seq}: no signed checkpoint at or after it in this bundle")
            continue
        h = own
        for k in range(seq + 1, target + 1):
            digest = leaves.get(k)
            if digest is None and k in entries:
                digest = leaf(entries[k])
            if digest is None:
                problems.append(f"entry {seq}: the leaf of entry {k} is missing from the inclusion path")
                break
            h = link(h, digest)
        else:
            if h != heads[target]:
                problems.append(f"entry {seq}: does not lead to the signed head of entry {target}")
    if not entries:
        problems.append("audit.json holds no entries")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=Path("."), help="the unpacked bundle (default: here)")
    parser.add_argument("--public-key", type=Path, help="the desk's public key you received separately (PEM)")
    args = parser.parse_args(argv)
    problems = check(args.bundle, args.public_key)
    for p in problems:
        print(f"FAILED: {p}")
    if problems:
        return 1
    doc = json.loads((args.bundle / "audit.json").read_text(encoding="utf-8"))
    print(f"OK: {len(doc['entries'])} audit entries are in checkpoints signed by the desk's key")
    return 0


if __name__ == "__main__":
    sys.exit(main())
