"""Content-addressed raw store: bytes are written, fsync'd and renamed into place before anyone is told "stored".

Layout: ``<root>/<sha[:2]>/<sha>``. Writing the same bytes twice is a no-op; a crash mid-write leaves only a
temporary file, which the next ``put`` of the same bytes replaces.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from abusedesk.domain.errors import NotFound


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
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return sha, True

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
