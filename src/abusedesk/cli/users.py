"""`abusedesk user bootstrap|add|list|disable|passwd|totp` and `abusedesk token create|list|revoke`.

Thin commands over :class:`abusedesk.identity.service.IdentityService`. Every command but ``user bootstrap`` acts
as the user of ``ABUSEDESK_TOKEN`` (an admin, except for a user's own tokens). ``user bootstrap NAME`` makes the
first admin and prints its token once; it refuses once an admin exists. ``user passwd NAME`` sets a console
password read from standard input (asked twice on a terminal); ``user totp NAME`` enrols (or replaces) a TOTP
second factor and prints its secret once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from abusedesk.cli import context

if TYPE_CHECKING:
    from abusedesk.identity.service import IdentityService
    from abusedesk.runtime import Runtime

user_app = typer.Typer(help="user commands", no_args_is_help=True)
token_app = typer.Typer(help="token commands", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _identity(rt: Runtime) -> IdentityService:
    from abusedesk.identity.service import IdentityService

    return IdentityService(rt)


@user_app.command()
def bootstrap(
    name: Annotated[str, typer.Argument(help="The first admin's user name.")], as_json: JsonOpt = False
) -> None:
    """Make the first admin and print its API token once (refused once an admin exists)."""
    with context.errors_to_exit(), context.runtime(create=True) as rt:
        user, token = _identity(rt).bootstrap(name)
    if as_json:
        context.emit({"user": user, **token.to_dict()}, True)
        return
    typer.echo(f"admin {user['name']} ({user['id']}) created; its API token (shown once, keep it secret):")
    typer.echo(token.token)
    typer.echo(f"export ABUSEDESK_TOKEN={token.token}")


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="User name (stored case-folded).")],
    role: Annotated[str, typer.Option("--role", help="analyst | approver | admin | auditor | customer")],
    customer: Annotated[str | None, typer.Option("--customer", help="The customer id (customer users only).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a user with one role (an admin's ABUSEDESK_TOKEN)."""
    with context.errors_to_exit(), context.runtime() as rt:
        data = _identity(rt).add_user(context.principal(rt), name, role, customer)
    if as_json:
        context.emit(data, True)
        return
    bound = f" for customer {data['customer_id']}" if data["customer_id"] else ""
    typer.echo(f"user {data['name']} ({data['id']}) added as {data['role']}{bound}")


@user_app.command("list")
def list_users(as_json: JsonOpt = False) -> None:
    """The users, their roles and whether they are disabled."""
    with context.errors_to_exit(), context.runtime() as rt:
        rows = _identity(rt).list_users(context.principal(rt))
    if as_json:
        context.emit(rows, True)
        return
    for u in rows:
        state = "disabled" if u["disabled"] else "active"
        typer.echo(f"{u['id']}  {u['name']:<20} {u['role']:<9} {u['customer_id'] or '-':<12} {state}")


@user_app.command()
def disable(name: Annotated[str, typer.Argument(help="User name or id.")], as_json: JsonOpt = False) -> None:
    """Disable a user: its tokens stop working at once; its past actions stay attributed to it."""
    with context.errors_to_exit(), context.runtime() as rt:
        data = _identity(rt).disable_user(context.principal(rt), name)
    if as_json:
        context.emit(data, True)
        return
    typer.echo(f"user {data['name']} ({data['id']}) disabled")


def _read_password(name: str) -> str:
    """The new password: from a terminal asked twice without echo; otherwise the first line of standard input."""
    import getpass
    import sys

    from abusedesk.domain.errors import Conflict

    if sys.stdin.isatty():
        first = getpass.getpass(f"new console password for {name}: ")
        if getpass.getpass("again: ") != first:
            raise Conflict("the two passwords differ; nothing was changed")
        return first
    line = sys.stdin.readline()
    if not line:
        raise Conflict("no password on standard input (give it as one line)")
    return line.rstrip("\r\n")


@user_app.command()
def passwd(
    name: Annotated[str, typer.Argument(help="User name or id.")],
    as_json: JsonOpt = False,
) -> None:
    """Set a console password, read from standard input (twice on a terminal); ends the user's console sessions.

    An admin sets anyone's; any user its own (ABUSEDESK_TOKEN). At least 12 characters; stored as argon2id."""
    with context.errors_to_exit(), context.runtime() as rt:
        principal = context.principal(rt)
        password = _read_password(name)
        data = _identity(rt).set_password(principal, name, password)
    if as_json:
        context.emit(data, True)
        return
    typer.echo(f"console password of {data['name']} ({data['id']}) set; {data['sessions_ended']} session(s) ended")


@user_app.command()
def totp(
    name: Annotated[str, typer.Argument(help="User name or id.")],
    as_json: JsonOpt = False,
) -> None:
    """Enrol a TOTP second factor (or replace a lost one): prints the secret and its otpauth:// URI once.

    Required at sign-in for the roles of web.totp_roles (approver, admin); the user's sessions end."""
    with context.errors_to_exit(), context.runtime() as rt:
        data = _identity(rt).enrol_totp(context.principal(rt), name)
    if as_json:
        context.emit(data, True)
        return
    typer.echo(f"TOTP second factor of {data['name']} ({data['id']}) enrolled; shown once, hand it over safely:")
    typer.echo(f"secret: {data['secret']}")
    typer.echo(f"uri:    {data['uri']}")


@token_app.command()
def create(
    name: Annotated[str, typer.Argument(help="The user the token is for (name or id).")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="read and/or write (default both); repeat for several.")
    ] = None,
    days: Annotated[int | None, typer.Option("--days", help="Valid for this many days (token_lifetime_days).")] = None,
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Make an API token; it is printed once and stored only as a keyed hash."""
    with context.errors_to_exit(), context.runtime() as rt:
        token = _identity(rt).create_token(
            context.principal(rt), name, scopes=tuple(scope or ("read", "write")), days=days, label=label
        )
    if as_json:
        context.emit(token.to_dict(), True)
        return
    typer.echo(f"token {token.id} for {token.user_id}, expires {token.expires_at.isoformat()} (shown once):")
    typer.echo(token.token)


@token_app.command("list")
def list_tokens(as_json: JsonOpt = False) -> None:
    """Tokens (never their secret): all for an admin, one's own otherwise."""
    with context.errors_to_exit(), context.runtime() as rt:
        rows = _identity(rt).list_tokens(context.principal(rt))
    if as_json:
        context.emit(rows, True)
        return
    for t in rows:
        state = "revoked" if t["revoked"] else f"expires {t['expires_at']}"
        typer.echo(f"{t['id']}  {t['user']:<20} {','.join(t['scopes']):<10} {state}  {t['label']}")


@token_app.command()
def revoke(token_id: Annotated[str, typer.Argument(help="The token's id (tk_...).")], as_json: JsonOpt = False) -> None:
    """Revoke a token: it stops working at once."""
    with context.errors_to_exit(), context.runtime() as rt:
        data = _identity(rt).revoke_token(context.principal(rt), token_id)
    if as_json:
        context.emit(data, True)
        return
    typer.echo(f"token {data['id']} revoked")
