"""Evidence blobs: bytes kept content-addressed under ``settings.evidence_dir``, with who, when and from where.

The bytes go through the same durable write as raw inputs (:class:`~abusedesk.intake.rawstore.ContentStore`:
temporary file, fsync, rename, fsync of the directory) before the ``evidence`` row is written, so a row never
names bytes that are not on disk. Storing the same bytes again keeps the first collection record (who collected
them first, when, from where) and writes an audit entry for the second collection, so nothing is overwritten.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from abusedesk.evidence import audit
from abusedesk.intake.rawstore import ContentStore
from abusedesk.store.tables.evidence import CaseEvidenceRow, EvidenceRow
from abusedesk.store.upsert import insert_ignore


class EvidenceStore(ContentStore):
    """Evidence bytes (``<data_dir>/evidence/<sha[:2]>/<sha>``)."""

    what = "evidence blob"
    place = "evidence store"


@dataclass(frozen=True, slots=True)
class StoredEvidence:
    sha256: str
    size: int
    new: bool  # False when the same bytes had been collected before


def store_evidence(
    session: Session,
    store: EvidenceStore,
    data: bytes,
    *,
    media_type: str,
    collected_by: str,
    collected_at: datetime,
    origin: str,
    filename: str | None = None,
    meta: dict[str, Any] | None = None,
    case_id: str | None = None,
) -> StoredEvidence:
    """Write the bytes durably, record who/when/where (first collection wins), link to ``case_id`` if given."""
    sha, _ = store.put(data)
    new = (
        insert_ignore(
            session,
            EvidenceRow.__table__,  # type: ignore[arg-type]
            [
                {
                    "sha256": sha,
                    "size": len(data),
                    "media_type": media_type,
                    "filename": filename,
                    "collected_by": collected_by,
                    "collected_at": collected_at,
                    "origin": origin,
                    "meta": dict(meta or {}),
                }
            ],
        )
        == 1
    )
    audit.append(
        session,
        at=collected_at,
        actor=collected_by,
        action="evidence.stored" if new else "evidence.collected-again",
        subject_type="evidence",
        subject_id=sha,
        payload={"size": len(data), "media_type": media_type, "origin": origin, "filename": filename},
    )
    if case_id is not None:
        link_to_case(session, case_id, sha, at=collected_at, actor=collected_by)
    return StoredEvidence(sha, len(data), new)


def link_to_case(session: Session, case_id: str, sha256: str, *, at: datetime, actor: str) -> bool:
    """Attach stored evidence to a case; True when the link is new."""
    added = (
        insert_ignore(
            session,
            CaseEvidenceRow.__table__,  # type: ignore[arg-type]
            [{"case_id": case_id, "sha256": sha256, "added_at": at}],
        )
        == 1
    )
    if added:
        audit.append(
            session,
            at=at,
            actor=actor,
            action="evidence.linked",
            subject_type="case",
            subject_id=case_id,
            payload={"sha256": sha256},
        )
    return added


def evidence_for_case(session: Session, case_id: str) -> list[EvidenceRow]:
    rows = session.scalars(
        select(EvidenceRow)
        .join(CaseEvidenceRow, CaseEvidenceRow.sha256 == EvidenceRow.sha256)
        .where(CaseEvidenceRow.case_id == case_id)
        .order_by(CaseEvidenceRow.added_at, EvidenceRow.sha256)
    ).all()
    return list(rows)


def check_blob(store: EvidenceStore, sha256: str) -> bool:
    """True when the bytes on disk still hash to their name."""
    return hashlib.sha256(store.get(sha256)).hexdigest() == sha256
