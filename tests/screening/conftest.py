from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI with a data dir of the test's own, so no abusedesk.toml of the developer's is read."""
    monkeypatch.setenv("ABUSEDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ABUSEDESK_CONFIG", raising=False)
    return CliRunner()
