"""Every policy version ever loaded is kept, so a case cites the exact text in force when it opened.

A version is ``"<policy id>@<first 12 hex of the file's SHA-256>"``; the row holds the whole file text, from which
:func:`get_version` rebuilds the Policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from abusedesk.domain.errors import NotFound
from abusedesk.domain.ids import sha256_hex
from abusedesk.policy.loader import load_policy_text
from abusedesk.policy.model import Policy
from abusedesk.store.db import transaction
from abusedesk.store.tables.policy import PolicyVersionRow
from abusedesk.store.upsert import insert_ignore

if TYPE_CHECKING:
    from abusedesk.runtime import Runtime


def record_version(rt: Runtime, policy: Policy) -> bool:
    """Store ``policy``'s text under its version unless it is there already; True if it was new."""
    row = {
        "version": policy.version,
        "policy_id": policy.id,
        "sha256": policy.sha256,
        "source": policy.path,
        "text": policy.source_text,
        "loaded_at": rt.clock.now(),
    }
    with transaction(rt.sessions) as session:
        return insert_ignore(session, PolicyVersionRow.__table__, [row]) > 0  # type: ignore[arg-type]


def get_version_text(rt: Runtime, version: str) -> str:
    """The policy file text stored for ``version``; NotFound if that version was never loaded here."""
    with rt.sessions() as session:
        row = session.get(PolicyVersionRow, version)
        if row is None:
            raise NotFound(f"policy version {version!r} was never loaded on this abuse desk (table policy_versions)")
        if sha256_hex(row.text.encode("utf-8")) != row.sha256:
            raise NotFound(f"policy version {version!r} is stored, but its text no longer matches its SHA-256")
        return row.text


def get_version(rt: Runtime, version: str) -> Policy:
    """The Policy of ``version`` rebuilt from its stored text (the current one without a database read)."""
    current = rt.__dict__.get("policy")  # Runtime.policy is a cached_property; do not load it just for this
    if isinstance(current, Policy) and current.version == version:
        return current
    return load_policy_text(get_version_text(rt, version), source=f"policy_versions:{version}")


def list_versions(rt: Runtime) -> list[dict[str, str]]:
    """Every stored version, oldest first: version, policy id, sha256, source and when it was first loaded."""
    with rt.sessions() as session:
        rows = session.execute(select(PolicyVersionRow).order_by(PolicyVersionRow.loaded_at)).scalars().all()
        return [
            {
                "version": r.version,
                "policy_id": r.policy_id,
                "sha256": r.sha256,
                "source": r.source,
                "loaded_at": r.loaded_at.isoformat(),
            }
            for r in rows
        ]
