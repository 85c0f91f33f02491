"""The ``abusedesk`` command: global options, then one sub-app per command group.

**Start-up.** Command groups are loaded when they are invoked, not when the program starts (issue 11, item 5):
``abusedesk --help`` lists them from :data:`COMMANDS` without importing them, and ``abusedesk case list`` imports
``cli/case.py`` and what it needs, not the API, the demo or the intake channels. The sub-apps keep their heavy
imports (SQLAlchemy, pydantic-settings, FastAPI) inside their functions or behind ``cli/context.py``'s functions.

**Help** is click's plain formatter (``rich_markup_mode=None``): no ``<bool>`` metavar on flags, and no import
of rich.

**Errors under ``--json``** are one JSON object on stdout, ``{"ok": false, "error": ..., "errors": [...],
"status": exit code}`` (the HTTP error shape), usage errors included; without ``--json`` they are one line on
stderr.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.core import Command, Context  # typer >= 0.29 vendors click (pyproject pins it)
from typer._click.exceptions import ClickException
from typer._click.formatting import HelpFormatter
from typer.core import TyperGroup

from abusedesk import __version__
from abusedesk.cli import context

#: name -> (module, attribute, one-line help); a Typer attribute is a group, a function a command
COMMANDS: dict[str, tuple[str, str, str]] = {
    "policy": ("abusedesk.cli.policy", "app", "Show and check the policy file."),
    "inventory": ("abusedesk.cli.inventory", "app", "Import the inventory; who had an address when."),
    "intake": ("abusedesk.cli.intake", "app", "Take in complaints and feeds; quarantine and retry."),
    "case": ("abusedesk.cli.case", "app", "Work cases: list, show, transition, act, approve, note, export."),
    "audit": ("abusedesk.cli.audit", "app", "Verify the hash-chained audit log."),
    "user": (
        "abusedesk.cli.users",
        "user_app",
        "Users and roles: bootstrap the first admin, add, list, disable; console password and TOTP.",
    ),
    "token": ("abusedesk.cli.users", "token_app", "API tokens: create (shown once), list, revoke."),
    "demo": (
        "abusedesk.cli.demo",
        "demo",
        "Build a fresh desk, feed it sample signals through the real doors, and show what it made of them.",
    ),
    "dlq": ("abusedesk.cli.dlq", "app", "Dead letters: show them, replay them after a fix."),
    "pipeline": ("abusedesk.cli.pipeline", "app", "What waits between the stages; finish what is unfinished."),
    "telemetry": ("abusedesk.cli.telemetry", "app", "Flow telemetry: collect IPFIX/NetFlow, import flow files."),
    "consent": ("abusedesk.cli.consent", "app", "Written consent for load and security tests (clause 1.3)."),
    "screen": (
        "abusedesk.cli.screen",
        "app",
        "Screen signups: disposable e-mail (section 2), circumvention (1.10).",
    ),
    "worker": ("abusedesk.cli.worker", "worker", "Run one pipeline stage from the NATS bus."),
    "robots": ("abusedesk.cli.robots", "app", "Judge URLs by a robots.txt (RFC 9309); the robots store."),
    "weblog": ("abusedesk.cli.weblog", "app", "Egress HTTP logs into the pipeline (clause 1.14, 1.5)."),
    "serve": ("abusedesk.cli.serve", "serve", "Run the API, the intake listener and the pipeline in this process."),
}


def load_command(name: str) -> Command:
    """Import the module of command ``name`` and turn its Typer app (or function) into a click command."""
    module_name, attr, help_text = COMMANDS[name]
    obj = getattr(importlib.import_module(module_name), attr)
    if isinstance(obj, typer.Typer):
        obj.rich_markup_mode = None
        # added as a group of a wrapper, as add_typer did: a sub-app of one command (audit verify) stays a group
        outer = typer.Typer(rich_markup_mode=None, add_completion=False)
        outer.add_typer(obj, name=name, help=help_text)
        group: Command = typer.main.get_command(outer).commands[name]  # type: ignore[attr-defined]
        return group
    single = typer.Typer(rich_markup_mode=None, add_completion=False)
    single.command(name)(obj)
    command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The top-level group: the commands of :data:`COMMANDS` are imported only when invoked (or their help
    asked for); the list in ``--help`` comes from the table."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in COMMANDS:
            return load_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = []
        for name in super().list_commands(ctx):
            cmd = super().get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=formatter.width)))
        rows += [(name, help_text) for name, (_, _, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


app = typer.Typer(
    cls=LazyGroup,
    help="abusedesk: enforce an Acceptable Use Policy, from signal to case to action.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.callback()
def _globals(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (env ABUSEDESK_DATA_DIR).")] = None,
    database_url: Annotated[str | None, typer.Option(help="Database URL (env ABUSEDESK_DATABASE_URL).")] = None,
    policy_file: Annotated[Path | None, typer.Option(help="Policy file (env ABUSEDESK_POLICY_FILE).")] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="Log INFO (-v) or DEBUG (-vv) to stderr.")
    ] = 0,
) -> None:
    context.set_global_options(data_dir, database_url, policy_file, verbose=verbose)


@app.command()
def version(as_json: JsonOpt = False) -> None:
    """Print the version."""
    if as_json:
        context.emit({"version": __version__}, True)
    else:
        typer.echo(__version__)


@app.command()
def kinds(as_json: JsonOpt = False) -> None:
    """List the event kinds and the XARF v4 (category, type) each converts to and from."""
    from abusedesk.domain.kinds import KINDS, XARF_TO_KIND

    rows = [
        {
            "kind": k.name,
            "title": k.title,
            "xarf_category": k.xarf[0],
            "xarf_type": k.xarf[1],
            "xarf_native": XARF_TO_KIND.get(k.xarf) == k.name,
        }
        for k in KINDS.values()
    ]
    if as_json:
        context.emit(rows, True)
        return
    for r in rows:
        native = "" if r["xarf_native"] else " (nearest)"
        typer.echo(f"{r['kind']:<24} {r['xarf_category']}/{r['xarf_type']}{native}  {r['title']}")


@app.command()
def init(as_json: JsonOpt = False) -> None:
    """Create the data directory and bring the database to the newest schema."""
    with context.errors_to_exit(), context.runtime(create=True) as rt:
        data_dir, url = rt.settings.data_dir.resolve(), rt.engine.url
        if as_json:
            context.emit({"data_dir": str(data_dir), "database_url": url.render_as_string(hide_password=True)}, True)
        else:
            typer.echo(f"abusedesk data in {data_dir}, database {url!r}")


def main(argv: list[str] | None = None) -> Any:
    """The console script: usage errors under ``--json`` are JSON too."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--json" not in args:
        return app(args=args)
    try:
        code = app(args=args, standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except ClickException as exc:
        context.emit_error(exc.format_message(), exc.exit_code)
        sys.exit(exc.exit_code)
    except typer.Abort:
        context.emit_error("aborted", 1)
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
    return None
