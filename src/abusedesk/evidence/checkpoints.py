"""Signed checkpoints of the audit chain's head, kept in an append-only file outside the database (issue 10).

A hash chain shows that its entries were not changed, but not that someone who can write the database did not
rewrite it all, hashes included. So, like a Certificate Transparency log signs its tree heads, the desk signs the
chain's head with an Ed25519 key that lives in a file (``audit.signing_key``), never in the database, and appends
each signed head to ``audit.checkpoint_log``. Each checkpoint names the one before it (``prev_seq``,
``prev_hash``) and is written only after the desk checked that the old head is still a prefix of the chain, so a
cut tail or a rewritten history stops the checkpoints instead of being signed over.

One line of the log is ``{"body": "<the signed JSON text>", "sig": "<base64 Ed25519 signature or null>"}``; the
body is canonical JSON of ``{"log", "n", "seq", "hash", "at", "prev_seq", "prev_hash", "key_id"}``. The signature
covers the body's UTF-8 bytes exactly, so ``openssl pkeyutl -verify -rawin`` checks it too. Without a key the lines
are written unsigned (``sig`` null): they still catch a cut tail, but not an insider who can edit the file.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from abusedesk.config import Settings
from abusedesk.domain.errors import ConfigError
from abusedesk.domain.ids import canonical_json

LOG_NAME = "abusedesk-audit"
KEY_FILE = "audit-signing-key.pem"
CHECKPOINT_FILE = "audit-checkpoints.jsonl"
_HEX = frozenset("0123456789abcdef")


def key_path(settings: Settings) -> Path:
    return settings.audit.signing_key or settings.data_dir / KEY_FILE


def log_path(settings: Settings) -> Path:
    return settings.audit.checkpoint_log or settings.data_dir / CHECKPOINT_FILE


def public_key_path(private_path: Path) -> Path:
    """Where ``audit keygen`` puts the public half: ``<key>.pub``."""
    return private_path.with_name(private_path.name + ".pub")


def key_id(public: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 over the raw 32-byte public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_key(path: Path, *, force: bool = False) -> Ed25519PublicKey:
    """Write a new Ed25519 private key to ``path`` (mode 0600, refused if it exists) and its public key beside."""
    if path.exists() and not force:
        raise ConfigError(
            f"audit signing key {path} already exists; a new key would not verify the checkpoints signed so far "
            "(use --force to rotate, and keep the old public key to verify older checkpoints)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    public_key_path(path).write_bytes(public_pem(key.public_key()))
    return key.public_key()


def load_private_key(path: Path) -> Ed25519PrivateKey | None:
    """The signing key at ``path``, or None when there is none (checkpoints are then written unsigned)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"audit signing key {path} is not a PEM private key without a password: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"audit signing key {path} is a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key, or the public half of a PEM private key."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"audit public key {path} cannot be read: {exc}") from None
    try:
        key: Any = serialization.load_pem_public_key(data)
    except ValueError:
        private = load_private_key(path)
        if private is None:  # pragma: no cover - read_bytes above succeeded
            raise ConfigError(f"audit public key {path} disappeared") from None
        key = private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"audit public key {path} is a {type(key).__name__}, not an Ed25519 key")
    return key


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One line of the checkpoint log: the head ``seq``/``hash`` and the checkpoint before it."""

    n: int
    seq: int
    hash: str
    at: str
    prev_seq: int
    prev_hash: str
    key_id: str | None
    body: bytes  # the exact bytes signed
    sig: bytes | None
    line: int = 0

    def to_line(self) -> str:
        sig = base64.b64encode(self.sig).decode() if self.sig is not None else None
        return json.dumps({"body": self.body.decode(), "sig": sig}, separators=(",", ":")) + "\n"


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_line(text: str, line: int = 0) -> Checkpoint:
    """One log line as a Checkpoint; ValueError naming what is wrong (the signature is checked by verify)."""
    try:
        outer = json.loads(text)
        body_text = outer["body"]
        sig_text = outer["sig"]
        body = json.loads(body_text)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"line {line} of the checkpoint log is not a checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(body, dict) or body.get("log") != LOG_NAME:
        raise ValueError(f"line {line} of the checkpoint log is not an {LOG_NAME} checkpoint")
    fields_ok = (
        all(_is_count(body.get(k)) for k in ("n", "seq", "prev_seq"))
        and _is_hash(body.get("hash"))
        and _is_hash(body.get("prev_hash"))
        and isinstance(body.get("at"), str)
        and (body.get("key_id") is None or isinstance(body.get("key_id"), str))
    )
    if not fields_ok:
        raise ValueError(f"line {line} of the checkpoint log has a missing or malformed field: {body_text[:200]!r}")
    sig: bytes | None = None
    if sig_text is not None:
        if not isinstance(sig_text, str):
            raise ValueError(f"line {line} of the checkpoint log has a signature that is not base64 text")
        try:
            sig = base64.b64decode(sig_text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"line {line} of the checkpoint log has a signature that is not base64") from None
    return Checkpoint(
        n=body["n"],
        seq=body["seq"],
        hash=body["hash"],
        at=body["at"],
        prev_seq=body["prev_seq"],
        prev_hash=body["prev_hash"],
        key_id=body.get("key_id"),
        body=str(body_text).encode(),
        sig=sig,
        line=line,
    )


def make_checkpoint(
    previous: Checkpoint | None, seq: int, digest: str, at: str, key: Ed25519PrivateKey | None, genesis: str
) -> Checkpoint:
    """The checkpoint after ``previous`` for head ``seq``/``digest``, signed with ``key`` when there is one."""
    body = canonical_json(
        {
            "log": LOG_NAME,
            "n": (previous.n + 1) if previous else 1,
            "seq": seq,
            "hash": digest,
            "at": at,
            "prev_seq": previous.seq if previous else 0,
            "prev_hash": previous.hash if previous else genesis,
            "key_id": key_id(key.public_key()) if key is not None else None,
        }
    )
    return parse_line(
        json.dumps({"body": body.decode(), "sig": base64.b64encode(key.sign(body)).decode() if key else None})
    )


def signature_problem(cp: Checkpoint, keys: dict[str, Ed25519PublicKey]) -> str | None:
    """Why ``cp`` is not signed by one of ``keys`` (key id → key), or None when it is."""
    if cp.sig is None:
        return f"checkpoint {cp.n} (line {cp.line}) is not signed"
    key = keys.get(cp.key_id or "")
    if key is None:
        return (
            f"checkpoint {cp.n} (line {cp.line}) names key {cp.key_id}, which is not a trusted audit key "
            f"({', '.join(sorted(keys)) or 'none'}): the key was swapped or the checkpoint forged"
        )
    try:
        key.verify(cp.sig, cp.body)
    except InvalidSignature:
        return f"checkpoint {cp.n} (line {cp.line}) has a signature that does not verify with key {cp.key_id}"
    return None


@dataclass(frozen=True, slots=True)
class CheckpointLog:
    """The lines of the log that parse, the first problem found reading it, and whether the file exists."""

    checkpoints: tuple[Checkpoint, ...]
    problem: str | None
    exists: bool

    @property
    def last(self) -> Checkpoint | None:
        return self.checkpoints[-1] if self.checkpoints else None


def read_log(path: Path, genesis: str) -> CheckpointLog:
    """Read every checkpoint; stops at the first malformed line or broken link, which becomes ``problem``.

    Links: each checkpoint's ``n`` is one more than the last, and ``prev_seq``/``prev_hash`` name the last one's
    head, so a line cut out of the middle, replayed at the end or reordered is named here.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return CheckpointLog((), None, False)
    out: list[Checkpoint] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cp = parse_line(line, number)
        except ValueError as exc:
            return CheckpointLog(tuple(out), str(exc), True)
        prev = out[-1] if out else None
        want = (prev.n + 1, prev.seq, prev.hash) if prev else (1, 0, genesis)
        if (cp.n, cp.prev_seq, cp.prev_hash) != want or cp.seq < cp.prev_seq:
            return CheckpointLog(
                tuple(out),
                f"checkpoint on line {number} (n={cp.n}, entry {cp.seq}) does not follow checkpoint "
                f"{want[0] - 1} (entry {want[1]}): a checkpoint was removed, replayed or reordered",
                True,
            )
        out.append(cp)
    return CheckpointLog(tuple(out), None, True)


def read_last(path: Path, genesis: str, *, window: int = 8192) -> CheckpointLog:
    """Only the last checkpoint of the log (read from its end): what the writer needs, in constant time."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - window))
            tail = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return CheckpointLog((), None, False)
    lines = [line for line in tail.splitlines() if line.strip()]
    if not lines:
        return CheckpointLog((), None, True)
    try:
        return CheckpointLog((parse_line(lines[-1], 0),), None, True)
    except ValueError as exc:
        return CheckpointLog((), f"the last line of the checkpoint log is damaged: {exc}", True)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<path>.lock``: one writer of the log at a time, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield


def append_line(path: Path, cp: Checkpoint) -> None:
    """Append ``cp`` and fsync: the log only grows."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, cp.to_line().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
