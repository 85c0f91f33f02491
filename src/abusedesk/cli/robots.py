"""`abusedesk robots check`: judge URLs against a robots.txt with our RFC 9309 matcher; no database needed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from abusedesk.cli import context
from abusedesk.robots import RobotsTxt, Verdict

app = typer.Typer(help="robots commands", no_args_is_help=True)


@app.command()
def check(
    robots_file: Annotated[Path | None, typer.Argument(help="The robots.txt file (its bytes as served).")] = None,
    user_agent: Annotated[str | None, typer.Argument(help="A product token or a whole User-Agent header.")] = None,
    url: Annotated[str | None, typer.Argument(help="The URL (or path) the agent fetched.")] = None,
    status: Annotated[int, typer.Option(help="HTTP status the robots.txt was served with (0: unreachable).")] = 200,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch",
            help='Read JSON lines {"robots_txt", "status", "user_agent", "url"} on stdin; '
            "write one JSON verdict a line.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Whether USER_AGENT may fetch URL by ROBOTS_FILE, with the rule and line the verdict rests on.

    The state is allowed, disallowed or ambiguous (where RFC 9309 leaves room; docs/reference/robots.md).
    Exit 0 with a verdict, 1 when a batch line could not be judged, 2 for bad usage.
    """
    if batch:
        raise typer.Exit(_batch())
    if robots_file is None or user_agent is None or url is None:
        raise context.fail("give ROBOTS_FILE USER_AGENT URL, or --batch with JSON lines on stdin", 2)
    try:
        content = robots_file.read_bytes()
    except OSError as exc:
        raise context.fail(f"cannot read robots file {robots_file}: {exc.strerror}", 2) from None
    verdict = RobotsTxt(content, status).check(user_agent, url)
    if as_json:
        context.emit(verdict.as_dict(), True)
        return
    typer.echo(_line(verdict))


def _line(v: Verdict) -> str:
    where = f" ({v.rule}, line {v.line})" if v.rule else ""
    delay = f"; crawl-delay {v.crawl_delay:g}s" if v.crawl_delay is not None else ""
    group = f"; group {v.group}" if v.group else ""
    return f"{v.state}{where}{group}{delay}: {v.reason}"


def _batch() -> int:
    parsed: dict[tuple[str, int], RobotsTxt] = {}
    failed = 0
    out = sys.stdout
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            item: Any = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
            body = item.get("robots_txt")
            status = int(item.get("status", 200) if item.get("status") is not None else 200)
            agent, url = item["user_agent"], item["url"]
            if not isinstance(agent, str) or not isinstance(url, str) or not isinstance(body, str | None):
                raise ValueError("robots_txt, user_agent and url must be strings")
        except (ValueError, KeyError, TypeError) as exc:
            failed += 1
            out.write(json.dumps({"line": number, "error": f"stdin line {number}: {exc}"}) + "\n")
            continue
        key = (body or "", status if body is not None else -status)
        robots = parsed.get(key)
        if robots is None:
            if len(parsed) > 1024:
                parsed.clear()
            robots = parsed[key] = RobotsTxt(body, status)
        out.write(json.dumps(robots.check(agent, url).as_dict()) + "\n")
    return 1 if failed else 0


@app.command("import")
def import_(
    host: Annotated[str, typer.Argument(help="The target host the file belongs to (e.g. 198.51.100.7).")],
    robots_file: Annotated[Path, typer.Argument(help="The robots.txt as the host served it.")],
    status: Annotated[int, typer.Option(help="HTTP status it was served with (0: unreachable).")] = 200,
    scheme: Annotated[str, typer.Option(help="http or https.")] = "http",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Record a file as HOST's robots.txt in the robots store (the crawler detectors judge by it)."""
    from abusedesk.robots.store import RobotsStore

    try:
        content = robots_file.read_bytes()
    except OSError as exc:
        raise context.fail(f"cannot read robots file {robots_file}: {exc.strerror}", 2) from None
    with context.errors_to_exit(), context.runtime(create=True) as rt:
        record = RobotsStore(rt).imported(host, content, status, origin=str(robots_file), scheme=scheme)
    _show(record.as_dict(), as_json)


@app.command()
def fetch(
    host: Annotated[str, typer.Argument(help="The target host whose /robots.txt to fetch.")],
    scheme: Annotated[str, typer.Option(help="http or https.")] = "http",
    force: Annotated[
        bool, typer.Option("--force", help="Fetch even when the cached copy is younger than 24 h.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Fetch HOST's robots.txt with abusedesk's own user agent (setting robots.user_agent) into the store."""
    from abusedesk.robots.store import RobotsStore

    with context.errors_to_exit(), context.runtime(create=True) as rt:
        store = RobotsStore(rt)
        record = store.fetch(host, scheme) if force else store.ensure(host, scheme)
    _show(record.as_dict(), as_json)


def _show(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        context.emit(row, True)
    else:
        typer.echo(f"{row['host']}: status {row['status']}, {row['bytes']} bytes, {row['source']} at "
                   f"{row['fetched_at']} ({row['origin']})")  # fmt: skip
