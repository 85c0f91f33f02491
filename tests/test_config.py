from __future__ import annotations

from pathlib import Path

import pytest

from abusedesk.config import load_settings
from abusedesk.domain.errors import ConfigError


def test_env_overrides_toml_and_nested_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "a.toml"
    toml.write_text('log_level = "DEBUG"\n[smtp]\nhost = "mail.example.net"\nport = 2525\n')
    monkeypatch.setenv("ABUSEDESK_CONFIG", str(toml))
    monkeypatch.setenv("ABUSEDESK_SMTP__PORT", "587")
    s = load_settings(data_dir=tmp_path)
    assert s.log_level == "DEBUG"
    assert s.smtp.host == "mail.example.net"
    assert s.smtp.port == 587
    assert s.sqlalchemy_url.startswith("sqlite:///")


def test_bad_value_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABUSEDESK_SMTP__PORT", "not-a-port")
    with pytest.raises(ConfigError, match="smtp__port"):
        load_settings(data_dir=tmp_path)


def test_missing_config_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABUSEDESK_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_settings(data_dir=tmp_path)


def test_json_logging(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import logging

    from abusedesk.logs import setup_logging

    setup_logging("INFO", "json")
    logging.getLogger("abusedesk.test").info("hello %s", "world", extra={"ad_raw_id": "abc"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message"] == "hello world"
    assert record["raw_id"] == "abc"
    assert record["level"] == "info"


def test_data_dir_given_to_settings_finds_its_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABUSEDESK_CONFIG", raising=False)
    monkeypatch.setenv("ABUSEDESK_DATA_DIR", str(tmp_path / "other"))
    (tmp_path / "abusedesk.toml").write_text('log_level = "DEBUG"\n[smtp]\nport = 2525\n')
    s = load_settings(data_dir=tmp_path)
    assert (s.log_level, s.smtp.port) == ("DEBUG", 2525)
    monkeypatch.setenv("ABUSEDESK_SMTP__PORT", "587")  # the environment beats the file
    assert load_settings(data_dir=tmp_path).smtp.port == 587


def test_only_settings_read_the_environment() -> None:
    """STYLE.md: nothing but config.py reads os.environ; a Typer envvar= or os.getenv elsewhere bypasses Settings."""
    import re

    src = Path(__file__).resolve().parents[1] / "src" / "abusedesk"
    pattern = re.compile(r"os\.environ|getenv\(|envvar\s*=")
    offenders = [
        f"{path.relative_to(src)}:{n}"
        for path in sorted(src.rglob("*.py"))
        if path.name != "config.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_secrets_are_not_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABUSEDESK_IMAP__PASSWORD", "imap-secret")
    monkeypatch.setenv("ABUSEDESK_SMTP__PASSWORD", "smtp-secret")
    monkeypatch.setenv("ABUSEDESK_WEBHOOK__SECRET", "hmac-secret")
    s = load_settings(data_dir=tmp_path)
    shown = repr(s) + s.model_dump_json()
    assert not any(secret in shown for secret in ("imap-secret", "smtp-secret", "hmac-secret"))
    assert s.imap.password is not None and s.imap.password.get_secret_value() == "imap-secret"
    assert s.webhook.secret.get_secret_value() == "hmac-secret"
