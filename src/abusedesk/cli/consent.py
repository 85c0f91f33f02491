"""`abusedesk consent ...`: the registry of written consent for load and security tests (clause 1.3).

Every command acts as the user of the API token in ``ABUSEDESK_TOKEN`` (as the case commands do)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from abusedesk.cli import context
from abusedesk.domain.timeutil import parse_time

app = typer.Typer(help="consent commands", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ActorOpt = Annotated[
    str, typer.Option("--actor", help="Who does this (recorded with the consent and in the audit log).")
]
ReasonOpt = Annotated[str, typer.Option(help="Why (recorded).")]


def _service() -> Any:
    from abusedesk.consent import ConsentService

    return ConsentService


@app.command("request")
def request(
    service: Annotated[list[str], typer.Option("--service", help="A source service id (repeat for several).")],
    target: Annotated[list[str], typer.Option("--target", help="A target CIDR or address (repeat).")],
    start: Annotated[str, typer.Option("--from", help="Window start, ISO 8601 UTC.")],
    end: Annotated[str, typer.Option("--to", help="Window end, ISO 8601 UTC.")],
    kind: Annotated[str, typer.Option(help="load | security")] = "load",
    max_rate: Annotated[int | None, typer.Option(help="Packets per second toward the targets.")] = None,
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """A customer asks for written consent to test the provider's ranges."""
    with context.errors_to_exit(), context.runtime() as rt:
        data = _service()(rt).request(
            context.principal(rt), service_ids=service, targets=target, window_from=parse_time(start, assume_utc=True),
            window_to=parse_time(end, assume_utc=True), kind=kind, max_rate=max_rate, reason=reason,
        )  # fmt: skip
    _show(data, as_json)


def _decide(status: str, consent_id: str, reason: str, as_json: bool) -> None:
    with context.errors_to_exit(), context.runtime() as rt:
        data = _service()(rt).decide(context.principal(rt), consent_id, status=status, reason=reason)
    _show(data, as_json)


@app.command("approve")
def approve(consent_id: str, reason: ReasonOpt = "", as_json: JsonOpt = False) -> None:
    """The provider approves a requested consent (not its requester)."""
    _decide("approved", consent_id, reason, as_json)


@app.command("reject")
def reject(consent_id: str, reason: ReasonOpt = "", as_json: JsonOpt = False) -> None:
    """The provider rejects a requested consent."""
    _decide("rejected", consent_id, reason, as_json)


@app.command("revoke")
def revoke(consent_id: str, reason: ReasonOpt = "", as_json: JsonOpt = False) -> None:
    """An approved consent ends now: traffic after this is no longer covered."""
    _decide("revoked", consent_id, reason, as_json)


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The consents, oldest first."""
    with context.errors_to_exit(), context.runtime() as rt:
        rows = _service()(rt).list_consents(context.principal(rt), status=status, customer_id=customer)
    if as_json:
        context.emit(rows, True)
        return
    for r in rows:
        typer.echo(f"{r['id']}  {r['status']:<9} {r['kind']:<8} {','.join(r['service_ids'])} -> "
                   f"{','.join(r['targets'])}  {r['window_from']}..{r['window_to']}  by {r['requested_by']}"
                   f"{'  decided by ' + r['decided_by'] if r['decided_by'] else ''}")  # fmt: skip


def _show(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        context.emit(data, True)
    else:
        typer.echo(f"{data['id']} {data['status']}")
