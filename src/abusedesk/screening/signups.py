"""Attributing signups: the attribute stage's part for ``signup`` events (issue 14).

A signup is not a reported address to look up in the allocations: "whose is it" means the customer the signup
flow names, what screening says of its address, and which suspended or terminated customers its normalised
address links to. ``SignupLinker.attribute`` adds exactly that to each signup event, inside the attribute
stage's transaction, so the ``signup`` detector decides from the event alone (detectors do no I/O):

* ``customer_id``: the signup's own ``extra.customer_id`` (the new account's customer, in the inventory or not);
* ``extra.screening``: the verdict (``verdict``, ``rule``, ``matched_domain``, ``lists``, ``knowledge``);
* ``extra.normalized_email``: the linking key (``screening.identity``);
* ``extra.linked``: the suspended or terminated customers (inventory ``customers.status``, or a customer with a
  suspended service) whose contact address or account address has the same key, the new signup's own customer
  left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from abusedesk.domain.records import Event
from abusedesk.runtime import Runtime
from abusedesk.screening.identity import normalise_identity
from abusedesk.screening.service import ScreeningService
from abusedesk.store.tables.inventory import AccountRow, CustomerRow, ProjectRow, ServiceRow

SUSPENDED = ("suspended", "terminated")


def identity_or_none(address: str | None) -> str | None:
    if not address:
        return None
    try:
        return normalise_identity(address)
    except ValueError:
        return None


def suspended_identities(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Normalised address → the suspended or terminated customers it belongs to (contact or account)."""
    standing: dict[str, str] = {}
    contacts: dict[str, str | None] = {}
    for cid, status, contact in session.execute(
        select(CustomerRow.id, CustomerRow.status, CustomerRow.contact_email).where(CustomerRow.status.in_(SUSPENDED))
    ):
        standing[cid], contacts[cid] = status, contact
    suspended_services = select(ProjectRow.customer_id).join(ServiceRow, ServiceRow.project_id == ProjectRow.id)
    for cid, contact in session.execute(
        select(CustomerRow.id, CustomerRow.contact_email).where(
            CustomerRow.id.in_(suspended_services.where(ServiceRow.status == "suspended")),
            CustomerRow.status.not_in(SUSPENDED),
        )
    ):
        standing[cid], contacts[cid] = "service-suspended", contact
    out: dict[str, list[dict[str, Any]]] = {}

    def add(address: str | None, cid: str, via: str) -> None:
        key = identity_or_none(address)
        if key is not None:
            entry = {"customer_id": cid, "status": standing[cid], "address": address, "via": via}
            if entry not in out.setdefault(key, []):
                out[key].append(entry)

    for cid, contact in contacts.items():
        add(contact, cid, "contact_email")
    if standing:
        for cid, email in session.execute(
            select(AccountRow.customer_id, AccountRow.email).where(AccountRow.customer_id.in_(list(standing)))
        ):
            add(email, cid, "account")
    return out


class SignupLinker:
    """Screens and links the signup events of one attribute batch (see the module doc)."""

    def __init__(self, rt: Runtime) -> None:
        self.screening = ScreeningService(rt)

    def attribute(self, session: Session, events: Sequence[Event]) -> list[Event]:
        linked_by_key = suspended_identities(session) if events else {}
        out: list[Event] = []
        for event in events:
            address = event.source_account or ""
            verdict = self.screening.screen(address)
            key = identity_or_none(address)
            own = event.extra.get("customer_id")
            linked = [dict(e) for e in linked_by_key.get(key or "", []) if e["customer_id"] != own]
            extra = {
                **event.extra,
                "screening": {
                    "verdict": verdict.verdict,
                    "rule": verdict.rule,
                    "reason": verdict.reason,
                    "matched_domain": verdict.matched_domain,
                    "lists": [{"name": n, "version": v} for n, v in verdict.list_versions],
                    "knowledge": verdict.knowledge,
                },
                "normalized_email": key,
                "linked": linked,
            }
            out.append(dataclasses.replace(event, extra=extra, customer_id=own))
        return out
