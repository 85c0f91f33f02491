"""Content-addressed raw store: bytes are written, fsync'd and renamed into place before anyone is told "stored".

Layout: ``<root>/<sha[:2]>/<sha>``. Writing the same bytes twice is a no-op; a crash mid-write leaves only a
temporary file, which the next ``put`` of the same bytes replaces.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from abusedesk.domain.errors import NotFound

log = logging.getLogger(__name__)


def _load_syncfs() -> object | None:
    """Linux's syncfs(2) from the C library (through ctypes: no code of ours to compile), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SYNCFS = _load_syncfs()


def _fsync_dir(directory: Path) -> None:
    """Make a rename into ``directory`` durable (the directory entry is data of the directory)."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _write_in_place(path: Path, data: bytes, *, fsync: bool) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it there: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ContentStore:
    """Bytes named by their SHA-256 under ``root``; ``what``/``place`` name them in error messages."""

    what = "content blob"
    place = "content store"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha: str) -> Path:
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise NotFound(f"{sha!r} is not a {self.what} id (64 lowercase hex digits)")
        return self.root / sha[:2] / sha

    def put(self, data: bytes) -> tuple[str, bool]:
        """Store bytes durably; return (sha256, newly_written)."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha)
        if path.exists() and path.stat().st_size == len(data):
            return sha, False
        _write_in_place(path, data, fsync=True)
        _fsync_dir(path.parent)
        return sha, True

    def put_many(self, items: Sequence[bytes]) -> list[str]:
        """Store many inputs with one flush to disk for all of them (group commit); returns their SHA-256s.

        Each is written to a temporary file and renamed into place; then one ``syncfs`` makes every file and
        every rename durable together, where one ``fsync`` per file and per directory cost ~2 ms each. Without
        syncfs (not Linux) each file is fsync'd as ``put`` does.
        """
        shas: list[str] = []
        written: list[Path] = []
        for data in items:
            sha = hashlib.sha256(data).hexdigest()
            shas.append(sha)
            path = self.path_for(sha)
            if path.exists() and path.stat().st_size == len(data):
                continue
            if _SYNCFS is None:
                self.put(data)
                continue
            _write_in_place(path, data, fsync=False)  # made durable by the one sync below
            written.append(path)
        if written:
            self.sync()
        return shas

    def put_file(self, source: Path, *, chunk: int = 1 << 20) -> tuple[str, int]:
        """Copy a file into the store a chunk at a time, hashing as it goes (memory stays one chunk, whatever the
        size); fsync'd and renamed into place like ``put``. Returns (sha256, size)."""
        tmp_dir = self.root / ".incoming"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=".tmp-")
        h = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                while block := src.read(chunk):
                    h.update(block)
                    out.write(block)
                    size += len(block)
                out.flush()
                os.fsync(out.fileno())
            sha = h.hexdigest()
            path = self.path_for(sha)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return sha, size

    def sync(self) -> None:
        """Flush the file system that holds the store (data, renames, new directories) to disk."""
        assert _SYNCFS is not None
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if _SYNCFS(fd) != 0:  # type: ignore[operator]
                err = ctypes.get_errno()
                raise OSError(err, f"syncfs of the {self.place} at {self.root} failed: {os.strerror(err)}")
        finally:
            os.close(fd)

    def get(self, sha: str) -> bytes:
        path = self.path_for(sha)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{self.what} {sha} is not in the {self.place} at {self.root}") from None

    def open(self, sha: str) -> BinaryIO:
        """The stored bytes as a binary file, for reading a large input as a stream; the caller closes it."""
        path = self.path_for(sha)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"{self.what} {sha} is not in the {self.place} at {self.root}") from None

    def exists(self, sha: str) -> bool:
        return self.path_for(sha).exists()


class RawStore(ContentStore):
    """Raw inputs as received (``<data_dir>/raw``)."""

    what = "raw input"
    place = "raw store"
