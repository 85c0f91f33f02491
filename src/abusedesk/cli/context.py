"""What every command shares: the Runtime built from Settings, JSON output, and error-to-exit-code mapping."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from abusedesk.config import Settings, load_settings
from abusedesk.domain.errors import AbuseDeskError, ConfigError
from abusedesk.domain.identity import Principal
from abusedesk.logs import setup_logging
from abusedesk.plugins import check_plugin_settings
from abusedesk.runtime import Runtime

_overrides: dict[str, Any] = {}


def set_global_options(data_dir: Path | None, database_url: str | None, policy_file: Path | None) -> None:
    _overrides.clear()
    if data_dir is not None:
        _overrides["data_dir"] = data_dir
    if database_url is not None:
        _overrides["database_url"] = database_url
    if policy_file is not None:
        _overrides["policy_file"] = policy_file


def settings() -> Settings:
    s = load_settings(**_overrides)
    setup_logging(s.log_level, s.log_format)
    return s


def require_data_dir(s: Settings) -> None:
    """A command that only reads (or changes what is there) needs an existing data directory.

    Without this check a mistyped ``--data-dir`` would quietly get a new, empty database and answer from it.
    """
    if not s.data_dir.is_dir():
        what = "is not a directory" if s.data_dir.exists() else "does not exist"
        raise ConfigError(
            f"data directory {s.data_dir} {what} (--data-dir, ABUSEDESK_DATA_DIR or the default ./abusedesk-data); "
            "check the path, or create it with `abusedesk init`",
            field="data_dir",
        )


@contextmanager
def runtime(*, create: bool = False) -> Iterator[Runtime]:
    """The Runtime of one command; ``create`` for commands that bring data (init, serve, imports, intake doors):
    only they may create a data directory that is not there."""
    s = settings()
    if not create:
        require_data_dir(s)
    check_plugin_settings(s)
    rt = Runtime.open(s)
    try:
        yield rt
    finally:
        rt.close()


def principal(rt: Runtime) -> Principal:
    """Who runs this command: the user of the API token in ABUSEDESK_TOKEN (setting ``token``), checked as the
    API checks a Bearer token. There is no other way to act on cases: no name on the command line."""
    from abusedesk.identity.service import IdentityService

    token = rt.settings.token.get_secret_value() if rt.settings.token is not None else None
    return IdentityService(rt).authenticate(token)


def emit(data: Any, as_json: bool) -> None:
    """Print ``data`` as JSON for scripts; callers print their own table otherwise."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """An AbuseDeskError becomes one line on stderr and exit 1 (2 for bad configuration or usage)."""
    try:
        yield
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        for sub in exc.errors:
            typer.echo(f"  {sub.message}", err=True)
        raise typer.Exit(2) from None
    except AbuseDeskError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def is_tty() -> bool:
    return sys.stdout.isatty()
