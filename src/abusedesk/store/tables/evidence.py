"""Evidence blobs (content-addressed, bytes on disk) and the hash-chained audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from abusedesk.store.base import Base


class EvidenceRow(Base):
    __tablename__ = "evidence"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(300))
    collected_by: Mapped[str] = mapped_column(String(120))
    collected_at: Mapped[datetime] = mapped_column()
    origin: Mapped[str] = mapped_column(Text)  # where it came from: raw input id, detector, URL ...
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CaseEvidenceRow(Base):
    __tablename__ = "case_evidence"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column()


class AuditRow(Base):
    """Append-only; ``hash`` = SHA-256(prev_hash + canonical JSON of this entry). Never updated or deleted."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
