"""What every command shares: the Runtime built from Settings, JSON output, and error-to-exit-code mapping.

Imports of the heavy parts (pydantic-settings, SQLAlchemy through the Runtime) happen inside the functions, so a
command that needs none of them (``--help``, ``version``, ``kinds``) starts without them (issue 11, item 5).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer._click.globals import get_current_context  # typer >= 0.29 vendors click (pyproject pins it)

if TYPE_CHECKING:
    from abusedesk.config import Settings
    from abusedesk.domain.identity import Principal
    from abusedesk.runtime import Runtime

_overrides: dict[str, Any] = {}
_verbosity: dict[str, Any] = {"level": 0, "json_logs": False}


def set_global_options(
    data_dir: Path | None, database_url: str | None, policy_file: Path | None, *, verbose: int = 0
) -> None:
    _overrides.clear()
    if data_dir is not None:
        _overrides["data_dir"] = data_dir
    if database_url is not None:
        _overrides["database_url"] = database_url
    if policy_file is not None:
        _overrides["policy_file"] = policy_file
    _verbosity["level"] = verbose
    _verbosity["json_logs"] = False


def global_data_dir() -> Path | None:
    """The ``--data-dir`` given before the command, if any."""
    value = _overrides.get("data_dir")
    return Path(value) if value is not None else None


def force_json_logs() -> None:
    """Log JSON lines whatever ``log_format`` says (``serve --json``)."""
    _verbosity["json_logs"] = True


def log_level(s: Settings, default: str = "WARNING") -> str:
    """The level a command logs at: ``-v`` INFO, ``-vv`` DEBUG; else the setting ``log_level`` when it was set
    (environment or TOML), else ``default`` (WARNING: a command's output is on stdout; ``serve`` and ``worker``
    pass INFO, their log is their output)."""
    verbose = _verbosity["level"]
    if verbose >= 2:
        return "DEBUG"
    if verbose == 1:
        return "INFO"
    if "log_level" in s.model_fields_set:
        return s.log_level
    return default


def settings(*, default_log_level: str = "WARNING") -> Settings:
    from abusedesk.config import load_settings
    from abusedesk.logs import setup_logging

    s = load_settings(**_overrides)
    setup_logging(log_level(s, default_log_level), "json" if _verbosity["json_logs"] else s.log_format)
    return s


def require_data_dir(s: Settings) -> None:
    """A command that only reads (or changes what is there) needs an existing data directory.

    Without this check a mistyped ``--data-dir`` would quietly get a new, empty database and answer from it.
    """
    from abusedesk.domain.errors import ConfigError

    if not s.data_dir.is_dir():
        what = "is not a directory" if s.data_dir.exists() else "does not exist"
        raise ConfigError(
            f"data directory {s.data_dir} {what} (--data-dir, ABUSEDESK_DATA_DIR or the default ./abusedesk-data); "
            "check the path, or create it with `abusedesk init`",
            field="data_dir",
        )


@contextmanager
def runtime(*, create: bool = False, default_log_level: str = "WARNING") -> Iterator[Runtime]:
    """The Runtime of one command; ``create`` for commands that bring data (init, serve, imports, intake doors):
    only they may create a data directory that is not there."""
    from abusedesk.plugins import check_plugin_settings
    from abusedesk.runtime import Runtime

    s = settings(default_log_level=default_log_level)
    if not create:
        require_data_dir(s)
    if s.parsers or s.detectors:  # only configured plugins need checking: the registry imports every plugin
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


def is_json() -> bool:
    """Whether the running command was given ``--json`` (its ``as_json`` parameter)."""
    ctx = get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("as_json"):
            return True
        ctx = ctx.parent
    return False


def emit_error(message: str, status: int, errors: list[str] | None = None) -> None:
    """One error as JSON on stdout, in the API's error shape: ``{ok, error, errors, status}``."""
    typer.echo(json.dumps({"ok": False, "error": message, "errors": errors or [], "status": status}))


def _report(message: str, status: int, errors: list[str] | None = None) -> None:
    if is_json():
        emit_error(message, status, errors)
        return
    typer.echo(f"error: {message}", err=True)
    for sub in errors or []:
        typer.echo(f"  {sub}", err=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    _report(message, code)
    return typer.Exit(code)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """An AbuseDeskError becomes one line on stderr (JSON on stdout under ``--json``) and exit 1 (2 for bad
    configuration or usage)."""
    from abusedesk.domain.errors import AbuseDeskError, ConfigError

    try:
        yield
    except ConfigError as exc:
        _report(exc.message, 2, [sub.message for sub in exc.errors])
        raise typer.Exit(2) from None
    except AbuseDeskError as exc:
        _report(exc.message, 1)
        raise typer.Exit(1) from None


def is_tty() -> bool:
    return sys.stdout.isatty()
