from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from abusedesk.domain.errors import NotFound
from abusedesk.intake.rawstore import RawStore


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    sha, new = store.put(b"hello")
    assert sha == hashlib.sha256(b"hello").hexdigest()
    assert new is True
    assert store.put(b"hello") == (sha, False)
    assert store.get(sha) == b"hello"
    assert not list(tmp_path.rglob(".tmp-*"))


def test_get_unknown_names_the_store(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    with pytest.raises(NotFound, match="not in the raw store"):
        store.get("0" * 64)
    with pytest.raises(NotFound, match="not a raw input id"):
        store.get("../etc/passwd")
